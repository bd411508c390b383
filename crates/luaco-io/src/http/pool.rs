//! The connection pool: which requests may open a connection, which idle
//! connection a request reuses, and who waits when the caps are reached.
//!
//! Generic over the connection type, so the rules are tested here with
//! plain values; the client stores hyper connections in it.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The pool's key: scheme, host and port (`https://example.org:443`).
pub(crate) type Key = Rc<str>;

/// A pooled connection's view of itself.
pub(crate) trait Pooled {
    /// False once the connection cannot carry another request (the peer
    /// closed it, or it holds unread bytes). Called before each reuse.
    fn usable(&mut self) -> bool;
}

/// How many connections may be open, and for how long an idle one is kept.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub per_host: usize,
    pub total: usize,
    pub idle_timeout: Duration,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    since: Instant,
}

#[derive(Debug)]
struct Host<C> {
    /// Connections counted against this host: in use, idle, or being opened.
    open: usize,
    /// Idle connections, oldest first.
    idle: VecDeque<Idle<C>>,
}

impl<C> Default for Host<C> {
    fn default() -> Self {
        Host {
            open: 0,
            idle: VecDeque::new(),
        }
    }
}

/// What a waiting request was handed.
#[derive(Debug)]
enum Grant<C> {
    Reuse(C),
    Open,
}

#[derive(Debug)]
struct Waiter<C> {
    key: Key,
    grant: RefCell<Option<Grant<C>>>,
    gone: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

#[derive(Debug)]
struct State<C> {
    caps: Caps,
    total: usize,
    hosts: HashMap<Key, Host<C>>,
    /// Requests waiting for a connection, first come first served.
    waiting: VecDeque<Rc<Waiter<C>>>,
}

/// Connections by host, bounded per host and in total.
#[derive(Debug)]
pub(crate) struct Pool<C> {
    state: Rc<RefCell<State<C>>>,
}

impl<C> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            state: self.state.clone(),
        }
    }
}

/// The right to hold one connection to a host. Dropping it closes the
/// connection's place (the request failed or was cancelled);
/// [`Permit::give_back`] returns a reusable connection instead.
#[derive(Debug)]
pub(crate) struct Permit<C: Pooled> {
    pool: Pool<C>,
    key: Key,
    returned: bool,
}

/// What [`Pool::checkout`] yields: an idle connection to reuse, or the
/// right to open a new one.
#[derive(Debug)]
pub(crate) enum Checkout<C: Pooled> {
    Reuse(C, Permit<C>),
    Open(Permit<C>),
}

impl<C: Pooled> Pool<C> {
    pub(crate) fn new(caps: Caps) -> Pool<C> {
        Pool {
            state: Rc::new(RefCell::new(State {
                caps: Caps {
                    per_host: caps.per_host.max(1),
                    total: caps.total.max(1),
                    ..caps
                },
                total: 0,
                hosts: HashMap::new(),
                waiting: VecDeque::new(),
            })),
        }
    }

    /// Connections open now (in use, idle or being opened).
    pub(crate) fn open(&self) -> usize {
        self.state.borrow().total
    }

    /// Idle connections now.
    pub(crate) fn idle(&self) -> usize {
        let state = self.state.borrow();
        state.hosts.values().map(|h| h.idle.len()).sum()
    }

    /// Waits for a connection to `key`: an idle one if there is one that is
    /// still usable, else a permit to open one when the caps allow.
    pub(crate) fn checkout(&self, key: Key) -> impl Future<Output = Checkout<C>> {
        CheckoutFuture {
            pool: self.clone(),
            key,
            waiter: None,
        }
    }

    /// Serves `key` at once if the caps allow.
    fn try_take(&self, key: &Key) -> Option<Grant<C>> {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        let now = Instant::now();
        let caps = state.caps;
        sweep_expired(state, now);
        let host = state.hosts.entry(key.clone()).or_default();
        let mut dropped = 0;
        while let Some(idle) = host.idle.pop_back() {
            let mut conn = idle.conn;
            if now.duration_since(idle.since) < caps.idle_timeout && conn.usable() {
                host.open -= dropped;
                state.total -= dropped;
                return Some(Grant::Reuse(conn));
            }
            dropped += 1;
        }
        host.open -= dropped;
        state.total -= dropped;
        if host.open >= caps.per_host {
            return None;
        }
        if state.total >= caps.total && !evict_one(state, key) {
            return None;
        }
        let host = state.hosts.entry(key.clone()).or_default();
        host.open += 1;
        state.total += 1;
        Some(Grant::Open)
    }

