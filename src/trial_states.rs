//! The state of every trial of a study folder, as `ganlab status` shows it: what each trial's
//! own status file says, and whether a process holds the trial's lock now (which tells a
//! running trial from one whose process died, on any host whose file system passes locks on).

use std::path::Path;

use anyhow::Context;

use crate::store::lock::{self, Holder};
use crate::store::{list_checkpoints, Status, TrialDir};

/// Where a trial stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Done,
    Diverged {
        at_step: Option<u64>,
    },
    Failed {
        error: String,
    },
    /// Stopped by a signal after saving its state; the next run resumes it.
    Interrupted,
    /// A process runs it now.
    Running {
        holder: Holder,
    },
    /// Its status says running but no process holds it: killed (or its machine went down)
    /// without saving; the next run resumes from its last checkpoint.
    Stopped,
    NotStarted,
}

impl State {
    pub fn name(&self) -> &'static str {
        match self {
            State::Done => "done",
            State::Diverged { .. } => "diverged",
            State::Failed { .. } => "failed",
            State::Interrupted => "interrupted",
            State::Running { .. } => "running",
            State::Stopped => "interrupted",
            State::NotStarted => "not started",
        }
    }
}

/// One trial's line of `ganlab status`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialState {
    pub trial: String,
    pub state: State,
    /// Steps done as recorded (for a running trial: its newest checkpoint's step).
    pub steps: u64,
    /// The trial's planned steps, when its configuration is recorded.
    pub planned: Option<u64>,
    /// The host of the run that last wrote its status.
    pub host: String,
}

impl TrialState {
    /// What a reader needs beyond the state: where it runs, why it failed, where it resumes.
    pub fn detail(&self) -> String {
        match &self.state {
            State::Running { holder } => format!("on {holder}"),
            State::Diverged { at_step: Some(s) } => format!("diverged at step {s}"),
            State::Failed { error } => error.lines().next().unwrap_or_default().to_string(),
            State::Interrupted => format!("saved at step {}; the next run resumes it", self.steps),
            State::Stopped => format!(
                "its process on {} ended without saving (killed?); the next run resumes from \
                 the checkpoint at step {}",
                if self.host.is_empty() {
                    "?"
                } else {
                    &self.host
                },
                self.steps
            ),
            _ => String::new(),
        }
    }
}

/// The trials listed in `dir/trials.csv`, in its order.
fn listed_trials(dir: &Path) -> anyhow::Result<Vec<String>> {
    let path = dir.join("trials.csv");
    if !path.is_file() {
        anyhow::bail!(
            "{}: no trials.csv here; `ganlab status` takes a study folder written by `ganlab \
             run` or its Slurm tasks (the folder holding trials.csv)",
            dir.display()
        );
    }
    let mut reader =
        csv::Reader::from_path(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let column = reader
        .headers()
        .with_context(|| format!("{}: cannot read the header", path.display()))?
        .iter()
        .position(|h| h == "trial")
        .with_context(|| format!("{}: no `trial` column", path.display()))?;
    let mut trials = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row =
            row.with_context(|| format!("{}: row {} is unreadable", path.display(), i + 2))?;
        trials.push(row.get(column).unwrap_or_default().to_string());
    }
    Ok(trials)
}

/// The state of every trial of the study folder `dir`.
pub fn read(dir: &Path) -> anyhow::Result<Vec<TrialState>> {
    let trials = listed_trials(dir)?;
    Ok(trials
        .into_iter()
        .map(|trial| {
            let t = TrialDir::new(dir, &trial);
            let planned = t.read_config().map(|c| c.steps);
            let holder = lock::held_by(&t.path.join(lock::LOCK_FILE));
            let newest_checkpoint = || list_checkpoints(&t.path).last().map_or(0, |(s, _)| *s);
            let Some(status) = t.read_status() else {
                return TrialState {
                    state: match holder {
                        Some(holder) => State::Running { holder },
                        None => State::NotStarted,
                    },
                    trial,
                    steps: 0,
                    planned,
                    host: String::new(),
                };
            };
            let (state, steps) = match (status.status, holder) {
                (_, Some(holder)) if !status.status.is_finished() => {
                    (State::Running { holder }, newest_checkpoint())
                }
                (Status::Done, _) => (State::Done, status.steps),
                (Status::Diverged, _) => (
                    State::Diverged {
                        at_step: status.diverged_at,
                    },
                    status.steps,
                ),
                (Status::Failed, _) => (
                    State::Failed {
                        error: status.error.clone().unwrap_or_default(),
                    },
                    status.steps,
                ),
                (Status::Interrupted, _) => (State::Interrupted, status.steps),
                (Status::Running, _) => (State::Stopped, newest_checkpoint()),
            };
            TrialState {
                trial,
                state,
                steps,
                planned,
                host: status.host,
            }
        })
        .collect())
}

/// `ganlab status`'s table: a line per trial and a count of each state.
pub fn render(states: &[TrialState]) -> String {
    let width = states
        .iter()
        .map(|s| s.trial.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let mut out = format!(
        "{:width$}  {:11}  {:>15}  detail\n",
        "trial", "state", "steps"
    );
    for s in states {
        let steps = match s.planned {
            Some(p) => format!("{}/{p}", s.steps),
            None => s.steps.to_string(),
        };
        out.push_str(&format!(
            "{:width$}  {:11}  {:>15}  {}\n",
            s.trial,
            s.state.name(),
            steps,
            s.detail()
        ));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for s in states {
        match counts.iter_mut().find(|(n, _)| *n == s.state.name()) {
            Some((_, c)) => *c += 1,
            None => counts.push((s.state.name(), 1)),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(n, c)| format!("{c} {n}")).collect();
    out.push_str(&format!(
        "{} trial(s): {}\n",
        states.len(),
        counts.join(", ")
    ));
    out
}
