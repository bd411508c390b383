//! [`RejectionLog`]: unhandled rejections kept for later.

use std::cell::RefCell;
use std::rc::Rc;

use luaco_core::{Observer, ScriptError};

/// Collects unhandled rejections; for hosts and tests that want to assert on them.
#[derive(Debug, Default)]
pub struct RejectionLog {
    errors: RefCell<Vec<ScriptError>>,
}

impl RejectionLog {
    /// A new, empty log.
    pub fn new() -> Rc<RejectionLog> {
        Rc::new(RejectionLog::default())
    }

    /// The rejections seen so far, oldest first; empties the log.
    pub fn take(&self) -> Vec<ScriptError> {
        std::mem::take(&mut self.errors.borrow_mut())
    }
}

impl Observer for RejectionLog {
    fn wants_lifecycle(&self) -> bool {
        false
    }

    fn unhandled_rejection(&self, error: &ScriptError) {
        self.errors.borrow_mut().push(error.clone());
    }
}
