//! The watcher thread behind deadlines and time slices without a count
//! hook: it sleeps until the next deadline or slice check and interrupts
//! the Lua thread of a guard whose time came (see
//! [`luaco_core::Interrupter`]). One thread serves every guard of the
//! process; it starts with the first and waits, asleep, when none is left.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::{Duration, Instant};

use luaco_core::{interrupt_reason, Interrupter};

/// The longest the thread sleeps while some guard watches: bounds how late
/// it notices a guard whose deadline moved earlier without telling it.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// What one guard has the thread watch.
#[derive(Debug)]
pub(crate) struct Watch {
    interrupter: Interrupter,
    slice: Option<Duration>,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    deadline: Option<Instant>,
    /// The deadline passed: every resume is interrupted until the clock
    /// restarts.
    holding: bool,
    /// The resume count last seen, and when it was first seen.
    mark: (u64, Instant),
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Watch {
    /// Starts watching for `interrupter`'s thread: `deadline` for the
    /// whole run, `slice` for each resume.
    pub(crate) fn start(
        interrupter: Interrupter,
        deadline: Option<Instant>,
        slice: Option<Duration>,
    ) -> Arc<Watch> {
        let watch = Arc::new(Watch {
            interrupter,
            slice,
            inner: Mutex::new(Inner {
                deadline,
                holding: false,
                mark: (interrupter.resumes(), Instant::now()),
            }),
        });
        let ticker = ticker();
        lock(&ticker.watches).push(Arc::downgrade(&watch));
        ticker.wake.notify_one();
        watch
    }

    /// A new deadline (the host restarted the clock): a stop the old one
    /// began is lifted.
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        let mut inner = lock(&self.inner);
        inner.deadline = deadline;
        if std::mem::take(&mut inner.holding) {
            self.interrupter.release_stop();
        }
        drop(inner);
        ticker().wake.notify_one();
    }

    /// Interrupts what is due at `now`; when to look again.
    fn tick(&self, now: Instant) -> Instant {
        let mut next = now + MAX_SLEEP;
        let mut inner = lock(&self.inner);
        if let Some(deadline) = inner.deadline {
            if now >= deadline {
                if !inner.holding {
                    inner.holding = true;
                    // Every later resume stops at once; the running one is
                    // interrupted now. One of the two sees the other: a
                    // resume publishes its coroutine before it reads the
                    // stop, and the stop is held before the signal.
                    self.interrupter.hold_stop();
                    self.interrupter.interrupt(interrupt_reason::DEADLINE);
                }
            } else {
                next = next.min(deadline);
            }
        }
        if let Some(slice) = self.slice {
            let resumes = self.interrupter.resumes();
            if !self.interrupter.is_running() || resumes != inner.mark.0 {
                inner.mark = (resumes, now);
            } else if now.duration_since(inner.mark.1) >= slice {
                self.interrupter.interrupt(interrupt_reason::SLICE);
                inner.mark.1 = now;
            }
            // A quarter slice between looks: a task is preempted after a
            // slice and at most a quarter more.
            next = next.min(now + (slice / 4).max(Duration::from_micros(250)));
        }
        next
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if lock(&self.inner).holding {
            self.interrupter.release_stop();
        }
    }
}

struct Ticker {
    watches: Mutex<Vec<Weak<Watch>>>,
    wake: Condvar,
}

fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<&'static Ticker> = OnceLock::new();
    TICKER.get_or_init(|| {
        let ticker: &'static Ticker = Box::leak(Box::new(Ticker {
            watches: Mutex::new(Vec::new()),
            wake: Condvar::new(),
        }));
        let spawned = std::thread::Builder::new()
            .name("luaco-ticker".into())
            .spawn(move || run(ticker));
        if let Err(e) = spawned {
            // Without the thread deadlines still end idle runs (the loop
            // checks them) and C loops (pattern functions check the clock);
            // only a busy task would run on.
            tracing::warn!("luaco: cannot start the ticker thread: {e}");
        }
        ticker
    })
}

fn run(ticker: &'static Ticker) {
    let mut watches = lock(&ticker.watches);
    loop {
        watches.retain(|w| w.strong_count() > 0);
        if watches.is_empty() {
            watches = ticker
                .wake
                .wait(watches)
                .unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        let now = Instant::now();
        let mut next = now + MAX_SLEEP;
        for watch in watches.iter().filter_map(Weak::upgrade) {
            next = next.min(watch.tick(now));
        }
        let sleep = next.saturating_duration_since(Instant::now());
        watches = ticker
            .wake
            .wait_timeout(watches, sleep)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}
