//! Running a whole study: check what is already there, then run the trials that are not
//! finished (`--jobs` at a time), each resuming from its last checkpoint, and rebuild
//! `trials.csv` from the trials' own status files as they end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use toml::Value;

use crate::spec::{Study, TrialConfig};
use crate::store::lock::{Hold, MergeLock, StudyLock, TrialLock};
use crate::store::{self, Status, TrialDir, TrialRow, TrialStatus};

/// How to run a study.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The study directory (trials.csv and one folder per trial).
    pub out: PathBuf,
    /// Trials run at once.
    pub jobs: usize,
    /// Show progress bars (on a terminal).
    pub progress: bool,
    /// Start again the trials whose recorded configuration differs from the file's (and
    /// unfinished trials, instead of resuming them).
    pub restart: bool,
    /// Run only these trials (indices into `Study::trials`, from `--trial`); all when `None`.
    pub only: Option<Vec<usize>>,
}

/// What a run did.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    pub ran: usize,
    pub skipped: usize,
    pub done: usize,
    pub diverged: usize,
    /// Trials stopped by SIGINT or SIGTERM with their state saved.
    pub interrupted: usize,
    /// Trials not started because a stop was asked for.
    pub not_started: usize,
    pub failed: Vec<(String, String)>,
    /// Trials left alone because another process is running them: (trial, holder).
    pub busy: Vec<(String, String)>,
    /// Trials that continued from a checkpoint: (trial, step).
    pub resumed: Vec<(String, u64)>,
    /// Notes of the trials that ran (damaged checkpoints skipped, restarts): (trial, note).
    pub notes: Vec<(String, String)>,
}

/// Why a trial picked to run did not run here.
enum Busy {
    /// Another process holds it (the holder, as its lock file names it).
    Held(String),
    /// Another process finished it after this run looked.
    FinishedMeanwhile,
}

