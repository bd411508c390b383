//! [`Registry`]: callbacks under a key, in registration order, removable by
//! id, with a "changed" door — what [`Hooks`](crate::Hooks) and
//! [`Events`](crate::Events) both keep.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Callbacks `F` registered under keys `K`.
pub(crate) struct Registry<K, F: ?Sized> {
    list: RefCell<Vec<(u64, K, Rc<F>)>>,
    next: Cell<u64>,
    /// Told after every change (the hub asks the engines again what they
    /// must report).
    pub(crate) changed: RefCell<Option<Rc<dyn Fn()>>>,
}

impl<K, F: ?Sized> Default for Registry<K, F> {
    fn default() -> Self {
        Registry {
            list: RefCell::new(Vec::new()),
            next: Cell::new(0),
            changed: RefCell::new(None),
        }
    }
}

impl<K, F: ?Sized> Registry<K, F> {
    /// Adds `f` under `key`; its id.
    pub(crate) fn add(&self, key: K, f: Rc<F>) -> u64 {
        let id = self.next.get();
        self.next.set(id + 1);
        self.list.borrow_mut().push((id, key, f));
        id
    }

    /// Removes the callback `id`; `true` if it was there.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let mut list = self.list.borrow_mut();
        let before = list.len();
        list.retain(|(i, _, _)| *i != id);
        before != list.len()
    }

    /// The callbacks whose key passes `keep`, in registration order: a
    /// copy, so a callback may register or remove others while called.
    pub(crate) fn matching(&self, keep: impl Fn(&K) -> bool) -> Vec<Rc<F>> {
        self.list
            .borrow()
            .iter()
            .filter(|(_, k, _)| keep(k))
            .map(|(_, _, f)| f.clone())
            .collect()
    }

    /// Whether some key passes `test`.
    pub(crate) fn any(&self, test: impl Fn(&K) -> bool) -> bool {
        self.list.borrow().iter().any(|(_, k, _)| test(k))
    }

    /// How many callbacks there are.
    pub(crate) fn len(&self) -> usize {
        self.list.borrow().len()
    }

    /// Tells whoever watches that the registry changed.
    pub(crate) fn notify(&self) {
        let changed = self.changed.borrow().clone();
        if let Some(changed) = changed {
            changed();
        }
    }
}
