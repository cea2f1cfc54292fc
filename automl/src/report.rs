//! The end of a sweep: refit the best exportable configuration, score it on the held-out test
//! rows, export it to ONNX, check the export in ONNX Runtime against the native model (a model
//! that fails the check is never logged or registered: the next exportable trial is tried),
//! explain it (permutation importance, plots), log it as an MLflow model and register it; write
//! the leaderboard.

use std::collections::HashMap;

use ferroflow_core::{now_millis, Error, ErrorCode, Result};
use ferroflow_registry::RegistryService;
use ferroflow_tracking::artifacts::ArtifactService;
use ferroflow_tracking::model::{KeyValue, ModelIo, NewMetric};
use ferroflow_tracking::TrackingService;
use ndarray::Axis;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::estimators::{Algorithm, Fitted, Output, Problem};
use crate::metrics::{confusion, evaluate, roc_auc, roc_curve, value, Metric};
use crate::onnx::check;
use crate::pipeline::{Labels, Pipeline, Prediction, Task};
use crate::prep::{balanced_rows, Prepared};
use crate::search::{fit_rows, permuted, TrialResult};
use crate::{onnx, package, plots};

pub struct Context<'a> {
    pub tracking: &'a TrackingService,
    pub registry: &'a RegistryService,
    pub artifacts: &'a ArtifactService,
    pub handle: &'a tokio::runtime::Handle,
    pub experiment_id: &'a str,
    pub parent_run_id: &'a str,
    pub register_model_name: Option<&'a str>,
    pub metric: Metric,
    pub problem: Problem,
    pub seed: u64,
    /// Trial number → child run id.
    pub child_runs: &'a HashMap<usize, String>,
}

pub fn metrics_json(metrics: &[(Metric, f64)]) -> Value {
    Value::Object(
        metrics
            .iter()
            .map(|(m, v)| (m.name().to_string(), json!(v)))
            .collect(),
    )
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: value.into(),
    }
}

/// Rows the final model is fitted on: train (+ validation when trials used folds), balanced.
fn final_rows(p: &Prepared, seed: u64) -> Vec<usize> {
    match &p.splits.folds {
        Some(_) => {
            let rows: Vec<usize> = p
                .splits
                .train
                .iter()
                .chain(&p.splits.validation)
                .copied()
                .collect();
            balanced_rows(&rows, &p.y, p.n_classes(), seed)
        }
        None => p.splits.train.clone(),
    }
}

fn ranked(trials: &[TrialResult]) -> Vec<&TrialResult> {
    let mut ok: Vec<&TrialResult> = trials
        .iter()
        .filter(|t| t.error.is_none() && t.loss.is_finite())
        .collect();
    ok.sort_by(|a, b| a.loss.total_cmp(&b.loss).then(a.number.cmp(&b.number)));
    ok
}

/// How many exportable trials, best first, are exported and checked before the job gives up.
const EXPORT_ATTEMPTS: usize = 3;

/// A trial's model, exported and checked.
struct Exported<'t> {
    trial: &'t TrialResult,
    model: std::sync::Arc<Fitted>,
    native: Output,
    test_metrics: Vec<(Metric, f64)>,
    pipeline: Pipeline,
    onnx_bytes: Vec<u8>,
    /// The check's figures for the summary (`onnx_vs_native`).
    agreement: Value,
}

