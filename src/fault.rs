//! Fault injection for the crash tests. `GANLAB_FAULT=POINT:N` kills the process with SIGKILL
//! the N-th time it reaches POINT (counted over the whole process), in the middle of the work
//! that point names:
//! - `step`: after the updates of a step, before anything about it is recorded;
//! - `table`: half-way through writing a row of `metrics.csv` (the half row reaches the disk);
//! - `checkpoint`: half-way through writing a trial-state checkpoint.
//!
//! Without the variable nothing happens (one relaxed atomic load per call).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The armed point and the hit that kills, from `GANLAB_FAULT`.
fn armed() -> Option<&'static (String, u64)> {
    static ARMED: OnceLock<Option<(String, u64)>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let v = std::env::var("GANLAB_FAULT").ok()?;
            let (point, n) = v.split_once(':')?;
            Some((point.to_string(), n.parse().ok()?))
        })
        .as_ref()
}

/// Whether this arrival at `point` is the one that must die; the caller then leaves its work
/// half done and calls [`die`].
pub fn due(point: &str) -> bool {
    static HITS: AtomicU64 = AtomicU64::new(0);
    match armed() {
        Some((p, n)) if p == point => HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n,
        _ => false,
    }
}

/// Ends the process at once, as `kill -9` would: no destructor, no flush.
pub fn die() -> ! {
    #[cfg(unix)]
    // SAFETY: sending a signal to our own process has no memory-safety precondition.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// Kills the process here if this arrival at `point` is the armed one.
pub fn point(point: &str) {
    if due(point) {
        die();
    }
}
