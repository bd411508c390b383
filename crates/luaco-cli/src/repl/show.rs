//! How the REPL prints a value: scalars as Lua's `tostring` does, tables
//! by what they hold (nested, keys sorted, within bounds), promises by
//! their state.

use std::cmp::Ordering;

use luaco::core::Engine;
use luaco::mlua::{self, Table, Value};

/// Tables nested deeper than this print as `{...}`.
const MAX_DEPTH: usize = 3;
/// Entries printed per table; the rest are counted, not shown, so a huge
/// table cannot flood the terminal.
const MAX_ENTRIES: usize = 50;

/// A line's values, tab-separated. A string prints as it is, as `print`
/// would show it; inside a table it is quoted.
pub(super) fn values(lua: &mlua::Lua, engine: &Engine, values: &[Value]) -> String {
    let printer = Printer { lua, engine };
    let mut out = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push('\t');
        }
        match value {
            Value::String(s) => out.push_str(&s.to_string_lossy()),
            other => printer.value(&mut out, other, 0, &mut Vec::new()),
        }
    }
    out
}

/// What formatting needs from the runtime.
struct Printer<'a> {
    /// For Lua's own number format.
    lua: &'a mlua::Lua,
    /// To tell promises from other tables.
    engine: &'a Engine,
}

impl Printer<'_> {
    /// Appends `value`; `path` holds the tables being printed around it,
    /// so a table inside itself prints as `<cycle>`.
    fn value(&self, out: &mut String, value: &Value, depth: usize, path: &mut Vec<usize>) {
        match value {
            Value::String(s) => quote(out, &s.as_bytes()),
            Value::Table(t) => self.table(out, t, depth, path),
            other => out.push_str(&self.scalar(other)),
        }
    }

    /// `tostring` of a value that is not a table or a string.
    fn scalar(&self, value: &Value) -> String {
        if let Value::Number(_) = value {
            // Lua's format (`3.0`, `1e+100`), not Rust's (`3`, `1000…0`).
            if let Ok(Some(s)) = self.lua.coerce_string(value.clone()) {
                return s.to_string_lossy();
            }
        }
        value
            .to_string()
            .unwrap_or_else(|_| format!("<{}>", value.type_name()))
    }

    fn table(&self, out: &mut String, table: &Table, depth: usize, path: &mut Vec<usize>) {
        let as_value = Value::Table(table.clone());
        if let Some(promise) = self.engine.promise_from_value(&as_value) {
            out.push_str(&format!("<promise: {}>", promise.status().as_str()));
            return;
        }
        // An object that says how to print itself (error objects do).
        let custom = table
            .metatable()
            .is_some_and(|mt| !matches!(mt.raw_get("__tostring"), Ok(Value::Nil) | Err(_)));
        if custom {
            out.push_str(&self.scalar(&as_value));
            return;
        }
        let id = table.to_pointer().addr();
        if path.contains(&id) {
            out.push_str("<cycle>");
            return;
        }
        let mut entries: Vec<(Value, Value)> = table.pairs::<Value, Value>().flatten().collect();
        if entries.is_empty() {
            out.push_str("{}");
            return;
        }
        if depth >= MAX_DEPTH {
            out.push_str("{...}");
            return;
        }
        entries.sort_by(|a, b| key_order(&a.0, &b.0));
        // The sequence 1..n prints by position, the rest by key.
        let positional = entries
            .iter()
            .zip(1..)
            .take_while(|((k, _), i)| matches!(k, Value::Integer(n) if n == i))
            .count();
        path.push(id);
        out.push('{');
        for (i, (key, value)) in entries.iter().take(MAX_ENTRIES).enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if i >= positional {
                self.key(out, key);
                out.push_str(" = ");
            }
            self.value(out, value, depth + 1, path);
        }
        if entries.len() > MAX_ENTRIES {
            out.push_str(&format!(", ... ({} more)", entries.len() - MAX_ENTRIES));
        }
        out.push('}');
        path.pop();
    }

    /// A key as a table constructor would write it: `name` or `[key]`.
    fn key(&self, out: &mut String, key: &Value) {
        match key {
            Value::String(s) => match s.to_str() {
                Ok(name) if is_name(&name) => out.push_str(&name),
                _ => {
                    out.push('[');
                    quote(out, &s.as_bytes());
                    out.push(']');
                }
            },
            other => {
                out.push('[');
                out.push_str(&self.scalar(other));
                out.push(']');
            }
        }
    }
}

/// Numbers first (by value), then strings (by bytes), booleans, and
/// the rest in a fixed but arbitrary order.
fn key_order(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Integer(_) | Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Boolean(_) => 2,
            _ => 3,
        }
    }
    fn number(v: &Value) -> f64 {
        match v {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            _ => 0.0,
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Value::Integer(x), Value::Integer(y)) => x.cmp(y),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(&y.as_bytes()),
        (Value::Boolean(x), Value::Boolean(y)) => x.cmp(y),
        _ if rank(a) == 0 => number(a).total_cmp(&number(b)),
        _ => a.to_pointer().addr().cmp(&b.to_pointer().addr()),
    })
}

/// A Lua name that is not a keyword, so it can stand as `name = `.
fn is_name(s: &str) -> bool {
    const KEYWORDS: [&str; 22] = [
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
        "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while",
    ];
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !KEYWORDS.contains(&s)
}

/// A string as a Lua literal that reads back as the same bytes: UTF-8 text
/// kept, control characters and other bytes escaped.
fn quote(out: &mut String, bytes: &[u8]) {
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => {
                    let mut buf = [0; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\{b:03}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\{b:03}"));
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(bytes: &[u8]) -> String {
        let mut out = String::new();
        quote(&mut out, bytes);
        out
    }

    #[test]
    fn strings_quote_as_lua_reads_them() {
        assert_eq!(quoted(b"a\"b\\c\n"), r#""a\"b\\c\n""#);
        assert_eq!(quoted("é\u{1}".as_bytes()), "\"é\\001\"");
        assert_eq!(quoted(b"\xff"), "\"\\255\"");
    }

    #[test]
    fn names_exclude_keywords() {
        assert!(is_name("a_1"));
        assert!(!is_name("end"));
        assert!(!is_name("1a"));
        assert!(!is_name(""));
    }
}
