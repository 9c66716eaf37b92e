//! One run per study folder at a time, and which folders are studies.
//!
//! `ganlab run` holds an exclusive lock on `OUT/.ganlab-lock` (the operating system's file
//! lock, released when the process ends, however it ends) for as long as it writes the study.
//! The file says who holds it: a second run is refused naming the holder's PID, host and start
//! time; a file left by a process that died is taken over, and the run says so.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::Context;

/// The file that marks a folder as a ganlab study.
pub const STUDY_MARKER: &str = ".ganlab-study";
/// The lock file of a study folder.
pub const LOCK_FILE: &str = ".ganlab-lock";

/// Refuses an output folder that exists, is not empty, and is not a study ganlab made: ganlab
/// never writes among a user's own files.
pub fn check_study_folder(out: &Path) -> anyhow::Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        anyhow::bail!(
            "{}: exists and is not a folder; pick another --out",
            out.display()
        );
    }
    // The locks and the marker on its way in are all that another process starting the
    // same study at the same moment may have put there yet.
    let empty = fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .flatten()
        .all(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            [LOCK_FILE, MERGE_LOCK_FILE].contains(&name.as_str())
                || (name.starts_with(&format!("{STUDY_MARKER}.")) && name.ends_with(".tmp~"))
        });
    // Studies written before the marker existed have the study README and experiment.toml.
    let legacy = out.join("experiment.toml").is_file()
        && fs::read_to_string(out.join("README.md"))
            .is_ok_and(|r| r.starts_with("# ganlab study folder"));
    if empty || out.join(STUDY_MARKER).is_file() || legacy {
        return Ok(());
    }
    anyhow::bail!(
        "{}: holds files that ganlab did not make (it is not a ganlab study: no {STUDY_MARKER}); \
         ganlab writes a study only into a new or empty folder or one of its own studies, so \
         pick another --out",
        out.display()
    )
}

/// How much of a study a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// The whole study (`ganlab run FILE`): no other run may write it meanwhile.
    Whole,
    /// Some of its trials (`ganlab run FILE --trial ...`, a Slurm array task): other runs of
    /// other trials may write beside it; each trial is locked on its own ([`TrialLock`]).
    Part,
}

