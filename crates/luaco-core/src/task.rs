//! Tasks (Lua coroutines driven by the engine) and the slab that holds them.

use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, MultiValue, Thread};

use crate::driver::TaskId;
use crate::promise::Promise;

/// Where a task was spawned: the caller's `file:line`, and where its own
/// task was spawned, a few levels up.
#[derive(Debug)]
pub(crate) struct SpawnSite {
    /// The chunk name, shared between all sites of one chunk.
    pub(crate) source: Rc<str>,
    pub(crate) line: u32,
    pub(crate) parent: Option<Rc<SpawnSite>>,
    pub(crate) depth: u8,
}

/// Spawn chains longer than this are cut, so a task that spawns a task that
/// spawns a task… does not keep an ever-growing chain alive.
const MAX_SPAWN_DEPTH: u8 = 8;

impl SpawnSite {
    pub(crate) fn new(source: Rc<str>, line: u32, parent: Option<Rc<SpawnSite>>) -> Rc<SpawnSite> {
        let depth = parent.as_ref().map_or(0, |p| p.depth + 1);
        let parent = if depth >= MAX_SPAWN_DEPTH {
            None
        } else {
            parent
        };
        Rc::new(SpawnSite {
            source,
            line,
            parent,
            depth: depth.min(MAX_SPAWN_DEPTH),
        })
    }

    /// The chain as traceback lines.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let mut site = Some(self);
        while let Some(s) = site {
            out.push_str("\n\t[spawned at] ");
            out.push_str(&s.source);
            if s.line > 0 {
                out.push(':');
                out.push_str(&s.line.to_string());
            }
            site = s.parent.as_deref();
        }
        out
    }
}

pub(crate) struct Task {
    pub(crate) serial: u64,
    pub(crate) thread: Thread,
    pub(crate) promise: Promise,
    /// The function and arguments of a task that has not started yet.
    pub(crate) start: Option<(Function, MultiValue)>,
    /// Set by `await` just before it yields.
    pub(crate) pending_await: Option<Promise>,
    /// The promise the suspended task waits on.
    pub(crate) waiting_on: Option<Promise>,
    /// Pending tasks and operations this task started; cancelled with it.
    pub(crate) children: Vec<Promise>,
    pub(crate) compact_at: usize,
    /// Cancelled while running: close the coroutine once it stops.
    pub(crate) cancelled: bool,
    pub(crate) script_name: Rc<str>,
    pub(crate) spawn_site: Option<Rc<SpawnSite>>,
    pub(crate) yields: u64,
    pub(crate) run_time: Duration,
}

impl Task {
    pub(crate) fn add_child(&mut self, child: Promise) {
        if self.children.len() >= self.compact_at {
            self.children.retain(Promise::is_pending);
            self.compact_at = (self.children.len() * 2).max(16);
        }
        self.children.push(child);
    }
}

struct Slot {
    generation: u32,
    task: Option<Task>,
}

/// A slab of tasks addressed by generational [`TaskId`]s.
#[derive(Default)]
pub(crate) struct Tasks {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

impl Tasks {
    pub(crate) fn insert(&mut self, task: Task) -> TaskId {
        self.live += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.task = Some(task);
            TaskId {
                index,
                generation: slot.generation,
            }
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 0,
                task: Some(task),
            });
            TaskId {
                index,
                generation: 0,
            }
        }
    }

    pub(crate) fn get(&self, id: TaskId) -> Option<&Task> {
        self.slots
            .get(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.task.as_ref())
    }

    pub(crate) fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        self.slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .and_then(|s| s.task.as_mut())
    }

    pub(crate) fn remove(&mut self, id: TaskId) -> Option<Task> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)?;
        let task = slot.task.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.live -= 1;
        Some(task)
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }
}
