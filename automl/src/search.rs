//! The sweep: cost-frugal search in the spirit of FLAML's CFO. Every estimator starts at its
//! cheapest configuration; from the best configuration so far the search steps along a random
//! direction (and, if that fails, the opposite one), halves the step after a run of failures
//! and restarts from a random point once the step is tiny. Which estimator gets the next trial
//! depends on its cost per trial and how far its best score is from the leader. Trials run on
//! `workers` threads; a trial whose estimated cost does not fit in the remaining budget is not
//! started, and the sweep stops early when nothing improves.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use ndarray::{Array2, Axis};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::estimators::{fit, space, Algorithm, Dim, Fitted, Output, Params, Problem, TrainSet};
use crate::metrics::{evaluate, value, Metric};
use crate::prep::{balanced_rows, Prepared};

#[derive(Debug, Clone)]
pub struct SweepConfig {
    pub problem: Problem,
    pub metric: Metric,
    pub algorithms: Vec<Algorithm>,
    pub deadline: Instant,
    pub max_trials: usize,
    pub seed: u64,
    pub workers: usize,
}

#[derive(Clone)]
pub struct TrialResult {
    pub number: usize,
    pub algorithm: Algorithm,
    pub params: Params,
    pub config: Vec<f64>,
    pub validation: Vec<(Metric, f64)>,
    pub train: Vec<(Metric, f64)>,
    /// The primary metric as a loss (lower is better); infinite for a failed trial.
    pub loss: f64,
    pub started: Instant,
    pub duration: Duration,
    pub error: Option<String>,
    /// The fitted model, kept for the best exportable trial when trials are scored on one
    /// holdout split (it is then exactly the model the final step would refit).
    pub model: Option<Arc<Fitted>>,
}

/// Receives the sweep's progress (logs runs, updates the job record).
pub trait Observer {
    fn trial_finished(&self, trial: &TrialResult);
    /// Called about every 100 ms while trials run (a heartbeat).
    fn tick(&self) {}
}

/// Why the sweep stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    Timeout,
    MaxTrials,
    Converged,
    NoProgress,
    Cancelled,
}

impl StopReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            StopReason::Timeout => "time budget reached",
            StopReason::MaxTrials => "max_trials reached",
            StopReason::Converged => "every estimator's search converged",
            StopReason::NoProgress => "no improvement in the last trials",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// The first step, per √dimension, in the unit cube.
const INITIAL_STEP: f64 = 0.2;

struct Local {
    algorithm: Algorithm,
    space: Vec<Dim>,
    best: Option<(Vec<f64>, f64)>,
    step: f64,
    failures: usize,
    restarts: usize,
    trials: usize,
    /// Seconds per trial (exponential average) and the cost factor it was measured at.
    cost: Option<(f64, f64)>,
    /// Opposite directions to try after a failed step.
    pending: Vec<Vec<f64>>,
    converged: bool,
}

impl Local {
    fn new(algorithm: Algorithm, problem: Problem) -> Local {
        let space = space(algorithm, problem);
        let step = INITIAL_STEP * (space.len().max(1) as f64).sqrt();
        Local {
            algorithm,
            space,
            best: None,
            step,
            failures: 0,
            restarts: 0,
            trials: 0,
            cost: None,
            pending: Vec::new(),
            converged: false,
        }
    }

    fn start(&self) -> Vec<f64> {
        self.space.iter().map(|d| d.start).collect()
    }

    fn propose(&mut self, rng: &mut StdRng) -> Vec<f64> {
        if let Some(c) = self.pending.pop() {
            return c;
        }
        let Some((best, _)) = &self.best else {
            return self.start();
        };
        // A random unit direction, scaled by the step.
        let dir: Vec<f64> = loop {
            let d: Vec<f64> = (0..self.space.len())
                .map(|_| rng.gen::<f64>() * 2.0 - 1.0)
                .collect();
            let norm = d.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 1e-6 {
                break d.iter().map(|v| v / norm).collect();
            }
        };
        let forward: Vec<f64> = best
            .iter()
            .zip(&dir)
            .map(|(b, d)| (b + self.step * d).clamp(0.0, 1.0))
            .collect();
        let backward: Vec<f64> = best
            .iter()
            .zip(&dir)
            .map(|(b, d)| (b - self.step * d).clamp(0.0, 1.0))
            .collect();
        self.pending.push(backward);
        forward
    }

