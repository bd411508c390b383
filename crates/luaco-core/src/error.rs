//! Errors: the crate's [`Error`], the script-visible [`ErrorKind`]s, and
//! [`ScriptError`], a rejection reason turned into Rust data.

use std::fmt;
use std::rc::Rc;

use mlua::{Lua, Table, Value};

use crate::value::ScriptValue;

/// Errors of the luaco core.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Lua VM reported an error (syntax, memory, a failed call).
    #[error(transparent)]
    Lua(#[from] mlua::Error),
    /// A value could not be converted between Lua and Rust.
    #[error("conversion failed: {0}")]
    Conversion(String),
    /// A script rejected or failed.
    #[error(transparent)]
    Script(#[from] ScriptError),
    /// The promise is still pending.
    #[error("the promise is still pending")]
    Pending,
}

/// The result type of the luaco core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The `kind` field of an error object, as scripts see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A string raised by a script (`error("...")`) or a runtime failure.
    Runtime,
    /// A bad argument.
    Type,
    /// The task or promise was cancelled.
    Cancelled,
    /// A deadline passed.
    Timeout,
    /// A connection failed.
    Network,
    /// A file operation failed.
    Io,
    /// The operation is not permitted.
    Permission,
    /// Malformed JSON.
    Json,
    /// A resource limit was hit.
    Limit,
    /// Several errors, listed in `errors`.
    Aggregate,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 10] = [
        ErrorKind::Runtime,
        ErrorKind::Type,
        ErrorKind::Cancelled,
        ErrorKind::Timeout,
        ErrorKind::Network,
        ErrorKind::Io,
        ErrorKind::Permission,
        ErrorKind::Json,
        ErrorKind::Limit,
        ErrorKind::Aggregate,
    ];

    /// The name scripts see in `err.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Runtime => "runtime",
            ErrorKind::Type => "type",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Io => "io",
            ErrorKind::Permission => "permission",
            ErrorKind::Json => "json",
            ErrorKind::Limit => "limit",
            ErrorKind::Aggregate => "aggregate",
        }
    }

    /// Parses a kind name; unknown names give `None`.
    pub fn from_name(name: &str) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A script's rejection reason as Rust data.
///
/// Error objects (tables with `message` and `kind`) fill the fields directly;
/// any other raised value becomes kind [`ErrorKind::Runtime`] with its text as
/// `message` and the value itself in [`value`](ScriptError::value).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ScriptError {
    /// What went wrong, by category.
    pub kind: ErrorKind,
    /// The message, with its `file:line:` position when a script raised it.
    pub message: String,
    /// The Lua stack where it was raised, and where its task was spawned.
    pub traceback: Option<String>,
    /// For [`ErrorKind::Aggregate`]: the errors it gathers, in order.
    pub errors: Vec<ScriptError>,
    /// For [`ErrorKind::Io`]: the errno name (`"ENOENT"`, `"EEXIST"`, …).
    pub code: Option<String>,
    /// The raised value when it was not an error object (a table, a number…).
    pub value: Option<ScriptValue>,
    /// The Rust error this one was made from, if any (an I/O error, an
    /// mlua error). Not part of equality.
    pub source: Option<Rc<dyn std::error::Error>>,
}

impl PartialEq for ScriptError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.traceback == other.traceback
            && self.errors == other.errors
            && self.code == other.code
            && self.value == other.value
    }
}