/// Refits (when the trial was scored by folds), exports and checks one trial's model. An
/// `Err` says why the model must not be registered.
fn export_trial<'t>(
    ctx: &Context,
    p: &Prepared,
    trial: &'t TrialResult,
) -> std::result::Result<Exported<'t>, String> {
    let n_classes = p.n_classes();
    // Scored on one holdout split, the trial's own model is the final one; scored by folds,
    // the configuration is refitted on train + validation.
    let model = match &trial.model {
        Some(m) => m.clone(),
        None => {
            let rows = final_rows(p, ctx.seed);
            std::sync::Arc::new(
                fit_rows(
                    p,
                    trial.algorithm,
                    ctx.problem,
                    &trial.params,
                    &rows,
                    ctx.seed,
                )
                .map_err(|e| format!("refitting failed: {e}"))?,
            )
        }
    };
    let test = &p.splits.test;
    let x_test = p.x.select(Axis(0), test);
    let y_test = p.y.select(Axis(0), test);
    let native = model.predict(x_test.view(), n_classes)?;
    let test_metrics = evaluate(ctx.problem, &native, y_test.view(), n_classes);

    // The pipeline: the fitted feature steps and the estimator's parameters.
    let estimator = model
        .export(n_classes)
        .ok_or_else(|| format!("{} could not be exported", trial.algorithm))?;
    let task = match &p.labels {
        Some(labels) => Task::Classification {
            labels: labels.clone(),
        },
        None => Task::Regression,
    };
    let pipeline = Pipeline {
        inputs: p.inputs.clone(),
        features: p.features.clone(),
        estimator,
        task,
    };
    let onnx_bytes = onnx::export(&pipeline, env!("CARGO_PKG_VERSION"));
    let raw_test: Vec<_> = test.iter().map(|r| p.raw[*r].clone()).collect();
    // The model directory as it will be logged (the model id is not known yet).
    let files = package::files(&pipeline, &onnx_bytes, "pending", &p.examples, "");
    let outcome = ctx
        .handle
        .block_on(check::run(&files, &pipeline, &raw_test))?;
    let answered = match &outcome {
        check::Outcome::Ran { prediction, .. } => prediction.clone(),
        // Without ONNX Runtime, ferroflow's own evaluation of the graph's operators.
        check::Outcome::Unavailable { reason } => {
            tracing::warn!(
                "ONNX Runtime is not loaded ({reason}): the exported model of trial {} is \
                 checked by ferroflow's evaluation of the pipeline only",
                trial.number
            );
            pipeline.evaluate(&raw_test)
        }
    };
    if let Some(problem) = check::disagreement(&native, &answered) {
        return Err(format!(
            "the exported ONNX model does not answer what the native model answers on the \
             held-out rows: {problem}"
        ));
    }
    let agreement = check::report(&outcome, compare(&native, &answered));
    Ok(Exported {
        trial,
        model,
        native,
        test_metrics,
        pipeline,
        onnx_bytes,
        agreement,
    })
}