    /// Returns a reusable connection: to the first request waiting for its
    /// host, else to the idle list (or closes it when another host's
    /// request needs the place).
    fn put(&self, key: &Key, conn: C) {
        let mut state = self.state.borrow_mut();
        if let Some(w) = first_waiting(&mut state, |w| *w.key == **key) {
            drop(state);
            grant(&w, Grant::Reuse(conn));
            return;
        }
        // A request for another host that only the total cap holds back
        // (possible only when the total cap is reached).
        let per_host = state.caps.per_host;
        let waits_elsewhere = state.total >= state.caps.total
            && state
                .waiting
                .iter()
                .any(|w| !w.gone.get() && state.hosts.get(&w.key).map_or(0, |h| h.open) < per_host);
        let host = state.hosts.entry(key.clone()).or_default();
        if waits_elsewhere {
            host.open -= 1;
            state.total -= 1;
            drop(state);
            drop(conn);
            self.dispatch();
            return;
        }
        host.idle.push_back(Idle {
            conn,
            since: Instant::now(),
        });
        sweep_expired(&mut state, Instant::now());
    }

    /// A connection to `key` closed (or was never opened).
    fn release(&self, key: &Key) {
        {
            let mut state = self.state.borrow_mut();
            if let Some(host) = state.hosts.get_mut(key) {
                host.open = host.open.saturating_sub(1);
                let empty = host.open == 0 && host.idle.is_empty();
                if empty {
                    state.hosts.remove(key);
                }
            }
            state.total = state.total.saturating_sub(1);
        }
        self.dispatch();
    }

    /// Hands freed capacity to the first waiting request that can use it.
    fn dispatch(&self) {
        let next = {
            let mut state = self.state.borrow_mut();
            state.waiting.retain(|w| !w.gone.get());
            let per_host = state.caps.per_host;
            let hosts = &state.hosts;
            let i = state
                .waiting
                .iter()
                .position(|w| hosts.get(&w.key).map_or(0, |h| h.open) < per_host);
            i.and_then(|i| state.waiting.remove(i))
        };
        let Some(w) = next else { return };
        match self.try_take(&w.key) {
            Some(g) => grant(&w, g),
            // Still full (nothing idle to close): it goes first next time.
            None => self.state.borrow_mut().waiting.push_front(w),
        }
    }
}

/// Closes every idle connection past the idle timeout, of every host
/// (oldest first in each list), and forgets hosts left with nothing.
/// Under steady load the newest connection is always the one reused, so
/// without this the older ones would stay open at the front for ever.
fn sweep_expired<C>(state: &mut State<C>, now: Instant) {
    let timeout = state.caps.idle_timeout;
    let mut closed = 0;
    state.hosts.retain(|_, host| {
        while host
            .idle
            .front()
            .is_some_and(|i| now.duration_since(i.since) >= timeout)
        {
            host.idle.pop_front();
            host.open -= 1;
            closed += 1;
        }
        host.open > 0 || !host.idle.is_empty()
    });
    state.total -= closed;
}

/// Closes the oldest idle connection of a host other than `key`.
fn evict_one<C>(state: &mut State<C>, key: &Key) -> bool {
    let victim = state
        .hosts
        .iter()
        .filter(|(k, h)| *k != key && !h.idle.is_empty())
        .min_by_key(|(_, h)| h.idle.front().map(|i| i.since))
        .map(|(k, _)| k.clone());
    let Some(victim) = victim else { return false };
    if let Some(host) = state.hosts.get_mut(&victim) {
        host.idle.pop_front();
        host.open -= 1;
        state.total -= 1;
        if host.open == 0 && host.idle.is_empty() {
            state.hosts.remove(&victim);
        }
    }
    true
}

fn first_waiting<C>(
    state: &mut State<C>,
    matches: impl Fn(&Waiter<C>) -> bool,
) -> Option<Rc<Waiter<C>>> {
    // Abandoned waiters are dropped as they come to the front; the scan
    // stops at the first live match, usually the first waiter.
    while state.waiting.front().is_some_and(|w| w.gone.get()) {
        state.waiting.pop_front();
    }
    let i = state
        .waiting
        .iter()
        .position(|w| !w.gone.get() && matches(w))?;
    state.waiting.remove(i)
}