/// The most trials run at once: four per core. More only adds threads that wait for the cores.
pub fn max_jobs() -> usize {
    4 * std::thread::available_parallelism().map_or(1, |n| n.get())
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

/// Keys that change no recorded number: a trial recorded with other values of them is the same
/// trial (earlier versions saved parameters less often, for one).
const RESULT_NEUTRAL_KEYS: [&str; 2] = ["record.checkpoint_every", "record.checkpoint_minutes"];

/// Seconds between two rebuilds of `trials.csv` while trials end (it reads every trial's
/// status, so rebuilding after each of many short trials would cost the square of their count).
const REBUILD_EVERY_S: f64 = 2.0;

/// The keys at which a recorded configuration differs from the file's, leaving out those
/// that change no number (how often a trial saves checkpoints).
fn result_differences(recorded: &TrialConfig, now: &TrialConfig) -> Vec<String> {
    differing_keys(recorded, now)
        .into_iter()
        .filter(|k| !RESULT_NEUTRAL_KEYS.contains(&k.as_str()))
        .collect()
}

/// The dotted keys at which two configurations differ.
pub fn differing_keys(a: &TrialConfig, b: &TrialConfig) -> Vec<String> {
    fn walk(prefix: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
        match (a, b) {
            (Some(Value::Table(x)), Some(Value::Table(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let p = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&p, x.get(k), y.get(k), out);
                }
            }
            (x, y) if x != y => out.push(prefix.to_string()),
            _ => {}
        }
    }
    let (a, b) = (Value::try_from(a).ok(), Value::try_from(b).ok());
    let mut out = Vec::new();
    walk("", a.as_ref(), b.as_ref(), &mut out);
    out
}

/// The rows of `trials.csv` from the trials' own status files: a trial without one (not
/// started yet) shows as `running` with its seed.
fn trial_rows(study: &Study, out: &Path) -> Vec<TrialRow> {
    study
        .trials
        .iter()
        .map(|t| TrialRow {
            trial: t.name.clone(),
            swept: t.swept.iter().map(swept_text).collect(),
            status: TrialDir::new(out, &t.name)
                .read_status()
                .unwrap_or_else(|| TrialStatus::running(&t.config)),
        })
        .collect()
}

/// Rewrites `OUT/trials.csv` from the status files of the study's trials. Several processes
/// (Slurm array tasks) may want to at once: they take turns, so the last to write read every
/// status written before it, and the table ends complete.
pub fn rebuild_trials_csv(study: &Study, out: &Path) -> anyhow::Result<()> {
    let _turn = MergeLock::wait(out)?;
    store::write_trials_csv(
        &out.join("trials.csv"),
        &study.swept_keys,
        &trial_rows(study, out),
    )
}

/// Opens the study folder `out` for one run of the whole study or of some of its trials:
/// refuses a folder of the user's own files before anything is written into it, creates it,
/// and takes its lock (held until it is dropped).
pub fn open(out: &Path, hold: Hold) -> anyhow::Result<StudyLock> {
    store::lock::check_study_folder(out)?;
    let new = !out.join(store::lock::STUDY_MARKER).exists();
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    // A new folder is marked at once, so that other processes starting the same study see
    // ganlab's folder (an existing study is left as it is until its run is under way).
    if new {
        mark_study_folder(out)?;
    }
    StudyLock::acquire(out, hold)
}

/// Marks `out` as a folder of ganlab's own (see [`store::lock::check_study_folder`]).
pub fn mark_study_folder(out: &Path) -> anyhow::Result<()> {
    store::write_atomic(
        &out.join(store::lock::STUDY_MARKER),
        b"This folder is a ganlab study: `ganlab run` writes its trials here.\n",
    )
}

/// Writes the study's own files into `out`: the marker, a copy of the experiment file, the
/// folder's README and `trials.csv` (every trial, as far as it got).
pub fn write_study_files(study: &Study, out: &Path) -> anyhow::Result<()> {
    mark_study_folder(out)?;
    let source = std::fs::read(&study.file)
        .with_context(|| format!("cannot read {}", study.file.display()))?;
    store::write_atomic(&out.join("experiment.toml"), &source)?;
    store::write_atomic(&out.join("README.md"), store::STUDY_README.as_bytes())?;
    rebuild_trials_csv(study, out)
}

/// The trials that `--trial` names, as indices into `study.trials` in study order: a
/// comma-separated list of indices (as `ganlab validate` numbers them, from 0, which is also
/// a Slurm array task's number), inclusive ranges `A-B`, and trial names.
pub fn select_trials(study: &Study, text: &str) -> anyhow::Result<Vec<usize>> {
    let n = study.trials.len();
    let allowed = || {
        format!(
            "--trial takes indices 0 to {} (as `ganlab validate` lists them), ranges such as \
             0-{}, or trial names, separated by commas",
            n.saturating_sub(1),
            n.saturating_sub(1)
        )
    };
    let index = |s: &str| -> anyhow::Result<usize> {
        match s.trim().parse::<usize>() {
            Ok(i) if i < n => Ok(i),
            Ok(i) => anyhow::bail!(
                "--trial {text}: study `{}` has {n} trial(s), so there is no trial {i}; {}",
                study.name,
                allowed()
            ),
            Err(_) => anyhow::bail!("--trial {text}: `{s}` is not a trial; {}", allowed()),
        }
    };
    let mut chosen = std::collections::BTreeSet::new();
    for item in text.split(',').map(str::trim) {
        if item.is_empty() {
            anyhow::bail!("--trial {text}: an empty item; {}", allowed());
        }
        if let Some(i) = study.trials.iter().position(|t| t.name == item) {
            chosen.insert(i);
        } else if let Some((a, b)) = item
            .split_once('-')
            .filter(|(a, _)| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()))
        {
            let (a, b) = (index(a)?, index(b)?);
            if a > b {
                anyhow::bail!(
                    "--trial {text}: the range {item} runs backwards; {}",
                    allowed()
                );
            }
            chosen.extend(a..=b);
        } else {
            chosen.insert(index(item)?);
        }
    }
    Ok(chosen.into_iter().collect())
}

/// Whether every trial of `study` under `out` has ended (done, diverged or failed), as their
/// status files say: the moment for the report when trials run as separate processes.
pub fn all_trials_ended(study: &Study, out: &Path) -> bool {
    study.trials.iter().all(|t| {
        TrialDir::new(out, &t.name)
            .read_status()
            .is_some_and(|s| matches!(s.status, Status::Done | Status::Diverged | Status::Failed))
    })
}

