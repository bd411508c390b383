//! Clocks: the system's monotonic clock, and a manual one for tests.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, Instant};

/// A monotonic clock, read as time since the loop started.
pub trait Clock {
    /// Time since the clock's origin. Never goes backwards.
    fn now(&self) -> Duration;
}

impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({:?})", self.now())
    }
}

/// The system's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clock that moves only when told to; for deterministic tests of timers.
#[derive(Debug, Default)]
pub struct ManualClock {
    now: Cell<Duration>,
}

impl ManualClock {
    /// A clock standing at zero.
    pub fn new() -> ManualClock {
        ManualClock::default()
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get() + by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        self.now.get()
    }
}

/// A time on the loop's clock in whole microseconds, as the timers count.
pub(crate) fn micros(t: Duration) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}