fn grant<C>(w: &Waiter<C>, g: Grant<C>) {
    *w.grant.borrow_mut() = Some(g);
    if let Some(waker) = w.waker.borrow_mut().take() {
        waker.wake();
    }
}

struct CheckoutFuture<C: Pooled> {
    pool: Pool<C>,
    key: Key,
    waiter: Option<Rc<Waiter<C>>>,
}

impl<C: Pooled> CheckoutFuture<C> {
    fn ready(&self, g: Grant<C>) -> Poll<Checkout<C>> {
        let permit = Permit {
            pool: self.pool.clone(),
            key: self.key.clone(),
            returned: false,
        };
        Poll::Ready(match g {
            Grant::Reuse(conn) => Checkout::Reuse(conn, permit),
            Grant::Open => Checkout::Open(permit),
        })
    }
}

impl<C: Pooled> Future for CheckoutFuture<C> {
    type Output = Checkout<C>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Checkout<C>> {
        let this = self.get_mut();
        if let Some(w) = &this.waiter {
            let granted = w.grant.borrow_mut().take();
            return match granted {
                Some(g) => {
                    this.waiter = None;
                    this.ready(g)
                }
                None => {
                    *w.waker.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                }
            };
        }
        // Nobody may overtake requests already waiting for this host.
        let queued = this
            .pool
            .state
            .borrow()
            .waiting
            .iter()
            .any(|w| !w.gone.get() && w.key == this.key);
        if !queued {
            if let Some(g) = this.pool.try_take(&this.key) {
                return this.ready(g);
            }
        }
        let w = Rc::new(Waiter {
            key: this.key.clone(),
            grant: RefCell::new(None),
            gone: Cell::new(false),
            waker: RefCell::new(Some(cx.waker().clone())),
        });
        this.pool.state.borrow_mut().waiting.push_back(w.clone());
        this.waiter = Some(w);
        Poll::Pending
    }
}

impl<C: Pooled> Drop for CheckoutFuture<C> {
    fn drop(&mut self) {
        let Some(w) = self.waiter.take() else { return };
        w.gone.set(true);
        // A grant that arrived after the request was abandoned goes on.
        let granted = w.grant.borrow_mut().take();
        match granted {
            Some(Grant::Reuse(conn)) => self.pool.put(&self.key, conn),
            Some(Grant::Open) => self.pool.release(&self.key),
            None => {
                // A host entry made only to wait in is not kept.
                let mut state = self.pool.state.borrow_mut();
                if state
                    .hosts
                    .get(&self.key)
                    .is_some_and(|h| h.open == 0 && h.idle.is_empty())
                {
                    state.hosts.remove(&self.key);
                }
            }
        }
    }
}

impl<C: Pooled> Permit<C> {
    /// Returns a connection that can carry another request.
    pub(crate) fn give_back(mut self, conn: C) {
        self.returned = true;
        self.pool.put(&self.key, conn);
    }
}

