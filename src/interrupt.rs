//! Stopping a run cleanly: on SIGINT (Ctrl-C) or SIGTERM (a scheduler's notice), running
//! trials save their state at the next step and end `interrupted`, and no further trial
//! starts; the next `ganlab run` resumes them. A second SIGINT ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> anyhow::Result<()> {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    #[cfg(unix)]
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // A second signal while the first is being honoured exits with 130 straight away.
        signal_hook::flag::register_conditional_shutdown(signal, 130, &REQUESTED)?;
        signal_hook::flag::register(signal, &REQUESTED)?;
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}