pub fn finish(ctx: &Context, p: &Prepared, trials: &[TrialResult]) -> Result<Value> {
    let ranking = ranked(trials);
    let best_overall = ranking.first().copied();
    let exportable: Vec<&TrialResult> = ranking
        .iter()
        .copied()
        .filter(|t| t.algorithm.exportable())
        .collect();
    if exportable.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidState,
            format!(
                "No exportable trial finished within the budget ({} trials ran, {} failed); \
                 raise timeout_minutes",
                trials.len(),
                trials.iter().filter(|t| t.error.is_some()).count()
            ),
        ));
    }
    // The best exportable trial whose export passes the check; the ones before it are reported.
    let mut rejected = Vec::new();
    let mut chosen = None;
    for trial in exportable.iter().take(EXPORT_ATTEMPTS) {
        match export_trial(ctx, p, trial) {
            Ok(e) => {
                chosen = Some(e);
                break;
            }
            Err(reason) => {
                tracing::warn!(
                    "AutoML: trial {} ({}) is not registered: {reason}",
                    trial.number,
                    trial.algorithm
                );
                rejected.push((trial.number, trial.algorithm.name(), reason));
            }
        }
    }
    let Some(Exported {
        trial: best,
        model,
        native,
        test_metrics,
        pipeline,
        onnx_bytes,
        agreement,
    }) = chosen
    else {
        let reasons: Vec<String> = rejected
            .iter()
            .map(|(trial, estimator, reason)| format!("trial {trial} ({estimator}): {reason}"))
            .collect();
        return Err(Error::new(
            ErrorCode::InvalidState,
            format!(
                "No exported model passed the ONNX Runtime check, so none was logged or \
                 registered: {}",
                reasons.join("; ")
            ),
        ));
    };
    let n_classes = p.n_classes();
    let test = &p.splits.test;
    let y_test = p.y.select(Axis(0), test);
    let raw_test: Vec<_> = test.iter().map(|r| p.raw[*r].clone()).collect();

    // Explanation: permutation importance of each raw column on the test rows.
    let importance = permutation_importance(p, &model, ctx.metric, ctx.seed, &test_metrics);
    let parent_uri = ctx
        .handle
        .block_on(ctx.tracking.get_run(ctx.parent_run_id))?
        .info
        .artifact_uri;
    let mut plot_files = Vec::new();
    let mut save_plot = |name: &str, png: std::result::Result<Vec<u8>, String>| -> Result<()> {
        match png {
            Ok(bytes) => {
                ctx.handle.block_on(ctx.artifacts.write_under(
                    &parent_uri,
                    &format!("plots/{name}"),
                    bytes.into(),
                ))?;
                plot_files.push(format!("plots/{name}"));
            }
            Err(e) => tracing::warn!("plot {name} not drawn: {e}"),
        }
        Ok(())
    };
    match (&native, &p.labels) {
        (Output::Classes(probs), Some(labels)) => {
            let truth: Vec<usize> = y_test.iter().map(|v| *v as usize).collect();
            let predicted = native.classes();
            let names: Vec<String> = (0..n_classes).map(|i| labels.text(i)).collect();
            save_plot(
                "confusion_matrix.png",
                plots::confusion_matrix(&names, &confusion(&truth, &predicted, n_classes)),
            )?;
            let classes: Vec<usize> = if n_classes == 2 {
                vec![1]
            } else {
                (0..n_classes).collect()
            };
            let curves: Vec<plots::RocCurve> = classes
                .iter()
                .map(|c| {
                    let positive: Vec<bool> = truth.iter().map(|t| t == c).collect();
                    let scores = probs.column(*c).to_vec();
                    let mut one = ndarray::Array2::zeros((truth.len(), 2));
                    for (i, s) in scores.iter().enumerate() {
                        one[[i, 1]] = *s;
                        one[[i, 0]] = 1.0 - s;
                    }
                    let bin: Vec<usize> = positive.iter().map(|b| usize::from(*b)).collect();
                    plots::RocCurve {
                        label: names[*c].clone(),
                        points: roc_curve(&scores, &positive),
                        auc: roc_auc(&one, &bin, 2),
                    }
                })
                .collect();
            save_plot("roc_curve.png", plots::roc_curves(&curves))?;
        }
        (Output::Values(v), _) => {
            let points: Vec<(f64, f64)> = y_test.iter().copied().zip(v.iter().copied()).collect();
            save_plot(
                "predicted_vs_actual.png",
                plots::predicted_vs_actual(&points),
            )?;
        }
        _ => {}
    }
    let importance_items: Vec<(String, f64, f64)> = importance
        .iter()
        .map(|(n, m, s)| (n.clone(), *m, *s))
        .collect();
    save_plot(
        "feature_importance.png",
        plots::feature_importance(&importance_items),
    )?;

    // The best trial's run gets the model; the summary run gets the report.
    let best_run = ctx
        .child_runs
        .get(&best.number)
        .cloned()
        .unwrap_or_else(|| ctx.parent_run_id.to_string());
    let logged = ctx.handle.block_on(ctx.tracking.create_logged_model(
        crate::service::create_logged_model(ctx.experiment_id, &best_run, best.algorithm.name()),
    ))?;
    let model_id = logged.info.model_id.clone();
    let created = chrono::Utc::now()
        .format("%Y-%m-%d %H:%M:%S%.6f")
        .to_string();
    for (name, bytes) in package::files(&pipeline, &onnx_bytes, &model_id, &p.examples, &created) {
        ctx.handle.block_on(ctx.artifacts.write_under(
            &logged.info.artifact_uri,
            &name,
            bytes.into(),
        ))?;
    }
    ctx.handle.block_on(
        ctx.tracking
            .finalize_logged_model(&model_id, "LOGGED_MODEL_READY"),
    )?;
    ctx.handle.block_on(ctx.tracking.log_outputs(
        &best_run,
        &[ModelIo {
            model_id: model_id.clone(),
            step: None,
        }],
    ))?;

    // Native predictions on the test rows: what the served ONNX model must answer.
    let native_json = predictions_json(&native, p.labels.as_ref(), &onnx::output_names(&pipeline));
    let columns: Vec<&str> = p.inputs.iter().map(|c| c.name.as_str()).collect();
    let rows_json: Vec<Vec<Value>> = raw_test
        .iter()
        .map(|r| r.iter().map(package::raw_json).collect())
        .collect();
    ctx.handle.block_on(
        ctx.artifacts.write_under(
            &parent_uri,
            "native_predictions.json",
            serde_json::to_vec(&json!({
                "columns": columns, "data": rows_json, "predictions": native_json,
            }))
            .unwrap_or_default()
            .into(),
        ),
    )?;

    let leaderboard: Vec<Value> = ranking
        .iter()
        .enumerate()
        .map(|(rank, t)| {
            json!({
                "rank": rank + 1,
                "trial": t.number,
                "run_id": ctx.child_runs.get(&t.number),
                "estimator": t.algorithm.name(),
                "exportable": t.algorithm.exportable(),
                "params": t.params.to_string(),
                "validation": metrics_json(&t.validation),
                "duration_seconds": t.duration.as_secs_f64(),
            })
        })
        .collect();
    let mut csv = format!(
        "rank,trial,estimator,exportable,val_{},duration_seconds,params\n",
        ctx.metric.name()
    );
    for (rank, t) in ranking.iter().enumerate() {
        csv += &format!(
            "{},{},{},{},{},{:.3},\"{}\"\n",
            rank + 1,
            t.number,
            t.algorithm,
            t.algorithm.exportable(),
            value(&t.validation, ctx.metric),
            t.duration.as_secs_f64(),
            t.params.to_string().replace('"', "'")
        );
    }
    ctx.handle.block_on(ctx.artifacts.write_under(
        &parent_uri,
        "leaderboard.csv",
        csv.into_bytes().into(),
    ))?;
    ctx.handle.block_on(
        ctx.artifacts.write_under(
            &parent_uri,
            "leaderboard.json",
            serde_json::to_vec_pretty(&leaderboard)
                .unwrap_or_default()
                .into(),
        ),
    )?;

    // Registration last: a failure here leaves no registered model behind.
    let registered = match ctx.register_model_name {
        Some(name) => Some(register(
            ctx,
            name,
            &model_id,
            &best_run,
            best,
            &test_metrics,
        )?),
        None => None,
    };

    let now = now_millis();
    let mut parent_metrics: Vec<NewMetric> = test_metrics
        .iter()
        .map(|(m, v)| NewMetric {
            key: format!("test_{}", m.name()),
            value: *v,
            timestamp: now,
            step: 0,
            model: None,
        })
        .collect();
    parent_metrics.push(NewMetric {
        key: format!("best_val_{}", ctx.metric.name()),
        value: value(&best.validation, ctx.metric),
        timestamp: now,
        step: 0,
        model: None,
    });
    let mut tags = vec![
        kv("ferroflow.automl.best_trial_run_id", &best_run),
        kv("ferroflow.automl.best_estimator", best.algorithm.name()),
        kv("ferroflow.automl.model_id", &model_id),
    ];
    if let Some((name, version)) = &registered {
        tags.push(kv(
            "ferroflow.automl.registered_model",
            &format!("{name}/{version}"),
        ));
    }
    ctx.handle.block_on(
        ctx.tracking
            .log_batch(ctx.parent_run_id, parent_metrics, vec![], tags),
    )?;

    let not_exported = best_overall
        .filter(|t| !t.algorithm.exportable())
        .map(|t| {
            json!({
                "estimator": t.algorithm.name(),
                "validation": metrics_json(&t.validation),
                "note": format!("{} cannot be exported to ONNX; the best exportable trial was registered", t.algorithm),
            })
        });
    Ok(json!({
        "trials": trials.len(),
        "trials_failed": trials.iter().filter(|t| t.error.is_some()).count(),
        "primary_metric": ctx.metric.name(),
        "best_trial": {
            "trial": best.number,
            "run_id": best_run,
            "estimator": best.algorithm.name(),
            "library": best.algorithm.library(ctx.problem),
            "params": best.params.to_string(),
            "validation": metrics_json(&best.validation),
        },
        "best_overall_not_exportable": not_exported,
        "export_rejected": rejected
            .iter()
            .map(|(trial, estimator, reason)| {
                json!({"trial": trial, "estimator": estimator, "reason": reason})
            })
            .collect::<Vec<_>>(),
        "test_metrics": metrics_json(&test_metrics),
        "feature_importance": importance.iter().map(|(n, m, s)| json!({"column": n, "importance": m, "std": s})).collect::<Vec<_>>(),
        "model": {
            "model_id": model_id,
            "model_uri": format!("models:/{model_id}"),
            "artifact_uri": logged.info.artifact_uri,
            "onnx_bytes": onnx_bytes.len(),
            "onnx_vs_native": agreement,
        },
        "registered_model": registered.map(|(name, version)| json!({"name": name, "version": version})),
        "split": p.splits.method,
        "rows": {"train": p.splits.train.len(), "validation": p.splits.validation.len(), "test": p.splits.test.len()},
        "class_balancing": p.splits.balancing,
        "plots": plot_files,
        "leaderboard_top": leaderboard.iter().take(10).cloned().collect::<Vec<_>>(),
        "estimators": Algorithm::all(ctx.problem).iter().map(|a| json!({
            "name": a.name(), "library": a.library(ctx.problem), "exportable": a.exportable(),
        })).collect::<Vec<_>>(),
    }))
}