    fn report(
        &mut self,
        config: &[f64],
        loss: f64,
        seconds: f64,
        cost_factor: f64,
        rng: &mut StdRng,
    ) {
        self.trials += 1;
        self.cost = Some(match self.cost {
            None => (seconds, cost_factor),
            Some((_, _)) if self.trials == 1 => (seconds, cost_factor),
            Some((s, f)) => {
                // Normalize the old figure to the new cost factor before averaging.
                let scaled = s * cost_factor / f.max(1e-9);
                (0.5 * scaled + 0.5 * seconds, cost_factor)
            }
        });
        self.outcome(config, loss, rng);
    }

    /// Moves the local search on after a configuration scored `loss` (or, for a configuration
    /// already tried, `f64::INFINITY` without running it).
    fn outcome(&mut self, config: &[f64], loss: f64, rng: &mut StdRng) {
        if self.space.is_empty() {
            self.best = Some((Vec::new(), loss));
            self.converged = true;
            return;
        }
        let improved = self.best.as_ref().is_none_or(|(_, b)| loss < *b);
        if improved {
            self.best = Some((config.to_vec(), loss));
            self.failures = 0;
            self.pending.clear();
            return;
        }
        self.failures += 1;
        if self.failures >= 2 * self.space.len().max(1) {
            self.step *= 0.5;
            self.failures = 0;
            self.pending.clear();
        }
        if self.step < 0.01 {
            if self.restarts >= 2 {
                self.converged = true;
            } else {
                // Restart from a random point, keeping the best found.
                self.restarts += 1;
                self.step = INITIAL_STEP * (self.space.len() as f64).sqrt();
                let random: Vec<f64> = (0..self.space.len()).map(|_| rng.gen()).collect();
                self.pending = vec![random];
            }
        }
    }

    /// Seconds a trial at `cost_factor` is expected to take.
    fn estimate(&self, cost_factor: f64) -> f64 {
        self.cost
            .map_or(0.0, |(s, f)| s * (cost_factor / f.max(1e-9)).max(0.25))
    }
}

struct Scheduler {
    locals: Vec<Local>,
    rng: StdRng,
    started: usize,
    best_loss: f64,
    since_improvement: usize,
    last_improvement: Instant,
    created: Instant,
    tried: std::collections::HashSet<String>,
    stop: Option<StopReason>,
}