impl<C: Pooled> Drop for Permit<C> {
    fn drop(&mut self) {
        if !self.returned {
            self.pool.release(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future::{block_on, poll_once};
    use std::cell::Cell;

    #[derive(Debug)]
    struct Fake {
        id: u32,
        alive: Rc<Cell<bool>>,
    }

    impl Pooled for Fake {
        fn usable(&mut self) -> bool {
            self.alive.get()
        }
    }

    fn fake(id: u32) -> Fake {
        Fake {
            id,
            alive: Rc::new(Cell::new(true)),
        }
    }

    fn pool(per_host: usize, total: usize) -> Pool<Fake> {
        Pool::new(Caps {
            per_host,
            total,
            idle_timeout: Duration::from_secs(60),
        })
    }

    fn key(s: &str) -> Key {
        s.into()
    }

    type Waiting = Pin<Box<dyn Future<Output = Checkout<Fake>>>>;

    fn now_or_wait(p: &Pool<Fake>, k: &str) -> Result<Checkout<Fake>, Waiting> {
        let mut fut: Waiting = Box::pin(p.checkout(key(k)));
        match block_on(poll_once(&mut fut)) {
            Some(c) => Ok(c),
            None => Err(fut),
        }
    }

    fn ready(p: &Pool<Fake>, k: &str) -> Checkout<Fake> {
        match now_or_wait(p, k) {
            Ok(c) => c,
            Err(_) => panic!("{k} had to wait"),
        }
    }

    fn queued(p: &Pool<Fake>, k: &str) -> Waiting {
        match now_or_wait(p, k) {
            Ok(_) => panic!("{k} was served at once"),
            Err(w) => w,
        }
    }

    fn permit(c: Checkout<Fake>) -> Permit<Fake> {
        match c {
            Checkout::Open(p) | Checkout::Reuse(_, p) => p,
        }
    }

    #[test]
    fn the_per_host_cap_queues_and_a_returned_connection_goes_to_the_waiter() {
        let p = pool(2, 10);
        let a1 = permit(ready(&p, "a"));
        let _a2 = permit(ready(&p, "a"));
        let mut waiting = queued(&p, "a");
        // Another host is not held back by a's cap.
        assert!(now_or_wait(&p, "b").is_ok());
        a1.give_back(fake(7));
        let _a3 = match block_on(poll_once(&mut waiting)) {
            Some(Checkout::Reuse(conn, permit)) => {
                assert_eq!(conn.id, 7);
                permit
            }
            other => panic!("waiter got {other:?}"),
        };
        assert_eq!(p.open(), 2, "b's permit was dropped, a has two");
    }

    #[test]
    fn the_total_cap_closes_an_idle_connection_of_another_host() {
        let p = pool(5, 2);
        let a1 = permit(ready(&p, "a"));
        let a2 = permit(ready(&p, "a"));
        let mut b = queued(&p, "b");
        // a gives a connection back while b waits: it is closed for b.
        a1.give_back(fake(1));
        let _b = match block_on(poll_once(&mut b)) {
            Some(Checkout::Open(permit)) => permit,
            other => panic!("b got {other:?}"),
        };
        assert_eq!((p.open(), p.idle()), (2, 0));
        drop(a2);
        // Idle connections of another host are evicted on demand too.
        let p = pool(5, 1);
        permit(ready(&p, "a")).give_back(fake(2));
        assert_eq!(p.idle(), 1);
        let _b = permit(ready(&p, "b"));
        assert_eq!((p.open(), p.idle()), (1, 0));
    }

    #[test]
    fn dead_and_expired_idle_connections_are_not_reused() {
        let p = pool(4, 4);
        let dead = fake(1);
        let alive = dead.alive.clone();
        permit(ready(&p, "a")).give_back(dead);
        alive.set(false);
        assert!(matches!(now_or_wait(&p, "a"), Ok(Checkout::Open(_))));
        assert_eq!(
            p.open(),
            0,
            "the dead one was closed, the new permit dropped"
        );

        let p = Pool::new(Caps {
            per_host: 4,
            total: 4,
            idle_timeout: Duration::ZERO,
        });
        permit(ready(&p, "a")).give_back(fake(2));
        assert!(matches!(now_or_wait(&p, "a"), Ok(Checkout::Open(_))));
    }

    #[test]
    fn expired_idle_connections_of_every_host_close_on_any_checkout() {
        let p = Pool::new(Caps {
            per_host: 4,
            total: 4,
            idle_timeout: Duration::ZERO,
        });
        permit(ready(&p, "a")).give_back(fake(1));
        permit(ready(&p, "c")).give_back(fake(2));
        let _b = permit(ready(&p, "b"));
        assert_eq!(
            (p.open(), p.idle()),
            (1, 0),
            "a's and c's idle ones were closed"
        );
        assert_eq!(p.state.borrow().hosts.len(), 1, "and their hosts forgotten");
    }

    #[test]
    fn an_abandoned_waiter_passes_its_grant_on() {
        let p = pool(1, 1);
        let first = permit(ready(&p, "a"));
        let second = queued(&p, "a");
        let mut third = queued(&p, "a");
        first.give_back(fake(3));
        drop(second); // granted, then dropped before it ran
        match block_on(poll_once(&mut third)) {
            Some(Checkout::Reuse(conn, _)) => assert_eq!(conn.id, 3),
            other => panic!("third got {other:?}"),
        }
        // A failed request's permit frees the place for the next.
        let p = pool(1, 1);
        let only = permit(ready(&p, "a"));
        let mut next = queued(&p, "a");
        drop(only);
        assert!(matches!(
            block_on(poll_once(&mut next)),
            Some(Checkout::Open(_))
        ));
    }
}
