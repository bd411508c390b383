//! Why a resumed task stopped running, as the hook layers need to know it.

/// Why a task gave control back to the scheduler without awaiting or
/// finishing. A count hook that suspends a task (a time slice, a budget)
/// sets the reason with [`Engine::set_stop_reason`](crate::Engine::set_stop_reason)
/// before it yields; the scheduler reads it when the task's coroutine
/// yields with no values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stop {
    /// A bare `coroutine.yield`: the task runs again on the next turn.
    #[default]
    Yield,
    /// A time slice ran out: the task goes to the back of the ready queue.
    Preempted,
    /// A run-level limit was hit: the task's coroutine is abandoned (never
    /// resumed, never closed) and its promise rejects with the limit error.
    Limit,
}

impl Stop {
    /// The number the Lua half knows this reason by.
    pub(crate) fn code(self) -> i64 {
        match self {
            Stop::Yield => 1,
            Stop::Preempted => 2,
            Stop::Limit => 3,
        }
    }
}