/// Runs every trial of `study` that is not already finished under `opts.out`, whose lock
/// the caller holds (see [`open`]).
pub fn run(study: &Study, opts: &RunOptions, _lock: &StudyLock) -> anyhow::Result<RunSummary> {
    // Check the existing trials before writing anything.
    let mut todo: Vec<usize> = Vec::new();
    let mut changed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let chosen = |i: &usize| opts.only.as_ref().is_none_or(|only| only.contains(i));
    // Every recorded trial is compared, also those another process runs: a run of some
    // trials must not rewrite the study's experiment file under the others.
    let mut others_changed: Vec<String> = Vec::new();
    for (i, t) in study.trials.iter().enumerate() {
        let dir = TrialDir::new(&opts.out, &t.name);
        if !chosen(&i) {
            if dir
                .read_config()
                .is_some_and(|recorded| !result_differences(&recorded, &t.config).is_empty())
            {
                others_changed.push(t.name.clone());
            }
            continue;
        }
        let finished = dir.read_status().is_some_and(|s| s.status.is_finished());
        if dir.path.join("config.toml").exists() {
            let differs: Vec<String> = match dir.read_config() {
                Some(recorded) => result_differences(&recorded, &t.config),
                None => vec!["(config.toml does not parse)".into()],
            };
            if !differs.is_empty() {
                changed.insert(t.name.clone(), differs);
                todo.push(i);
                continue;
            }
        }
        if !finished {
            todo.push(i);
        }
    }
    if !changed.is_empty() && !opts.restart {
        let list: Vec<String> = changed
            .iter()
            .take(5)
            .map(|(name, keys)| format!("  {name}: {}", keys.join(", ")))
            .collect();
        anyhow::bail!(
            "{} holds {} trial(s) recorded with a different configuration than {} now gives; \
             the keys that differ:\n{}{}\nrun again with --restart to start those trials \
             afresh, or write this study elsewhere with --out",
            opts.out.display(),
            changed.len(),
            study.file.display(),
            list.join("\n"),
            if changed.len() > 5 { "\n  ..." } else { "" }
        );
    }

    if !others_changed.is_empty() {
        anyhow::bail!(
            "{}: {} other trial(s) of this study ({}{}) were recorded with a different \
             configuration than {} now gives; a run of some trials does not change the study \
             under them: run the whole study with --restart, or write elsewhere with --out",
            opts.out.display(),
            others_changed.len(),
            others_changed[..others_changed.len().min(5)].join(", "),
            if others_changed.len() > 5 {
                ", ..."
            } else {
                ""
            },
            study.file.display()
        );
    }

    write_study_files(study, &opts.out)?;

    let selected = (0..study.trials.len()).filter(chosen).count();
    let mut summary = RunSummary {
        skipped: selected - todo.len(),
        ran: todo.len(),
        ..Default::default()
    };
    // The classifiers that measure image sample quality, trained once per data set (then
    // cached) before any trial starts, rather than inside the first trials that need them.
    for d in crate::quality::measured_image_data(todo.iter().map(|&i| &study.trials[i].config)) {
        crate::quality::cache::obtain(&d)?;
    }
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

    // Each group of trials (one trial, or trials batched as one model) runs on a plain thread
    // that takes the next group when it is done, so at most `jobs` groups are open at any
    // moment. (On a rayon pool, a worker waiting for the step threads steals and opens
    // further trials.)
    let jobs = opts.jobs.clamp(1, max_jobs());
    let work = crate::batch::groups(study, &todo, jobs);
    let workers = jobs.min(work.len());
    let next = AtomicUsize::new(0);
    let last_rebuild = Mutex::new(std::time::Instant::now());
    let outcomes = Mutex::new(Vec::with_capacity(todo.len()));
    std::thread::scope(|scope| {
        for w in 0..workers {
            let worker = || loop {
                if crate::interrupt::requested() {
                    break;
                }
                let Some(group) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    break;
                };
                // One process per trial, whichever run or array task it belongs to: the
                // trials of a group that another process holds, or finished between the
                // check above and this lock, are left as they are.
                let mut held = Vec::new();
                let mut runnable = Vec::new();
                let mut ended: Vec<(usize, Result<TrialStatus, Busy>)> = Vec::new();
                for &i in group {
                    let t = &study.trials[i];
                    let dir = TrialDir::new(&opts.out, &t.name);
                    let restart = opts.restart && changed.contains_key(&t.name);
                    match TrialLock::acquire(&dir.path) {
                        Ok(Ok(lock))
                            if !restart
                                && dir.read_status().is_some_and(|s| s.status.is_finished()) =>
                        {
                            drop(lock);
                            ended.push((i, Err(Busy::FinishedMeanwhile)));
                        }
                        Ok(Ok(lock)) => {
                            held.push(lock);
                            runnable.push((i, dir, restart));
                        }
                        Ok(Err(holder)) => ended.push((i, Err(Busy::Held(holder.to_string())))),
                        Err(e) => {
                            let mut failed = TrialStatus::running(&t.config);
                            failed.status = Status::Failed;
                            failed.error = Some(format!("{e:#}"));
                            ended.push((i, Ok(failed)));
                        }
                    }
                }
                let progress = |n| step_bar.inc(n);
                if runnable.len() == 1 && group.len() == 1 {
                    let (i, dir, restart) = &runnable[0];
                    let cfg = &study.trials[*i].config;
                    let status = crate::trial::run_in_dir(dir, cfg, *restart, &progress);
                    ended.push((*i, Ok(status)));
                } else if !runnable.is_empty() {
                    let dirs: Vec<TrialDir> = runnable.iter().map(|(_, d, _)| d.clone()).collect();
                    let cfgs: Vec<&TrialConfig> = runnable
                        .iter()
                        .map(|(i, ..)| &study.trials[*i].config)
                        .collect();
                    let restarts: Vec<bool> = runnable.iter().map(|(.., r)| *r).collect();
                    let statuses =
                        crate::batch::run_group_in_dirs(&dirs, &cfgs, &restarts, &progress);
                    for ((i, ..), status) in runnable.iter().zip(statuses) {
                        ended.push((*i, Ok(status)));
                    }
                }
                drop(held);
                {
                    let mut last = last_rebuild.lock().unwrap_or_else(|e| e.into_inner());
                    if last.elapsed().as_secs_f64() >= REBUILD_EVERY_S {
                        if let Err(e) = rebuild_trials_csv(study, &opts.out) {
                            eprintln!("ganlab: cannot update trials.csv: {e:#}");
                        }
                        *last = std::time::Instant::now();
                    }
                }
                for (i, status) in ended {
                    trial_bar.inc(1);
                    let state = status.as_ref().map_or("left alone", |s| s.status.as_str());
                    trial_bar.set_message(format!("{} {state}", study.trials[i].name));
                    outcomes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, status));
                }
            };
            std::thread::Builder::new()
                .name(format!("ganlab-trial-{w}"))
                .spawn_scoped(scope, worker)
                .context("cannot start a trial thread")?;
        }
        Ok::<_, anyhow::Error>(())
    })?;
    if let Err(e) = rebuild_trials_csv(study, &opts.out) {
        eprintln!("ganlab: cannot update trials.csv: {e:#}");
    }
    let mut outcomes = outcomes.into_inner().unwrap_or_else(|e| e.into_inner());
    outcomes.sort_by_key(|(i, _)| *i);
    summary.not_started = todo.len() - outcomes.len();
    summary.ran = outcomes.iter().filter(|(_, s)| s.is_ok()).count();
    trial_bar.finish();
    step_bar.finish();

    for (i, s) in outcomes {
        let name = &study.trials[i].name;
        let s = match s {
            Ok(s) => s,
            Err(Busy::Held(holder)) => {
                summary.busy.push((name.clone(), holder));
                continue;
            }
            Err(Busy::FinishedMeanwhile) => {
                summary.skipped += 1;
                continue;
            }
        };
        if let Some(step) = s.resumed_from {
            summary.resumed.push((name.clone(), step));
        }
        summary
            .notes
            .extend(s.notes.iter().map(|n| (name.clone(), n.clone())));
        match s.status {
            Status::Done => summary.done += 1,
            Status::Diverged => summary.diverged += 1,
            Status::Interrupted => summary.interrupted += 1,
            _ => summary
                .failed
                .push((name.clone(), s.error.clone().unwrap_or_default())),
        }
    }
    Ok(summary)
}
