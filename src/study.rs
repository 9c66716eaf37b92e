//! Running a whole study: check what is already there, then train the trials (in parallel
//! with rayon), keeping `trials.csv` current as trials end.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use rayon::prelude::*;
use toml::Value;

use crate::spec::{PlannedTrial, Study};
use crate::store::{self, CsvSink, Figure, Status, TrialDir, TrialRow, TrialStatus};
use crate::train::trial::{run_configured, Ending};

/// How to run a study.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The study directory (trials.csv and one folder per trial).
    pub out: PathBuf,
    /// Trials run at once.
    pub jobs: usize,
    /// Show progress bars (on a terminal).
    pub progress: bool,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub ran: usize,
    pub skipped: usize,
    pub done: usize,
    pub diverged: usize,
    pub failed: Vec<(String, String)>,
}

/// The default study directory for a study name.
pub fn default_out(name: &str) -> PathBuf {
    Path::new("notebooks-data").join(name)
}

fn swept_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Runs every trial of `study` that is not already finished under `opts.out`.
pub fn run(study: &Study, opts: &RunOptions) -> anyhow::Result<RunSummary> {
    // Check the existing directory before writing anything.
    let mut rows = Vec::with_capacity(study.trials.len());
    let mut todo: Vec<usize> = Vec::new();
    for (i, t) in study.trials.iter().enumerate() {
        let dir = TrialDir::new(&opts.out, &t.name);
        let recorded = dir.read_config();
        let status = dir.read_status();
        if dir.path.join("config.toml").exists() && recorded.as_ref() != Some(&t.config) {
            anyhow::bail!(
                "{} holds trial `{}` run with a different configuration than {} now gives; \
                 write this study elsewhere with --out, or remove that folder",
                opts.out.display(),
                t.name,
                study.file.display()
            );
        }
        let row_status = match status {
            Some(s) if s.status.is_finished() => s,
            _ => {
                todo.push(i);
                TrialStatus::running(&t.config)
            }
        };
        rows.push(TrialRow {
            trial: t.name.clone(),
            swept: t.swept.iter().map(swept_text).collect(),
            status: row_status,
        });
    }

    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let source = std::fs::read(&study.file)
        .with_context(|| format!("cannot read {}", study.file.display()))?;
    store::write_atomic(&opts.out.join("experiment.toml"), &source)?;
    store::write_atomic(&opts.out.join("README.md"), store::STUDY_README.as_bytes())?;
    let trials_csv = opts.out.join("trials.csv");
    store::write_trials_csv(&trials_csv, &study.swept_keys, &rows)?;

    let mut summary = RunSummary {
        skipped: study.trials.len() - todo.len(),
        ran: todo.len(),
        ..Default::default()
    };
    let rows = Mutex::new(rows);
    let bars = MultiProgress::new();
    if !opts.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let trial_bar = bars.add(ProgressBar::new(todo.len() as u64));
    trial_bar.set_style(
        ProgressStyle::with_template("trials {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let total_steps: u64 = todo.iter().map(|&i| study.trials[i].config.steps).sum();
    let step_bar = bars.add(ProgressBar::new(total_steps));
    step_bar.set_style(
        ProgressStyle::with_template("steps  {bar:30} {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()?;
    let outcomes: Vec<(usize, TrialStatus)> = pool.install(|| {
        todo.par_iter()
            .map(|&i| {
                let t = &study.trials[i];
                let status = run_one(t, &opts.out, &|n| step_bar.inc(n));
                {
                    let mut rows = rows.lock().unwrap_or_else(|e| e.into_inner());
                    rows[i].status = status.clone();
                    if let Err(e) = store::write_trials_csv(&trials_csv, &study.swept_keys, &rows) {
                        tracing_fallback(&format!("cannot update trials.csv: {e:#}"));
                    }
                }
                trial_bar.inc(1);
                trial_bar.set_message(format!("{} {}", t.name, status.status.as_str()));
                (i, status)
            })
            .collect()
    });
    trial_bar.finish();
    step_bar.finish();

    for (i, s) in outcomes {
        match s.status {
            Status::Done => summary.done += 1,
            Status::Diverged => summary.diverged += 1,
            _ => summary.failed.push((
                study.trials[i].name.clone(),
                s.error.clone().unwrap_or_default(),
            )),
        }
    }
    Ok(summary)
}

fn tracing_fallback(msg: &str) {
    eprintln!("ganlab: {msg}");
}

/// Runs one trial; any error or panic inside becomes a `failed` status, so the sweep goes on.
fn run_one(t: &PlannedTrial, out: &Path, progress: &(dyn Fn(u64) + Sync)) -> TrialStatus {
    let dir = TrialDir::new(out, &t.name);
    let mut status = TrialStatus::running(&t.config);
    let result = dir.start(&t.config).and_then(|_| {
        let mut sink = CsvSink::new(&dir.path, t.config.precision == crate::spec::Precision::F32);
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            run_configured(&t.config, &mut sink, progress)
        }))
        .map_err(|p| {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            anyhow::anyhow!("internal error: {msg}")
        })??;
        sink.finish()?;
        Ok(outcome)
    });
    match result {
        Ok(o) => {
            status.status = match o.ending {
                Ending::Done => Status::Done,
                Ending::Diverged { .. } => Status::Diverged,
            };
            status.diverged_at = match o.ending {
                Ending::Diverged { at_step } => Some(at_step),
                Ending::Done => None,
            };
            status.steps = o.steps_done;
            status.wall_time_s = o.wall_time_s;
            status.finals = o
                .finals
                .into_iter()
                .map(|(name, value)| Figure { name, value })
                .collect();
        }
        Err(e) => {
            status.status = Status::Failed;
            status.error = Some(format!("{e:#}"));
        }
    }
    if let Err(e) = dir.write_status(&status) {
        status.status = Status::Failed;
        status.error = Some(format!("cannot write status: {e:#}"));
    }
    status
}
