//! JSON for scripts: `json.encode`, `json.decode` (alias `json_parse`),
//! `json.null`, `json.array`.
//!
//! The rules: compact output; object keys sorted; a table whose keys are
//! exactly `1..n` (n ≥ 1) is an array, any other table an object (`{}` is
//! `{}`; `json.array(t)` forces `[]`); integers stay integers both ways and
//! floats stay floats; JSON `null` decodes to the sentinel `json.null`.
//! Malformed input raises kind `"json"` with `line L column C`; cycles,
//! functions, NaN and non-UTF-8 strings raise kind `"type"`.

use std::ffi::c_void;
use std::fmt;

use luaco_core::{ApiResult, Engine, ErrorKind, ScriptError};
use mlua::{LightUserData, Lua, MultiValue, Table, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// Tables nested deeper than this are refused when encoding, and serde_json
/// refuses documents nested deeper when decoding (its recursion limit
/// admits 127 levels): what encode writes, decode reads, and neither side
/// can overflow the stack.
const MAX_DEPTH: usize = 127;

/// The `json.null` sentinel: a null light userdata.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::LightUserData(ud) if ud.0.is_null())
}

fn type_err(msg: impl fmt::Display) -> ScriptError {
    ScriptError::new(ErrorKind::Type, format!("json.encode: {msg}"))
}

/// Encodes a Lua value as compact JSON with sorted object keys.
pub fn encode(value: &Value, array_mt: Option<&Table>) -> Result<String, ScriptError> {
    let mut out = Vec::with_capacity(64);
    let mut path: Vec<*const c_void> = Vec::new();
    encode_into(value, array_mt, &mut out, &mut path)?;
    String::from_utf8(out).map_err(type_err)
}

fn encode_into(
    value: &Value,
    array_mt: Option<&Table>,
    out: &mut Vec<u8>,
    path: &mut Vec<*const c_void>,
) -> Result<(), ScriptError> {
    match value {
        Value::Nil => out.extend_from_slice(b"null"),
        v if is_null(v) => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Number(n) => {
            if !n.is_finite() {
                return Err(type_err(format!("cannot encode the number {n}")));
            }
            serde_json::to_writer(&mut *out, n).map_err(type_err)?;
        }
        Value::String(s) => {
            let text = s
                .to_str()
                .map_err(|_| type_err("cannot encode a string that is not UTF-8"))?;
            serde_json::to_writer(&mut *out, &*text).map_err(type_err)?;
        }
        Value::Table(t) => {
            let ptr = t.to_pointer();
            if path.contains(&ptr) {
                return Err(type_err("cannot encode a table that contains itself"));
            }
            if path.len() >= MAX_DEPTH {
                return Err(type_err(format!(
                    "tables nested more than {MAX_DEPTH} deep"
                )));
            }
            path.push(ptr);
            encode_table(t, array_mt, out, path)?;
            path.pop();
        }
        other => return Err(type_err(format!("cannot encode a {}", other.type_name()))),
    }
    Ok(())
}

/// How many items a marked array has: its `n` field when that is a count
/// not far past its border (trailing nils), else its border.
fn forced_len(t: &Table) -> Result<usize, ScriptError> {
    const MAX_TRAILING_NILS: usize = 1 << 20;
    let len = t.raw_len();
    match t.raw_get::<Value>("n") {
        Ok(Value::Integer(n)) if n >= 0 => {
            let n = n as usize;
            if n > len.saturating_add(MAX_TRAILING_NILS) {
                return Err(type_err(format!(
                    "cannot encode an array whose n = {n} is far beyond its {len} items"
                )));
            }
            Ok(n)
        }
        _ => Ok(len),
    }
}