fn register(
    ctx: &Context,
    name: &str,
    model_id: &str,
    run_id: &str,
    best: &TrialResult,
    test_metrics: &[(Metric, f64)],
) -> Result<(String, String)> {
    let created = match ctx.handle.block_on(ctx.registry.get_registered_model(name)) {
        Ok(_) => false,
        Err(e) if e.code == ErrorCode::ResourceDoesNotExist => {
            ctx.handle.block_on(ctx.registry.create_registered_model(
                name,
                &[],
                Some("Registered by ferroflow AutoML"),
            ))?;
            true
        }
        Err(e) => return Err(e),
    };
    let description = format!(
        "AutoML best exportable trial: {} ({}); test {} = {:.4}",
        best.algorithm,
        best.params,
        ctx.metric.name(),
        value(test_metrics, ctx.metric)
    );
    match ctx.handle.block_on(
        ctx.registry
            .create_model_version(crate::service::create_version(
                name,
                &format!("models:/{model_id}"),
                run_id,
                model_id,
                &description,
            )),
    ) {
        Ok(v) => Ok((v.name, v.version)),
        Err(e) => {
            if created {
                let _ = ctx
                    .handle
                    .block_on(ctx.registry.delete_registered_model(name));
            }
            Err(e)
        }
    }
}