impl Scheduler {
    fn next(
        &mut self,
        cfg: &SweepConfig,
        cancelled: &AtomicBool,
    ) -> Option<(usize, usize, Vec<f64>)> {
        if self.stop.is_some() {
            return None;
        }
        if cancelled.load(Ordering::Relaxed) {
            self.stop = Some(StopReason::Cancelled);
            return None;
        }
        if self.started >= cfg.max_trials {
            self.stop = Some(StopReason::MaxTrials);
            return None;
        }
        // Early stop: many trials and half the budget without a better score.
        let patience = 40.max(8 * self.locals.len());
        let quiet = self.last_improvement.elapsed().as_secs_f64();
        let budget = (cfg.deadline - self.created).as_secs_f64();
        if self.since_improvement >= patience && quiet >= 0.5 * budget {
            self.stop = Some(StopReason::NoProgress);
            return None;
        }
        let now = Instant::now();
        if now >= cfg.deadline {
            self.stop = Some(StopReason::Timeout);
            return None;
        }
        let remaining = (cfg.deadline - now).as_secs_f64();
        // Never-tried estimators first, in the order given (cheap ones lead).
        let untried = self.locals.iter().position(|l| {
            l.trials == 0 && l.cost.is_none() && !l.converged && l.pending.is_empty()
        });
        let choice = match untried {
            Some(i) => Some(i),
            None => self.pick(remaining),
        };
        let Some(i) = choice else {
            self.stop = Some(if self.locals.iter().all(|l| l.converged) {
                StopReason::Converged
            } else {
                StopReason::Timeout
            });
            return None;
        };
        let local = &mut self.locals[i];
        let config = if local.trials == 0 && local.best.is_none() && local.cost.is_none() {
            // Mark as in flight so the next worker moves on to another estimator.
            local.cost = Some((0.0, 1.0));
            local.start()
        } else {
            // Integer and choice dimensions map many points to one configuration: a step that
            // lands on one already tried counts as a failed step without running it.
            let mut novel = None;
            for _ in 0..16 {
                let c = local.propose(&mut self.rng);
                let key = format!("{}:{}", local.algorithm, Params::decode(&local.space, &c));
                if !self.tried.contains(&key) {
                    novel = Some(c);
                    break;
                }
                local.outcome(&c, f64::INFINITY, &mut self.rng);
                if local.converged {
                    break;
                }
            }
            match novel {
                Some(c) => c,
                None => return self.next(cfg, cancelled),
            }
        };
        let key = format!(
            "{}:{}",
            local.algorithm,
            Params::decode(&local.space, &config)
        );
        self.tried.insert(key);
        self.started += 1;
        Some((self.started, i, config))
    }

    /// The estimator for the next trial: weights favour cheap trials and estimators close to
    /// the leader; estimators whose next trial would overrun the budget are skipped.
    fn pick(&mut self, remaining: f64) -> Option<usize> {
        let best = self.best_loss;
        let candidates: Vec<(usize, f64)> = self
            .locals
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.converged && l.best.is_some())
            .filter_map(|(i, l)| {
                let factor = l
                    .best
                    .as_ref()
                    .map_or(1.0, |(c, _)| Params::decode(&l.space, c).cost_factor());
                let estimate = l.estimate(factor);
                if estimate > remaining {
                    return None;
                }
                let loss = l.best.as_ref().map_or(f64::INFINITY, |(_, v)| *v);
                let gap = if loss.is_finite() && best.is_finite() {
                    (loss - best).max(0.0) / best.abs().max(1e-3)
                } else {
                    10.0
                };
                let weight = 1.0 / ((estimate + 0.05) * (1.0 + 20.0 * gap));
                Some((i, weight))
            })
            .collect();
        let total: f64 = candidates.iter().map(|(_, w)| w).sum();
        if candidates.is_empty() || total <= 0.0 {
            return None;
        }
        let mut draw = self.rng.gen::<f64>() * total;
        for (i, w) in &candidates {
            if draw < *w {
                return Some(*i);
            }
            draw -= w;
        }
        candidates.last().map(|(i, _)| *i)
    }
}

/// Rows for training and scoring one trial.
fn folds_of(prepared: &Prepared, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let s = &prepared.splits;
    match &s.folds {
        Some(folds) => (0..folds.len())
            .map(|k| {
                let train: Vec<usize> = folds
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .flat_map(|(_, f)| f.iter().copied())
                    .collect();
                let train =
                    balanced_rows(&train, &prepared.y, prepared.n_classes(), seed + k as u64);
                (train, folds[k].clone())
            })
            .collect(),
        None => vec![(s.train.clone(), s.validation.clone())],
    }
}

/// Fit on `rows` of the prepared data.
pub fn fit_rows(
    prepared: &Prepared,
    algorithm: Algorithm,
    problem: Problem,
    params: &Params,
    rows: &[usize],
    seed: u64,
) -> Result<Fitted, String> {
    let x = prepared.x.select(Axis(0), rows);
    let y = prepared.y.select(Axis(0), rows);
    fit(
        algorithm,
        problem,
        params,
        &TrainSet {
            x: x.view(),
            y: y.view(),
            n_classes: prepared.n_classes(),
        },
        seed,
    )
}

