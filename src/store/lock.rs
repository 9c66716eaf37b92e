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
    let empty = fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .next()
        .is_none();
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

/// The held lock of a study folder; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StudyLock {
    _file: File,
    /// Set when the lock file was left by a run that is no longer running.
    pub took_over: Option<String>,
}

impl StudyLock {
    /// Takes the lock of `out` (which must exist), or says who holds it.
    pub fn acquire(out: &Path) -> anyhow::Result<StudyLock> {
        let path = out.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let holder = holder.trim().replace('\n', ", ");
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{}: another ganlab run is writing this study ({}); wait for it to end, or \
                 write elsewhere with --out",
                out.display(),
                if holder.is_empty() {
                    "holder unknown".into()
                } else {
                    holder
                }
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let took_over = (!holder.is_empty()).then(|| {
            format!("took over the study lock of a run that is no longer running ({holder})")
        });
        let me = format!(
            "pid = {}\nhost = \"{}\"\nstarted_at = \"{}\"\n",
            std::process::id(),
            super::host_name(),
            super::now()
        );
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)).map(|_| ()))
            .and_then(|_| file.write_all(me.as_bytes()))
            .and_then(|_| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(StudyLock {
            _file: file,
            took_over,
        })
    }
}

/// Whether the run that last took the lock of `out` may still be running: false when its lock
/// file names this host and a process id that no longer exists (or there is no lock file);
/// true otherwise (another host's run cannot be checked from here). Only reads the file, so
/// a run starting at that moment is never refused because of it.
pub fn writer_may_be_running(out: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(out.join(LOCK_FILE)) else {
        return false;
    };
    let Ok(t) = text.parse::<toml::Table>() else {
        return true;
    };
    let pid = t.get("pid").and_then(|v| v.as_integer());
    let host = t.get("host").and_then(|v| v.as_str());
    match (pid, host) {
        (Some(pid), Some(host)) if host == super::host_name() => {
            Path::new("/proc").join(pid.to_string()).exists()
        }
        _ => true,
    }
}
