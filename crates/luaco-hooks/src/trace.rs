//! [`TracingObserver`]: every task in a `tracing` span.

use std::cell::RefCell;
use std::collections::HashMap;

use luaco_core::{Lifecycle, Observer, ScriptError, TaskInfo};

/// Reports to `tracing`: each task runs inside a `task` span carrying its
/// id and script name, whose parent is the span of the task that spawned
/// it; its lifecycle points are DEBUG events in that span, and unhandled
/// rejections and limit hits are WARN events. Lifecycle tracking is on
/// only when a subscriber wants DEBUG events from luaco at the time the
/// observer is made (else it costs nothing).
#[derive(Debug)]
pub struct TracingObserver {
    lifecycle: bool,
    spans: RefCell<HashMap<u64, tracing::Span>>,
    entered: RefCell<Option<(u64, tracing::span::EnteredSpan)>>,
}

impl TracingObserver {
    /// An observer for the current tracing subscriber.
    pub fn new() -> TracingObserver {
        TracingObserver {
            lifecycle: tracing::enabled!(target: "luaco", tracing::Level::DEBUG),
            spans: RefCell::default(),
            entered: RefCell::default(),
        }
    }
}

impl Default for TracingObserver {
    fn default() -> Self {
        TracingObserver::new()
    }
}

impl Observer for TracingObserver {
    fn wants_lifecycle(&self) -> bool {
        self.lifecycle
    }

    fn lifecycle(&self, event: Lifecycle, task: &TaskInfo<'_>) {
        let id = task.thread_id;
        if event == Lifecycle::Created {
            let parent = task
                .parent_id
                .and_then(|p| self.spans.borrow().get(&p).and_then(|s| s.id()));
            let span = tracing::debug_span!(
                target: "luaco",
                parent: parent,
                "task",
                id,
                script = task.script_name
            );
            self.spans.borrow_mut().insert(id, span);
        }
        let span = self.spans.borrow().get(&id).cloned();
        if let (Some(span), Lifecycle::Started | Lifecycle::Resumed) = (&span, event) {
            *self.entered.borrow_mut() = Some((id, span.clone().entered()));
        }
        tracing::debug!(
            target: "luaco",
            parent: span.as_ref().and_then(|s| s.id()),
            event = event.event_name(),
            status = %task.status,
            execution_time = ?task.execution_time,
            yield_count = task.yield_count,
            memory_bytes = task.memory_bytes,
        );
        if matches!(
            event,
            Lifecycle::Yielded | Lifecycle::Completed | Lifecycle::Failed | Lifecycle::Cancelled
        ) {
            let mut entered = self.entered.borrow_mut();
            if entered.as_ref().is_some_and(|(current, _)| *current == id) {
                entered.take();
            }
        }
        if matches!(
            event,
            Lifecycle::Completed | Lifecycle::Failed | Lifecycle::Cancelled
        ) {
            self.spans.borrow_mut().remove(&id);
        }
    }

    fn limit_hit(&self, task: &TaskInfo<'_>, error: &ScriptError) {
        tracing::warn!(
            target: "luaco",
            id = task.thread_id,
            script = task.script_name,
            limit = error.code.as_deref().unwrap_or(""),
            "limit hit: {}",
            error.message
        );
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        tracing::warn!(target: "luaco", kind = %error.kind, "unhandled rejection: {}", error.message);
    }
}