pub fn predict_rows(prepared: &Prepared, model: &Fitted, rows: &[usize]) -> Result<Output, String> {
    model.predict(
        prepared.x.select(Axis(0), rows).view(),
        prepared.n_classes(),
    )
}

/// Every metric with its value.
type Scores = Vec<(Metric, f64)>;

/// At most this many training rows are re-predicted for the train score.
const TRAIN_SCORE_ROWS: usize = 5000;

fn run_trial(
    prepared: &Prepared,
    cfg: &SweepConfig,
    algorithm: Algorithm,
    params: &Params,
    folds: &[(Vec<usize>, Vec<usize>)],
) -> Result<(Scores, Scores, Option<Fitted>), String> {
    let n_classes = prepared.n_classes();
    let mut kept = None;
    let mut oof_rows = Vec::new();
    let mut oof: Option<Output> = None;
    let mut train_scores: Vec<Vec<(Metric, f64)>> = Vec::new();
    for (k, (train, held_out)) in folds.iter().enumerate() {
        if k > 0 && Instant::now() >= cfg.deadline {
            return Err("stopped: the time budget ran out during cross-validation".into());
        }
        let model = fit_rows(
            prepared,
            algorithm,
            cfg.problem,
            params,
            train,
            cfg.seed + k as u64,
        )?;
        let out = predict_rows(prepared, &model, held_out)?;
        oof = Some(match (oof, out) {
            (None, out) => out,
            (Some(Output::Classes(a)), Output::Classes(b)) => Output::Classes(
                ndarray::concatenate(Axis(0), &[a.view(), b.view()]).map_err(|e| e.to_string())?,
            ),
            (Some(Output::Values(a)), Output::Values(b)) => Output::Values(
                ndarray::concatenate(Axis(0), &[a.view(), b.view()]).map_err(|e| e.to_string())?,
            ),
            _ => return Err("mixed outputs".into()),
        });
        oof_rows.extend_from_slice(held_out);
        let sample: Vec<usize> = train
            .iter()
            .step_by((train.len() / TRAIN_SCORE_ROWS).max(1))
            .copied()
            .collect();
        let train_out = predict_rows(prepared, &model, &sample)?;
        let y = prepared.y.select(Axis(0), &sample);
        train_scores.push(evaluate(cfg.problem, &train_out, y.view(), n_classes));
        if folds.len() == 1 && algorithm.exportable() {
            kept = Some(model);
        }
    }
    let y = prepared.y.select(Axis(0), &oof_rows);
    let validation = evaluate(cfg.problem, &oof.ok_or("no folds")?, y.view(), n_classes);
    let train = average(&train_scores);
    Ok((validation, train, kept))
}

fn average(scores: &[Vec<(Metric, f64)>]) -> Vec<(Metric, f64)> {
    let Some(first) = scores.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|(m, _)| {
            let v = scores.iter().map(|s| value(s, *m)).sum::<f64>() / scores.len() as f64;
            (*m, v)
        })
        .collect()
}

/// Run the sweep to its budget; returns every trial (failed ones included) and why it stopped.
///
/// Trials run on their own threads while this thread dispatches and records them. A fit cannot
/// be interrupted inside a library, so at the deadline or on cancel the trials still running
/// are abandoned: their threads finish on their own and their results are dropped, and the
/// sweep returns at once.
pub fn run(
    prepared: &Arc<Prepared>,
    cfg: &Arc<SweepConfig>,
    observer: &dyn Observer,
    cancelled: &AtomicBool,
) -> (Vec<TrialResult>, StopReason) {
    let trials = Arc::new(Estimators {
        prepared: prepared.clone(),
        cfg: cfg.clone(),
        folds: folds_of(prepared, cfg.seed),
    });
    sweep(cfg, trials, observer, cancelled)
}