const IMPORTANCE_ROWS: usize = 5000;
const IMPORTANCE_REPEATS: usize = 3;

/// Mean and standard deviation over `IMPORTANCE_REPEATS` shuffles of how much the primary metric worsens when a
/// raw column's features are permuted across the test rows.
fn permutation_importance(
    p: &Prepared,
    model: &Fitted,
    metric: Metric,
    seed: u64,
    baseline: &[(Metric, f64)],
) -> Vec<(String, f64, f64)> {
    // At most IMPORTANCE_ROWS test rows, so the report stays a small part of the budget.
    let test: Vec<usize> = p
        .splits
        .test
        .iter()
        .step_by(p.splits.test.len().div_ceil(IMPORTANCE_ROWS).max(1))
        .copied()
        .collect();
    let x = p.x.select(Axis(0), &test);
    let y = p.y.select(Axis(0), &test);
    let base = model
        .predict(x.view(), p.n_classes())
        .map(|out| evaluate(p.problem(), &out, y.view(), p.n_classes()))
        .unwrap_or_else(|_| baseline.to_vec());
    let base_loss = metric.loss(value(&base, metric));
    let mut rng = StdRng::seed_from_u64(seed ^ 0x1a9);
    let mut offsets = Vec::new();
    let mut at = 0;
    for step in &p.features {
        offsets.push((step.input(), at..at + step.width()));
        at += step.width();
    }
    let mut out: Vec<(String, f64, f64)> = p
        .inputs
        .iter()
        .enumerate()
        .map(|(j, input)| {
            let cols: Vec<usize> = offsets
                .iter()
                .filter(|(i, _)| *i == j)
                .flat_map(|(_, r)| r.clone())
                .collect();
            let drops: Vec<f64> = (0..IMPORTANCE_REPEATS)
                .filter_map(|_| {
                    let shuffled = permuted(&x, &cols, &mut rng);
                    let out = model.predict(shuffled.view(), p.n_classes()).ok()?;
                    let m = evaluate(p.problem(), &out, y.view(), p.n_classes());
                    Some(metric.loss(value(&m, metric)) - base_loss)
                })
                .collect();
            let n = drops.len().max(1) as f64;
            let mean = drops.iter().sum::<f64>() / n;
            let std = (drops.iter().map(|d| (d - mean) * (d - mean)).sum::<f64>() / n).sqrt();
            (input.name.clone(), mean, std)
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    out
}

/// Largest differences between the native model's answers and the exported pipeline's.
fn compare(native: &Output, exported: &Prediction) -> Value {
    match (native, exported) {
        (
            Output::Classes(p),
            Prediction::Classification {
                classes,
                probabilities,
            },
        ) => {
            let mut max_diff = 0.0f64;
            for (i, row) in probabilities.iter().enumerate() {
                for (j, v) in row.iter().enumerate() {
                    max_diff = max_diff.max((p[[i, j]] - *v as f64).abs());
                }
            }
            let native_classes = native.classes();
            let same = native_classes
                .iter()
                .zip(classes)
                .filter(|(a, b)| a == b)
                .count();
            json!({"rows": classes.len(), "max_abs_probability_diff": max_diff,
                   "labels_equal": same, "labels_differ": classes.len() - same})
        }
        (Output::Values(v), Prediction::Regression { values }) => {
            let mut max_diff = 0.0f64;
            let mut max_rel = 0.0f64;
            for (a, b) in v.iter().zip(values) {
                let d = (a - *b as f64).abs();
                max_diff = max_diff.max(d);
                max_rel = max_rel.max(d / a.abs().max(1.0));
            }
            json!({"rows": values.len(), "max_abs_diff": max_diff, "max_rel_diff": max_rel})
        }
        _ => json!({"error": "the exported pipeline answered a different task"}),
    }
}

/// The native answers under the names of the graph's outputs.
fn predictions_json(out: &Output, labels: Option<&Labels>, names: &onnx::OutputNames) -> Value {
    match (out, labels) {
        (Output::Classes(p), Some(labels)) => {
            let label_values: Vec<Value> = out
                .classes()
                .iter()
                .map(|c| match labels {
                    Labels::Ints(v) => json!(v[*c]),
                    Labels::Strings(v) => json!(v[*c]),
                })
                .collect();
            let probs: Vec<Vec<f64>> = p.rows().into_iter().map(|r| r.to_vec()).collect();
            json!({names.label.as_str(): label_values, names.probabilities.as_str(): probs})
        }
        (Output::Values(v), _) => json!({names.variable.as_str(): v.to_vec()}),
        _ => Value::Null,
    }
}
