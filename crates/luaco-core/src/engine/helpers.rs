//! Helpers for API functions written in Rust: positions at the script's
//! call, argument errors, millisecond arguments.

use std::time::Duration;

use mlua::{Lua, Value};

use super::{ApiResult, CALLER};
use crate::error::{ErrorKind, ScriptError};

/// `file:line` of the function `level` frames up, if it is Lua code.
pub(crate) fn caller_place(lua: &Lua, level: usize) -> Option<String> {
    lua.inspect_stack(level, |d| {
        let line = d.current_line()?;
        let src = d.source();
        Some(format!(
            "{}:{}",
            src.short_src.as_deref().unwrap_or("?"),
            line
        ))
    })
    .flatten()
}

/// Prefixes `message` with the `file:line:` of the frame `level` up.
pub fn located(lua: &Lua, level: usize, message: &str) -> String {
    match caller_place(lua, level) {
        Some(place) => format!("{place}: {message}"),
        None => message.to_owned(),
    }
}

/// A type error for argument `n` of `func`, positioned at the script's call.
pub fn type_error(
    lua: &Lua,
    func: &str,
    n: usize,
    expected: &str,
    got: Option<&Value>,
) -> ScriptError {
    let got = got.map_or("no value", |v| v.type_name());
    ScriptError::new(
        ErrorKind::Type,
        located(
            lua,
            CALLER,
            &format!("bad argument #{n} to '{func}' ({expected} expected, got {got})"),
        ),
    )
}

/// Validates a millisecond count: a finite number ≥ 0 (fractions allowed),
/// never a string. `func` names the function in the error message.
pub fn duration_from_ms(
    lua: &Lua,
    func: &str,
    n: usize,
    value: Option<&Value>,
) -> ApiResult<Duration> {
    let ms = match value {
        Some(Value::Integer(i)) => *i as f64,
        Some(Value::Number(f)) => *f,
        other => return Err(type_error(lua, func, n, "number", other)),
    };
    if !(0.0..=1e15).contains(&ms) {
        return Err(ScriptError::new(
            ErrorKind::Type,
            located(
                lua,
                CALLER,
                &format!("bad argument #{n} to '{func}' (finite number >= 0 expected, got {ms})"),
            ),
        ));
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}
