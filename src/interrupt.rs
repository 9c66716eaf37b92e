//! Stopping a run cleanly: on SIGINT (Ctrl-C), SIGTERM (a scheduler's notice: Slurm's
//! `scancel`, preemption or `scontrol requeue`) or SIGUSR1 (Slurm's warning that the time
//! limit is near, asked for by the job scripts of `ganlab slurm`), running trials save their
//! state at the next step and end `interrupted`, and no further trial starts; the next
//! `ganlab run` resumes them. A second Ctrl-C ends the process at once. The run exits with
//! 128 + the number of the first signal, so that a job script can tell a time limit (USR1:
//! requeue) from a cancellation (TERM).

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);
static FIRST_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> anyhow::Result<()> {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if INSTALLED.get().is_some() {
        return Ok(());
    }
    #[cfg(unix)]
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // Ctrl-C again while the first is being honoured exits straight away; a scheduler's
        // repeated notices do not cut the saving short (it sends SIGKILL when it stops waiting).
        if signal == libc::SIGINT {
            signal_hook::flag::register_conditional_shutdown(signal, 130, &REQUESTED)?;
        }
        // SAFETY: the action only stores to atomics, which is async-signal-safe.
        unsafe {
            signal_hook::low_level::register(signal, move || {
                let _ =
                    FIRST_SIGNAL.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
                REQUESTED.store(true, Ordering::SeqCst);
            })?;
        }
    }
    let _ = INSTALLED.set(());
    Ok(())
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The exit status for a run that a signal stopped: 128 + the first signal's number (130
/// for SIGINT, 143 for SIGTERM, 138 for SIGUSR1).
pub fn exit_status() -> u8 {
    match FIRST_SIGNAL.load(Ordering::SeqCst) {
        0 => 130,
        s => u8::try_from(128 + s).unwrap_or(130),
    }
}
