//! Start-up: bad backend store URIs are one clear error, not a hang or a panic.

use ferroflow_server::{Application, ServerConfig};

async fn build_error(uri: &str) -> String {
    let config = ServerConfig::for_store(uri, std::env::temp_dir().join("ferroflow-unused"));
    match Application::build(&config).await {
        Ok(_) => panic!("{uri} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn unsupported_store_scheme_is_named() {
    let err = build_error("mysql://root@localhost/db").await;
    assert!(
        err.contains("unsupported backend store URI scheme 'mysql'"),
        "{err}"
    );
}

#[tokio::test]
async fn unreachable_postgres_reports_the_cause() {
    // The cause ("refused"), not a pool timeout, and no password in the message.
    let err = build_error("postgresql://user:secret@127.0.0.1:1/db").await;
    assert!(
        err.contains("cannot connect to backend store") && err.contains("refused"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "password leaked into the error: {err}"
    );
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_refused() {
    let err = build_error("sqlite:////no/such/dir/x.db").await;
    assert!(
        err.contains("directory /no/such/dir does not exist"),
        "{err}"
    );
}
