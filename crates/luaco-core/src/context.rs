//! [`ScriptContext`]: what a task knows of the script it belongs to.

use std::any::Any;
use std::fmt;
use std::rc::Rc;

/// The script a task belongs to: its name, its arguments and, for layers
/// above the core (the sandbox), a policy of their own. Every task a script
/// spawns carries the context of the task that spawned it.
#[derive(Clone, Default)]
pub struct ScriptContext {
    name: String,
    args: Vec<String>,
    policy: Option<Rc<dyn Any>>,
}

impl ScriptContext {
    /// A context for the script called `name`.
    pub fn new(name: impl Into<String>) -> ScriptContext {
        ScriptContext {
            name: name.into(),
            ..ScriptContext::default()
        }
    }

    /// The same context with the script's arguments (`...` and `arg`).
    pub fn with_args(mut self, args: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The same context with a policy for the layers above the core; the
    /// sandbox stores its limits here.
    pub fn with_policy(mut self, policy: Rc<dyn Any>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// The script's name, as it appears in error positions and events.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The script's arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The policy, if one of type `T` was set.
    pub fn policy<T: 'static>(&self) -> Option<&T> {
        self.policy.as_deref().and_then(|p| p.downcast_ref())
    }
}

impl fmt::Debug for ScriptContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptContext")
            .field("name", &self.name)
            .field("args", &self.args)
            .field("policy", &self.policy.is_some())
            .finish()
    }
}

impl PartialEq for ScriptContext {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.args == other.args
            && match (&self.policy, &other.policy) {
                (None, None) => true,
                (Some(a), Some(b)) => Rc::ptr_eq(a, b),
                _ => false,
            }
    }
}

/// The userdata the Lua half keeps in each task record: one per context,
/// shared by all its tasks, freed by Lua's GC with the last of them.
pub(crate) struct ContextData(pub(crate) Rc<ScriptContext>);
