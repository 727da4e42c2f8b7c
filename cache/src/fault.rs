//! Crash points for kiln's fault drills.
//!
//! `KILN_CRASH_AT=<point>[:<n>]` makes the process SIGKILL itself the
//! `n`-th time (1-based, default 1) it passes `point`: the drills
//! (`tests/drills.rs`) kill a build at exact places (a blob half written, a
//! transaction about to commit) instead of at a random moment. Unset, a
//! point costs one load of a `OnceLock`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static TARGET: OnceLock<Option<(String, u64)>> = OnceLock::new();
static PASSED: AtomicU64 = AtomicU64::new(0);

fn target() -> &'static Option<(String, u64)> {
    TARGET.get_or_init(|| {
        let v = std::env::var("KILN_CRASH_AT").ok()?;
        let (name, n) = match v.rsplit_once(':') {
            Some((name, n)) => (name.to_owned(), n.parse().ok()?),
            None => (v, 1),
        };
        Some((name, n))
    })
}

/// Pass the crash point `name`; dies here when `KILN_CRASH_AT` names it
/// and this is the chosen passage.
pub fn point(name: &str) {
    if let Some((want, n)) = target()
        && want == name
        && PASSED.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        nix_kill_self();
    }
}

fn nix_kill_self() {
    // SIGKILL: no destructor, no flush, no signal handler runs, as when the
    // machine loses power or the OOM killer strikes.
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
}
