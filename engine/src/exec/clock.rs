//! The clock the scheduler and workers read: time since the execution
//! began, for the profile's slices and the journal's flush interval. The
//! real one is monotonic; tests use a fake that they advance themselves,
//! so time-based decisions and traces are exact.

use std::time::{Duration, Instant};

/// Time since an origin.
pub trait Clock: Send + Sync {
    /// Now, as time since the origin.
    fn now(&self) -> Duration;
}

/// The monotonic clock, with its origin at creation.
pub struct SystemClock(Instant);

impl SystemClock {
    /// A clock starting now.
    pub fn new() -> SystemClock {
        SystemClock(Instant::now())
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
}
