//! [`ScriptValue`]: plain data that crosses between Lua and Rust.

use std::collections::BTreeMap;
use std::fmt;

use mlua::{IntoLua, Lua, Table, Value};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::error::{Error, Result};

/// Tables nested deeper than this are refused, so a self-referencing or
/// absurdly deep table cannot overflow the Rust stack.
const MAX_DEPTH: usize = 128;

/// A Lua value as plain, owned Rust data.
///
/// Conversion from Lua follows the JSON rule: a table whose keys
/// are exactly `1..=n` (n ≥ 1) is an [`Array`](ScriptValue::Array), any other
/// table a [`Map`](ScriptValue::Map) keyed by strings (integer keys are
/// written in decimal). Strings that are not UTF-8 become
/// [`Bytes`](ScriptValue::Bytes). Functions, threads and userdata cannot be
/// converted.
///
/// ```
/// use luaco_core::ScriptValue;
/// let lua = mlua::Lua::new();
/// let v: mlua::Value = lua.load("return {1, 2, {x = true}}").eval()?;
/// let data = ScriptValue::from_lua_value(&v)?;
/// assert_eq!(serde_json::to_string(&data).unwrap(), r#"[1,2,{"x":true}]"#);
/// # Ok::<(), luaco_core::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Default)]
pub enum ScriptValue {
    /// Lua `nil` (and JSON `null`).
    #[default]
    Nil,
    /// A boolean.
    Boolean(bool),
    /// A Lua integer.
    Integer(i64),
    /// A Lua float.
    Number(f64),
    /// A UTF-8 string.
    String(String),
    /// A string that is not valid UTF-8.
    Bytes(Vec<u8>),
    /// A table with keys exactly `1..=n`, n ≥ 1.
    Array(Vec<ScriptValue>),
    /// Any other table, keyed by string.
    Map(BTreeMap<String, ScriptValue>),
}

impl ScriptValue {
    /// Converts a Lua value into owned data.
    ///
    /// Fails with [`Error::Conversion`] for functions, threads, userdata,
    /// tables with keys that are neither strings nor integers, and tables
    /// nested more than 128 deep (which includes cycles).
    pub fn from_lua_value(value: &Value) -> Result<Self> {
        from_lua(value, 0)
    }

    /// Converts this value into a Lua value in `lua`.
    pub fn to_lua_value(&self, lua: &Lua) -> mlua::Result<Value> {
        Ok(match self {
            ScriptValue::Nil => Value::Nil,
            ScriptValue::Boolean(b) => Value::Boolean(*b),
            ScriptValue::Integer(i) => Value::Integer(*i),
            ScriptValue::Number(n) => Value::Number(*n),
            ScriptValue::String(s) => Value::String(lua.create_string(s)?),
            ScriptValue::Bytes(b) => Value::String(lua.create_string(b)?),
            ScriptValue::Array(items) => {
                let t = lua.create_table_with_capacity(items.len(), 0)?;
                for (i, item) in items.iter().enumerate() {
                    t.raw_set(i + 1, item.to_lua_value(lua)?)?;
                }
                Value::Table(t)
            }
            ScriptValue::Map(map) => {
                let t = lua.create_table_with_capacity(0, map.len())?;
                for (k, v) in map {
                    t.raw_set(k.as_str(), v.to_lua_value(lua)?)?;
                }
                Value::Table(t)
            }
        })
    }

    /// The string, if this is a UTF-8 string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ScriptValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            ScriptValue::Integer(i) => Some(i as f64),
            ScriptValue::Number(n) => Some(n),
            _ => None,
        }
    }

    /// The value as an integer, if it is an integer (or a float with an exact integer value).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            ScriptValue::Integer(i) => Some(i),
            ScriptValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(n as i64),
            _ => None,
        }
    }

    /// Looks up `key` if this is a map.
    pub fn get(&self, key: &str) -> Option<&ScriptValue> {
        match self {
            ScriptValue::Map(m) => m.get(key),
            _ => None,
        }
    }
}

fn from_lua(value: &Value, depth: usize) -> Result<ScriptValue> {
    Ok(match value {
        Value::Nil => ScriptValue::Nil,
        Value::Boolean(b) => ScriptValue::Boolean(*b),
        Value::Integer(i) => ScriptValue::Integer(*i),
        Value::Number(n) => ScriptValue::Number(*n),
        Value::String(s) => match s.to_str() {
            Ok(text) => ScriptValue::String(text.to_owned()),
            Err(_) => ScriptValue::Bytes(s.as_bytes().to_vec()),
        },
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(Error::Conversion(format!(
                    "table nested more than {MAX_DEPTH} deep (or cyclic)"
                )));
            }
            table_from_lua(t, depth + 1)?
        }
        Value::LightUserData(ud) if ud.0.is_null() => ScriptValue::Nil,
        other => {
            return Err(Error::Conversion(format!(
                "cannot convert a {} to data",
                other.type_name()
            )))
        }
    })
}

/// The `__name` of the metatable that marks arrays (combinator results,
/// `json.array`): such a table converts to an array of its `n` items.
pub(crate) const ARRAY_NAME: &str = "luaco.array";

/// How far past its border a marked array's `n` may reach (its trailing
/// nils); a larger `n` is refused rather than allocated.
const MAX_TRAILING_NILS: usize = 1 << 20;

fn is_marked_array(t: &Table) -> bool {
    t.metatable()
        .and_then(|mt| mt.raw_get::<mlua::LuaString>("__name").ok())
        .is_some_and(|name| name.as_bytes().as_ref() == ARRAY_NAME.as_bytes())
}