fn encode_table(
    t: &Table,
    array_mt: Option<&Table>,
    out: &mut Vec<u8>,
    path: &mut Vec<*const c_void>,
) -> Result<(), ScriptError> {
    let lua_err = |e: mlua::Error| type_err(e);
    let forced_array = matches!((t.metatable(), array_mt), (Some(mt), Some(a)) if &mt == a);
    let mut entries = Vec::new();
    let mut max_int = 0i64;
    let mut all_int = true;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(lua_err)?;
        match k {
            Value::Integer(i) if i >= 1 => max_int = max_int.max(i),
            _ => all_int = false,
        }
        entries.push((k, v));
    }
    let is_array =
        forced_array || (!entries.is_empty() && all_int && max_int as usize == entries.len());
    if is_array {
        let n = if forced_array {
            forced_len(t)?
        } else {
            entries.len()
        };
        out.push(b'[');
        for i in 1..=n {
            if i > 1 {
                out.push(b',');
            }
            let v: Value = t.raw_get(i).map_err(lua_err)?;
            encode_into(&v, array_mt, out, path)?;
        }
        out.push(b']');
        return Ok(());
    }
    let mut keyed = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let key = match &k {
            Value::String(s) => s
                .to_str()
                .map_err(|_| type_err("cannot encode a key that is not UTF-8"))?
                .to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) if n.is_finite() => n.to_string(),
            other => {
                return Err(type_err(format!(
                    "cannot encode a {} key",
                    other.type_name()
                )))
            }
        };
        keyed.push((key, v));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    // `{[1] = "a", ["1"] = "b"}`: two keys, one JSON name. Writing both would
    // make a document whose meaning depends on the reader.
    if let Some(pair) = keyed.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(type_err(format!(
            "two keys of one table both encode as the name \"{}\"",
            pair[0].0
        )));
    }
    out.push(b'{');
    for (i, (k, v)) in keyed.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, k).map_err(type_err)?;
        out.push(b':');
        encode_into(v, array_mt, out, path)?;
    }
    out.push(b'}');
    Ok(())
}

/// Decodes JSON text into Lua values; arrays get `array_mt` so they encode
/// back as arrays even when empty.
pub fn decode(lua: &Lua, text: &[u8], array_mt: &Table) -> Result<Value, ScriptError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = LuaSeed { lua, array_mt }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| ScriptError::new(ErrorKind::Json, format!("json.decode: {e}")))?;
    Ok(value)
}

#[derive(Clone, Copy)]
struct LuaSeed<'a> {
    lua: &'a Lua,
    array_mt: &'a Table,
}

fn de_err<E: de::Error>(e: mlua::Error) -> E {
    E::custom(e)
}

impl<'de> DeserializeSeed<'de> for LuaSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for LuaSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(null())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Number(v as f64), Value::Integer))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Number(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.lua.create_string(v).map(Value::String).map_err(de_err)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(de_err)?;
        let mut i = 1;
        while let Some(v) = seq.next_element_seed(self)? {
            t.raw_set(i, v).map_err(de_err)?;
            i += 1;
        }
        t.set_metatable(Some(self.array_mt.clone()))
            .map_err(de_err)?;
        Ok(Value::Table(t))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let t = self.lua.create_table().map_err(de_err)?;
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            t.raw_set(k, v).map_err(de_err)?;
        }
        Ok(Value::Table(t))
    }
}

pub(crate) fn install(engine: &Engine, lua: &Lua, api: &Table) -> mlua::Result<()> {
    let json = lua.create_table()?;
    // The core's array marker: combinator results and `json.array` tables
    // encode as arrays of their `n` items.
    let array_mt = engine.array_metatable().clone();
    let mt = array_mt.clone();
    json.raw_set(
        "encode",
        engine.api_function(lua, move |lua, args: MultiValue| -> ApiResult<Value> {
            let value = args.front().cloned().unwrap_or(Value::Nil);
            let text = encode(&value, Some(&mt))?;
            lua.create_string(text)
                .map(Value::String)
                .map_err(ScriptError::from)
        })?,
    )?;
    let mt = array_mt.clone();
    let decode_fn = engine.api_function(lua, move |lua, args: MultiValue| -> ApiResult<Value> {
        match args.front() {
            Some(Value::String(s)) => decode(lua, &s.as_bytes(), &mt),
            other => Err(luaco_core::type_error(
                lua,
                "json.decode",
                1,
                "string",
                other,
            )),
        }
    })?;
    json.raw_set("decode", decode_fn.clone())?;
    let mt = array_mt.clone();
    json.raw_set(
        "array",
        engine.api_function(lua, move |lua, args: MultiValue| -> ApiResult<Value> {
            let t = match args.front() {
                None | Some(Value::Nil) => lua.create_table().map_err(ScriptError::from)?,
                Some(Value::Table(t)) => t.clone(),
                other => return Err(luaco_core::type_error(lua, "json.array", 1, "table", other)),
            };
            t.set_metatable(Some(mt.clone()))
                .map_err(ScriptError::from)?;
            Ok(Value::Table(t))
        })?,
    )?;
    json.raw_set("null", null())?;
    api.raw_set("json", json)?;
    api.raw_set("json_parse", decode_fn)?;
    Ok(())
}