/// How long a lock that is taken is tried for before the holder is named: a `ganlab status`
/// or `report --watch` that looks at a lock holds it for an instant.
const LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Tries `take` until it succeeds or [`LOCK_PATIENCE`] has passed: `Ok(false)` when the lock
/// stays held by someone else.
fn take_patiently(
    path: &Path,
    take: impl Fn() -> Result<(), fs::TryLockError>,
) -> anyhow::Result<bool> {
    let start = std::time::Instant::now();
    loop {
        match take() {
            Ok(()) => return Ok(true),
            Err(fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(fs::TryLockError::WouldBlock) => return Ok(false),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn open_lock_file(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Writes who holds a lock into its file: process, host, start time, and the Slurm job when
/// there is one, so that a refused run and `ganlab status` can name the holder.
fn write_holder(file: &mut File, path: &Path) -> anyhow::Result<()> {
    let mut me = format!(
        "pid = {}\nhost = \"{}\"\nstarted_at = \"{}\"\n",
        std::process::id(),
        super::host_name(),
        super::now()
    );
    if let Some(job) = slurm_job() {
        me.push_str(&format!("slurm_job = \"{job}\"\n"));
    }
    file.set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
        .and_then(|_| file.write_all(me.as_bytes()))
        .and_then(|_| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The Slurm job this process runs in (`ARRAYJOB_TASK` for an array task), if any.
pub fn slurm_job() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(job), Some(task)) => Some(format!("{job}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Who holds a lock, as its file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<i64>,
    pub host: String,
    pub started_at: String,
    pub slurm_job: Option<String>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let t: toml::Table = text.parse().unwrap_or_default();
        let s = |k: &str| t.get(k).and_then(|v| v.as_str()).map(String::from);
        Holder {
            pid: t.get("pid").and_then(|v| v.as_integer()),
            host: s("host").unwrap_or_default(),
            started_at: s("started_at").unwrap_or_default(),
            slurm_job: s("slurm_job"),
        }
    }
}

impl std::fmt::Display for Holder {
    /// As the lock file says it (`pid = 12, host = "node3", started_at = ...`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "pid = {pid}")?,
            None => write!(f, "holder unknown")?,
        }
        if !self.host.is_empty() {
            write!(f, ", host = {}", self.host)?;
        }
        if let Some(job) = &self.slurm_job {
            write!(f, ", slurm_job = {job}")?;
        }
        if !self.started_at.is_empty() {
            write!(f, ", started_at = {}", self.started_at)?;
        }
        Ok(())
    }
}

/// The holder of the lock file `path` when some process holds it now; `None` when nobody does
/// (or there is no such file). Looks by taking the lock for an instant, which works across
/// the hosts of a cluster wherever their shared file system passes locks on.
///
/// The look is a shared lock: it conflicts with the exclusive locks of trials and whole-study
/// runs only (never with other lookers or with the shared hold of `--trial` runs), and NFS
/// grants it on a file opened for reading. Where locks cannot be tried at all, the holder the
/// file names is taken at its word.
pub fn held_by(path: &Path) -> Option<Holder> {
    let mut file = File::open(path).ok()?;
    let look = file.try_lock_shared();
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let named = (!text.trim().is_empty()).then(|| Holder::parse(&text));
    match look {
        Ok(()) => None,
        Err(fs::TryLockError::WouldBlock) => Some(named.unwrap_or_default()),
        Err(fs::TryLockError::Error(_)) => named,
    }
}

/// The held lock of a study folder; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StudyLock {
    _file: File,
    pub hold: Hold,
    /// Set when the lock file was left by a run that is no longer running.
    pub took_over: Option<String>,
}

impl StudyLock {
    /// Takes the lock of `out` (which must exist) for the whole study or a part of it, or
    /// says who holds it.
    pub fn acquire(out: &Path, hold: Hold) -> anyhow::Result<StudyLock> {
        let path = out.join(LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        let taken = match hold {
            Hold::Whole => take_patiently(&path, || file.try_lock())?,
            Hold::Part => take_patiently(&path, || file.try_lock_shared())?,
        };
        // Who holds it, or held it last (read once the lock is decided: a run that ended
        // cleanly in the meantime left no holder).
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let holder = Holder::parse(&text);
        if !taken {
            // Shared holders alone (runs of some trials) let a shared lock through; a run of
            // the whole study does not.
            let parts_only = hold == Hold::Whole && file.try_lock_shared().is_ok();
            let _ = file.unlock();
            let trials = trials_being_run(out);
            let who = if !parts_only {
                format!("another ganlab run is writing this study ({holder})")
            } else if trials.is_empty() {
                "runs of some of its trials (--trial, Slurm array tasks) are writing it".into()
            } else {
                let named: Vec<String> = trials
                    .iter()
                    .take(5)
                    .map(|(t, h)| format!("{t} ({h})"))
                    .collect();
                format!(
                    "{} of its trials are being run by other processes: {}{}",
                    trials.len(),
                    named.join(", "),
                    if trials.len() > 5 { ", ..." } else { "" }
                )
            };
            anyhow::bail!(
                "{}: {who}; wait for it to end (`ganlab status {}` shows the trials), run \
                 other trials with --trial, or write elsewhere with --out",
                out.display(),
                out.display()
            );
        }
        if hold == Hold::Part {
            // Shared holders leave the file alone: it names the last whole-study run.
            return Ok(StudyLock {
                _file: file,
                hold,
                took_over: None,
            });
        }
        let took_over = holder.pid.map(|_| {
            format!("took over the study lock of a run that is no longer running ({holder})")
        });
        write_holder(&mut file, &path)?;
        Ok(StudyLock {
            _file: file,
            hold,
            took_over,
        })
    }
}

impl Drop for StudyLock {
    /// A whole-study run that ends (not one that dies) leaves no holder behind, so that only
    /// a run that died is reported as taken over.
    fn drop(&mut self) {
        if self.hold == Hold::Whole {
            let _ = self._file.set_len(0);
        }
    }
}

/// The held lock of one trial's folder (`TRIAL/.ganlab-lock`): one process runs a trial at a
/// time, whichever run or Slurm task it belongs to.
#[derive(Debug)]
pub struct TrialLock {
    _file: File,
}

impl TrialLock {
    /// Takes the lock of the trial folder `dir` (created if missing): `Ok(Err(holder))` when
    /// another process runs the trial.
    ///
    /// A lock held in the name of this very Slurm task (`slurm_job` = this process's) belongs
    /// to an earlier run of it: requeued after a node failure, the lock of the dead run can
    /// outlive it on a shared file system until the server gives it up (an NFS lease, about a
    /// minute and a half). That one is waited for, up to [`OWN_LOCK_PATIENCE`].
    pub fn acquire(dir: &Path) -> anyhow::Result<Result<TrialLock, Holder>> {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = open_lock_file(&path)?;
        let start = std::time::Instant::now();
        let mut said = false;
        while !take_patiently(&path, || file.try_lock())? {
            let mut text = String::new();
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.read_to_string(&mut text);
            let holder = Holder::parse(&text);
            let mine = holder.slurm_job.is_some() && holder.slurm_job == slurm_job();
            if !mine || start.elapsed() >= OWN_LOCK_PATIENCE {
                return Ok(Err(holder));
            }
            if !said {
                eprintln!(
                    "note: {}: waiting for the lock left by an earlier run of this Slurm task \
                     ({holder})",
                    dir.display()
                );
                said = true;
            }
        }
        write_holder(&mut file, &path)?;
        Ok(Ok(TrialLock { _file: file }))
    }
}

/// How long a Slurm task waits for a trial lock held in its own name (see
/// [`TrialLock::acquire`]): past an NFS server's lease and grace periods.
pub const OWN_LOCK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(300);

/// The trials of the study folder `out` that some process is running now, with their holders.
pub fn trials_being_run(out: &Path) -> Vec<(String, Holder)> {
    let Ok(entries) = fs::read_dir(out) else {
        return Vec::new();
    };
    let mut held: Vec<(String, Holder)> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let h = held_by(&e.path().join(LOCK_FILE))?;
            Some((e.file_name().to_string_lossy().into_owned(), h))
        })
        .collect();
    held.sort_by(|a, b| a.0.cmp(&b.0));
    held
}

/// Whether some ganlab run is writing the study `out` now: the whole study or any of its
/// trials (on any host whose file system passes locks on).
pub fn writer_may_be_running(out: &Path) -> bool {
    held_by(&out.join(LOCK_FILE)).is_some() || !trials_being_run(out).is_empty()
}

/// Serialises the steps that merge the trials' own files into study-wide ones (`trials.csv`,
/// the report) between the processes of one study: held while it lives.
pub struct MergeLock {
    _file: File,
}

/// The file of [`MergeLock`].
pub const MERGE_LOCK_FILE: &str = ".ganlab-merge-lock";

impl MergeLock {
    /// Waits for the merge lock of the study folder `out`.
    pub fn wait(out: &Path) -> anyhow::Result<MergeLock> {
        let path = out.join(MERGE_LOCK_FILE);
        let file = open_lock_file(&path)?;
        file.lock()
            .with_context(|| format!("cannot lock {}", path.display()))?;
        Ok(MergeLock { _file: file })
    }
}