impl ScriptError {
    /// An error of `kind` with `message` and nothing else.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ScriptError {
            kind,
            message: message.into(),
            traceback: None,
            errors: Vec::new(),
            code: None,
            value: None,
            source: None,
        }
    }

    /// The same error with an errno name in `code`.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The same error, remembering `source` as its cause.
    pub fn with_source(mut self, source: impl std::error::Error + 'static) -> Self {
        self.source = Some(Rc::new(source));
        self
    }

    /// The same error with a traceback.
    pub fn with_traceback(mut self, traceback: impl Into<String>) -> Self {
        self.traceback = Some(traceback.into());
        self
    }

    /// Reads a rejection reason. `error_mt` is the metatable of error objects.
    pub fn from_reason(reason: &Value, error_mt: Option<&Table>) -> ScriptError {
        if let Value::Table(t) = reason {
            let is_error_object = match (t.metatable(), error_mt) {
                (Some(mt), Some(emt)) => &mt == emt,
                _ => false,
            };
            if is_error_object {
                let kind = t
                    .raw_get::<String>("kind")
                    .ok()
                    .and_then(|k| ErrorKind::from_name(&k))
                    .unwrap_or(ErrorKind::Runtime);
                // Lua strings are bytes: a message in another encoding
                // than UTF-8 is shown, not dropped.
                let lossy = |field: &str| match t.raw_get::<Value>(field) {
                    Ok(Value::String(s)) => Some(s.to_string_lossy()),
                    _ => None,
                };
                let message = lossy("message").unwrap_or_default();
                let traceback = lossy("traceback");
                let code = t.raw_get::<Option<String>>("code").ok().flatten();
                let errors = match t.raw_get::<Value>("errors") {
                    Ok(Value::Table(list)) => list
                        .sequence_values::<Value>()
                        .filter_map(|v| v.ok())
                        .map(|v| ScriptError::from_reason(&v, error_mt))
                        .collect(),
                    _ => Vec::new(),
                };
                return ScriptError {
                    kind,
                    message,
                    traceback,
                    errors,
                    code,
                    value: None,
                    source: None,
                };
            }
        }
        let message = match reason {
            Value::String(s) => s.to_string_lossy().to_string(),
            Value::Error(e) => e.to_string(),
            other => other
                .to_string()
                .unwrap_or_else(|_| format!("a {} value", other.type_name())),
        };
        ScriptError {
            kind: ErrorKind::Runtime,
            message,
            traceback: None,
            errors: Vec::new(),
            code: None,
            value: ScriptValue::from_lua_value(reason).ok(),
            source: None,
        }
    }

    /// Builds the script-visible error object for this error.
    pub fn to_lua_object(&self, lua: &Lua, error_mt: &Table) -> mlua::Result<Table> {
        let t = lua.create_table_with_capacity(0, 4)?;
        t.raw_set("message", self.message.as_str())?;
        t.raw_set("kind", self.kind.as_str())?;
        if let Some(tb) = &self.traceback {
            t.raw_set("traceback", tb.as_str())?;
        }
        if let Some(code) = &self.code {
            t.raw_set("code", code.as_str())?;
        }
        if self.kind == ErrorKind::Aggregate || !self.errors.is_empty() {
            let list = lua.create_table_with_capacity(self.errors.len(), 1)?;
            for (i, e) in self.errors.iter().enumerate() {
                list.raw_set(i + 1, e.to_lua_object(lua, error_mt)?)?;
            }
            list.raw_set("n", self.errors.len())?;
            t.raw_set("errors", list)?;
        }
        t.set_metatable(Some(error_mt.clone()))?;
        Ok(t)
    }
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Reads an mlua error as a script error, keeping a kind we raised
/// ourselves (a [`ScriptError`] carried through mlua) and the cause.
impl From<mlua::Error> for ScriptError {
    fn from(error: mlua::Error) -> Self {
        ScriptError::from(&error)
    }
}

impl From<&mlua::Error> for ScriptError {
    fn from(error: &mlua::Error) -> Self {
        let plain = |kind, message: String| ScriptError {
            source: Some(Rc::new(error.clone())),
            ..ScriptError::new(kind, message)
        };
        match error {
            mlua::Error::CallbackError { cause, .. } => ScriptError::from(&**cause),
            mlua::Error::WithContext { cause, .. } => ScriptError::from(&**cause),
            mlua::Error::ExternalError(e) => match e.downcast_ref::<ScriptError>() {
                Some(script) => script.clone(),
                None => plain(ErrorKind::Runtime, e.to_string()),
            },
            // The name the sandbox's run-level memory limit uses too.
            mlua::Error::MemoryError(m) => {
                plain(ErrorKind::Limit, format!("memory limit: {m}")).with_code("memory")
            }
            mlua::Error::RuntimeError(m) => plain(ErrorKind::Runtime, m.clone()),
            other => plain(ErrorKind::Runtime, other.to_string()),
        }
    }
}