/// Runs one trial: the sweep's only contact with the estimators (the budget tests put fakes
/// with known durations in their place).
pub(crate) trait Trials: Send + Sync + 'static {
    fn run(
        &self,
        number: usize,
        algorithm: Algorithm,
        params: Params,
        config: Vec<f64>,
    ) -> TrialResult;
}

/// The real trials: fit and score on the prepared data's folds.
struct Estimators {
    prepared: Arc<Prepared>,
    cfg: Arc<SweepConfig>,
    folds: Vec<(Vec<usize>, Vec<usize>)>,
}

impl Trials for Estimators {
    fn run(
        &self,
        number: usize,
        algorithm: Algorithm,
        params: Params,
        config: Vec<f64>,
    ) -> TrialResult {
        evaluate_trial(
            &self.prepared,
            &self.cfg,
            &self.folds,
            number,
            algorithm,
            params,
            config,
        )
    }
}

/// The search loop over any [`Trials`].
pub(crate) fn sweep(
    cfg: &Arc<SweepConfig>,
    trials: Arc<dyn Trials>,
    observer: &dyn Observer,
    cancelled: &AtomicBool,
) -> (Vec<TrialResult>, StopReason) {
    let mut scheduler = Scheduler {
        locals: cfg
            .algorithms
            .iter()
            .map(|a| Local::new(*a, cfg.problem))
            .collect(),
        rng: StdRng::seed_from_u64(cfg.seed),
        started: 0,
        best_loss: f64::INFINITY,
        since_improvement: 0,
        last_improvement: Instant::now(),
        created: Instant::now(),
        tried: Default::default(),
        stop: None,
    };
    let (tx, rx) = mpsc::channel::<(usize, TrialResult)>();
    let mut results = Vec::new();
    let mut in_flight = 0usize;
    let mut abandoned = 0usize;
    // Only the best exportable trial's model is kept.
    let mut best_kept: Option<(f64, usize)> = None;
    loop {
        while in_flight < cfg.workers.max(1) {
            let Some((number, i, config)) = scheduler.next(cfg, cancelled) else {
                break;
            };
            let l = &scheduler.locals[i];
            let (algorithm, params) = (l.algorithm, Params::decode(&l.space, &config));
            let (trials, tx) = (trials.clone(), tx.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("automl-trial-{number}"))
                .spawn(move || {
                    let trial = trials.run(number, algorithm, params, config);
                    let _ = tx.send((i, trial));
                });
            match spawned {
                Ok(_) => in_flight += 1,
                Err(e) => {
                    tracing::warn!("cannot start an AutoML trial thread: {e}");
                    break;
                }
            }
        }
        if in_flight == 0 {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((i, mut trial)) => {
                in_flight -= 1;
                if trial.model.is_some() {
                    if best_kept.is_none_or(|(loss, _)| trial.loss < loss) {
                        if let Some((_, previous)) = best_kept {
                            if let Some(t) = results
                                .iter_mut()
                                .find(|t: &&mut TrialResult| t.number == previous)
                            {
                                t.model = None;
                            }
                        }
                        best_kept = Some((trial.loss, trial.number));
                    } else {
                        trial.model = None;
                    }
                }
                let factor = trial.params.cost_factor();
                let s = &mut scheduler;
                s.locals[i].report(
                    &trial.config,
                    trial.loss,
                    trial.duration.as_secs_f64(),
                    factor,
                    &mut s.rng,
                );
                if trial.loss < s.best_loss {
                    s.best_loss = trial.loss;
                    s.since_improvement = 0;
                    s.last_improvement = Instant::now();
                } else {
                    s.since_improvement += 1;
                }
                observer.trial_finished(&trial);
                results.push(trial);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                observer.tick();
                let stop = if cancelled.load(Ordering::Relaxed) {
                    Some(StopReason::Cancelled)
                } else if Instant::now() >= cfg.deadline {
                    Some(StopReason::Timeout)
                } else {
                    None
                };
                if let Some(stop) = stop {
                    scheduler.stop.get_or_insert(stop);
                    abandoned = in_flight;
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    if abandoned > 0 {
        tracing::info!(
            "AutoML: {abandoned} trial(s) still running at the end of the sweep were abandoned"
        );
    }
    results.sort_by_key(|t| t.number);
    (results, scheduler.stop.unwrap_or(StopReason::Timeout))
}

fn evaluate_trial(
    prepared: &Prepared,
    cfg: &SweepConfig,
    folds: &[(Vec<usize>, Vec<usize>)],
    number: usize,
    algorithm: Algorithm,
    params: Params,
    config: Vec<f64>,
) -> TrialResult {
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        run_trial(prepared, cfg, algorithm, &params, folds)
    }))
    .unwrap_or_else(|_| Err(format!("{algorithm} panicked while fitting")));
    let duration = started.elapsed();
    let (validation, train, error, model) = match outcome {
        Ok((v, t, m)) => (v, t, None, m.map(Arc::new)),
        Err(e) => (Vec::new(), Vec::new(), Some(e), None),
    };
    let loss = if error.is_some() {
        f64::INFINITY
    } else {
        cfg.metric.loss(value(&validation, cfg.metric))
    };
    TrialResult {
        number,
        algorithm,
        params,
        config,
        validation,
        train,
        loss,
        started,
        duration,
        error,
        model,
    }
}

/// Rows of `x` with column `feature` permuted (for permutation importance).
pub fn permuted(x: &Array2<f64>, feature_columns: &[usize], rng: &mut StdRng) -> Array2<f64> {
    use rand::seq::SliceRandom;
    let mut out = x.clone();
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    order.shuffle(rng);
    for c in feature_columns {
        for (i, j) in order.iter().enumerate() {
            out[[i, *c]] = x[[*j, *c]];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The search loop's budget, with fake estimators whose trials take known times.
    use super::*;
    use std::sync::Mutex;

    /// Trials that sleep for their algorithm's fixed duration and score a fixed loss, lower
    /// with every trial so the sweep always improves (no early stop). Records every start.
    struct Fake {
        /// Per algorithm: how long a trial takes and the loss it scores.
        table: Vec<(Algorithm, Duration, f64)>,
        started: Mutex<Vec<(Algorithm, Instant)>>,
    }

    impl Fake {
        fn new(table: &[(Algorithm, Duration, f64)]) -> Arc<Fake> {
            Arc::new(Fake {
                table: table.to_vec(),
                started: Mutex::new(Vec::new()),
            })
        }

        fn of(&self, algorithm: Algorithm) -> (Duration, f64) {
            let (_, d, l) = self.table.iter().find(|(a, _, _)| *a == algorithm).unwrap();
            (*d, *l)
        }
    }

    impl Trials for Fake {
        fn run(
            &self,
            number: usize,
            algorithm: Algorithm,
            params: Params,
            config: Vec<f64>,
        ) -> TrialResult {
            let started = Instant::now();
            self.started.lock().unwrap().push((algorithm, started));
            let (duration, loss) = self.of(algorithm);
            std::thread::sleep(duration);
            TrialResult {
                number,
                algorithm,
                params,
                config,
                validation: vec![(Metric::F1, 0.5)],
                train: vec![(Metric::F1, 0.5)],
                loss: loss - 1e-6 * number as f64,
                started,
                duration: started.elapsed(),
                error: None,
                model: None,
            }
        }
    }

    struct Quiet;
    impl Observer for Quiet {
        fn trial_finished(&self, _: &TrialResult) {}
    }

    fn config(algorithms: &[Algorithm], budget: Duration) -> Arc<SweepConfig> {
        Arc::new(SweepConfig {
            problem: Problem::Classification,
            metric: Metric::F1,
            algorithms: algorithms.to_vec(),
            deadline: Instant::now() + budget,
            max_trials: 10_000,
            seed: 7,
            workers: 1,
        })
    }

    /// How long after the deadline the loop may take to notice it (it wakes every 100 ms).
    const LOOP_RESERVE: Duration = Duration::from_millis(500);

    #[test]
    fn a_15_second_sweep_ends_on_its_budget_and_starts_no_trial_that_cannot_fit() {
        let slow = Duration::from_secs(4);
        let fast = Duration::from_millis(250);
        // SVM scores far better, so the scheduler wants it for nearly every trial; each takes
        // 4 s. Neither estimator's cost depends on its parameters (no trees, no depth).
        let fake = Fake::new(&[
            (Algorithm::Svm, slow, 0.1),
            (Algorithm::LogisticRegression, fast, 1.0),
        ]);
        let cfg = config(
            &[Algorithm::LogisticRegression, Algorithm::Svm],
            Duration::from_secs(15),
        );
        let (trials, stop) = sweep(&cfg, fake.clone(), &Quiet, &AtomicBool::new(false));
        let ended = Instant::now();

        assert_eq!(stop, StopReason::Timeout, "{}", stop.as_str());
        assert_eq!(stop.as_str(), "time budget reached");
        assert!(
            ended <= cfg.deadline + LOOP_RESERVE,
            "the sweep returned {:?} after its deadline",
            ended - cfg.deadline
        );
        let started = fake.started.lock().unwrap().clone();
        for (algorithm, at) in &started {
            let (needs, _) = fake.of(*algorithm);
            assert!(
                *at + needs <= cfg.deadline + Duration::from_millis(200),
                "{algorithm} was started {:?} before the deadline although a trial takes {needs:?}",
                cfg.deadline.saturating_duration_since(*at)
            );
        }
        let svm = started.iter().filter(|(a, _)| *a == Algorithm::Svm).count();
        assert!(svm >= 2, "SVM ran {svm} times: {started:?}");
        // After the last SVM trial that fitted, the sweep went on with the trials that fit.
        let late_fast = started
            .iter()
            .filter(|(a, at)| *a == Algorithm::LogisticRegression && *at + slow > cfg.deadline)
            .count();
        assert!(
            late_fast >= 3,
            "only {late_fast} short trials in the last 4 s"
        );
        // Every started trial finished inside the budget and is reported.
        assert_eq!(trials.len(), started.len());
    }

    #[test]
    fn a_trial_still_running_at_the_deadline_is_abandoned_not_waited_for() {
        // The first trial of an estimator has no cost estimate yet, so it starts; it outlives
        // the budget and the sweep returns at the deadline without it.
        let fake = Fake::new(&[(Algorithm::Svm, Duration::from_secs(10), 0.1)]);
        let cfg = config(&[Algorithm::Svm], Duration::from_secs(2));
        let (trials, stop) = sweep(&cfg, fake.clone(), &Quiet, &AtomicBool::new(false));
        assert!(Instant::now() <= cfg.deadline + LOOP_RESERVE);
        assert_eq!(stop, StopReason::Timeout);
        assert!(trials.is_empty());
        assert_eq!(fake.started.lock().unwrap().len(), 1);
    }

    #[test]
    fn cancel_stops_the_sweep_within_the_loop_reserve() {
        let fake = Fake::new(&[(Algorithm::Svm, Duration::from_secs(10), 0.1)]);
        let cfg = config(&[Algorithm::Svm], Duration::from_secs(60));
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        let at = Instant::now() + Duration::from_millis(500);
        std::thread::spawn(move || {
            std::thread::sleep(at - Instant::now());
            flag.store(true, Ordering::Relaxed);
        });
        let (_, stop) = sweep(&cfg, fake, &Quiet, &cancelled);
        assert_eq!(stop, StopReason::Cancelled);
        assert!(Instant::now() <= at + LOOP_RESERVE);
    }
}
