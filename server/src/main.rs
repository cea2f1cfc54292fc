//! `ferroflow`: the command-line entry point.

use clap::{Parser, Subcommand};
use ferroflow_server::automl_cli::AutomlArgs;
use ferroflow_server::features_cli::FeaturesArgs;
use ferroflow_server::models_serve::ServeModelArgs;
use ferroflow_server::{Application, ServerConfig};

#[derive(Parser)]
#[command(
    name = "ferroflow",
    version,
    about = "MLflow-compatible tracking server, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the tracking server (flags as `mlflow server`).
    Server(ServerConfig),
    /// Model commands (as `mlflow models`).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// AutoML sweeps: the best model exported to ONNX, logged and (optionally) registered.
    #[command(subcommand)]
    Automl(AutomlCommand),
    /// Feature tables (Delta), training sets and the online store.
    Features(FeaturesArgs),
    /// Copy an MLflow backend store (SQLite or PostgreSQL) into a ferroflow one: experiments,
    /// runs, every metric point, datasets, logged models and the registry, ids kept.
    ImportMlflow(ferroflow_server::import_mlflow::ImportArgs),
}

#[derive(Subcommand)]
enum AutomlCommand {
    /// Classification sweep.
    Classify(AutomlArgs),
    /// Regression sweep.
    Regress(AutomlArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Serve one ONNX model on its own port (as `mlflow models serve`).
    Serve(ServeModelArgs),
}

fn main() {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROFLOW_LOG").unwrap_or_else(|_| {
                // The automl command draws a progress bar; only warnings interrupt it.
                match cli.command {
                    Command::Automl(_) => "warn".into(),
                    // Table output only; an embedded server's notices are noise here.
                    Command::Features(_) => "error".into(),
                    // The import draws its own progress bars.
                    Command::ImportMlflow(_) => "warn".into(),
                    // deltalake warns on every merge about a metric it derives itself.
                    _ => "info,deltalake_core::operations::merge=error".into(),
                }
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Server(config) => run_server(config),
        Command::Models(ModelsCommand::Serve(args)) => ferroflow_server::models_serve::run(args),
        Command::Automl(AutomlCommand::Classify(args)) => {
            ferroflow_server::automl_cli::run("classification", args)
        }
        Command::Automl(AutomlCommand::Regress(args)) => {
            ferroflow_server::automl_cli::run("regression", args)
        }
        Command::Features(args) => ferroflow_server::features_cli::run(args),
        Command::ImportMlflow(args) => import_mlflow(args),
    };
    if let Err(e) = result {
        eprintln!("ferroflow: {e:#}");
        std::process::exit(1);
    }
}

fn import_mlflow(args: ferroflow_server::import_mlflow::ImportArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let counts = runtime.block_on(ferroflow_server::import_mlflow::run(&args))?;
    print!("{}", ferroflow_server::import_mlflow::render(&counts));
    if counts.iter().any(|c| c.target < c.source) {
        anyhow::bail!("some MLflow rows are not in the ferroflow store (marked MISSING above)");
    }
    Ok(())
}

fn run_server(config: ServerConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let system = actix_web::rt::System::with_tokio_rt(|| runtime);
    system.block_on(async move {
        let app = Application::build(&config).await?;
        tracing::info!(
            "ferroflow listening on http://{}:{} (backend store {})",
            config.host,
            app.port(),
            config.store_uri().map(|u| u.redacted()).unwrap_or_default()
        );
        app.run_until_stopped().await?;
        Ok(())
    })
}