fn marked_array_from_lua(t: &Table, depth: usize) -> Result<ScriptValue> {
    let len = t.raw_len();
    let n = match t.raw_get::<Value>("n") {
        Ok(Value::Integer(n)) if n >= 0 => n as usize,
        _ => len,
    };
    if n > len.saturating_add(MAX_TRAILING_NILS) {
        return Err(Error::Conversion(format!(
            "array field n = {n} is far beyond its {len} items"
        )));
    }
    let mut items = Vec::with_capacity(n.min(len.saturating_add(16)));
    for i in 1..=n {
        let v: Value = t.raw_get(i).map_err(|e| Error::Conversion(e.to_string()))?;
        items.push(from_lua(&v, depth)?);
    }
    Ok(ScriptValue::Array(items))
}

fn table_from_lua(t: &Table, depth: usize) -> Result<ScriptValue> {
    if is_marked_array(t) {
        return marked_array_from_lua(t, depth);
    }
    let mut int_keys = 0usize;
    let mut max_int = 0i64;
    let mut min_int = i64::MAX;
    let mut entries = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|e| Error::Conversion(e.to_string()))?;
        if let Value::Integer(i) = k {
            int_keys += 1;
            max_int = max_int.max(i);
            min_int = min_int.min(i);
        }
        entries.push((k, v));
    }
    // Distinct integer keys, all >= 1, whose largest is their count: 1..=n.
    let is_array = !entries.is_empty()
        && int_keys == entries.len()
        && min_int >= 1
        && usize::try_from(max_int).is_ok_and(|m| m == int_keys);
    if is_array {
        let mut items = vec![ScriptValue::Nil; int_keys];
        for (k, v) in &entries {
            if let Value::Integer(i) = k {
                items[(*i - 1) as usize] = from_lua(v, depth)?;
            }
        }
        return Ok(ScriptValue::Array(items));
    }
    let mut map = BTreeMap::new();
    for (k, v) in &entries {
        let key = match k {
            Value::String(s) => s.to_string_lossy().to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(Error::Conversion(format!(
                    "cannot convert a table key of type {} to data",
                    other.type_name()
                )))
            }
        };
        map.insert(key, from_lua(v, depth)?);
    }
    Ok(ScriptValue::Map(map))
}

impl IntoLua for ScriptValue {
    fn into_lua(self, lua: &Lua) -> mlua::Result<Value> {
        self.to_lua_value(lua)
    }
}

impl mlua::FromLua for ScriptValue {
    fn from_lua(value: Value, _lua: &Lua) -> mlua::Result<Self> {
        ScriptValue::from_lua_value(&value).map_err(mlua::Error::external)
    }
}

macro_rules! from_impl {
    ($($t:ty => $variant:ident as $conv:ty),* $(,)?) => {
        $(impl From<$t> for ScriptValue {
            fn from(v: $t) -> Self { ScriptValue::$variant(<$conv>::from(v)) }
        })*
    };
}
from_impl!(bool => Boolean as bool, i32 => Integer as i64, i64 => Integer as i64,
    u32 => Integer as i64, f64 => Number as f64, String => String as String,
    &str => String as String);

impl<T: Into<ScriptValue>> From<Vec<T>> for ScriptValue {
    fn from(v: Vec<T>) -> Self {
        ScriptValue::Array(v.into_iter().map(Into::into).collect())
    }
}

impl<T: Into<ScriptValue>> From<Option<T>> for ScriptValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(ScriptValue::Nil, Into::into)
    }
}

impl fmt::Display for ScriptValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptValue::Nil => f.write_str("nil"),
            ScriptValue::Boolean(b) => write!(f, "{b}"),
            ScriptValue::Integer(i) => write!(f, "{i}"),
            ScriptValue::Number(n) => write!(f, "{n}"),
            // Inside tables (`{:#}`) strings are quoted so the structure stays readable.
            ScriptValue::String(s) if f.alternate() => write!(f, "{s:?}"),
            ScriptValue::String(s) => f.write_str(s),
            ScriptValue::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            ScriptValue::Array(items) => {
                f.write_str("{")?;
                for (i, item) in items.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{item:#}")?;
                }
                f.write_str("}")
            }
            ScriptValue::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{k} = {v:#}")?;
                }
                f.write_str("}")
            }
        }
    }
}

impl Serialize for ScriptValue {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ScriptValue::Nil => s.serialize_unit(),
            ScriptValue::Boolean(b) => s.serialize_bool(*b),
            ScriptValue::Integer(i) => s.serialize_i64(*i),
            ScriptValue::Number(n) => s.serialize_f64(*n),
            ScriptValue::String(v) => s.serialize_str(v),
            ScriptValue::Bytes(b) => s.serialize_bytes(b),
            ScriptValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            ScriptValue::Map(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for ScriptValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        d.deserialize_any(ScriptValueVisitor)
    }
}

struct ScriptValueVisitor;

impl<'de> Visitor<'de> for ScriptValueVisitor {
    type Value = ScriptValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any plain data value")
    }
    fn visit_unit<E>(self) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Nil)
    }
    fn visit_none<E>(self) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<ScriptValue, D::Error> {
        ScriptValue::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Boolean(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Integer(v))
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<ScriptValue, E> {
        Ok(i64::try_from(v).map_or(ScriptValue::Number(v as f64), ScriptValue::Integer))
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Number(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::String(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<ScriptValue, E> {
        Ok(ScriptValue::Bytes(v.to_vec()))
    }
    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<ScriptValue, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(ScriptValue::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut access: A,
    ) -> std::result::Result<ScriptValue, A::Error> {
        let mut map = BTreeMap::new();
        while let Some((k, v)) = access.next_entry::<String, ScriptValue>()? {
            map.insert(k, v);
        }
        Ok(ScriptValue::Map(map))
    }
}
