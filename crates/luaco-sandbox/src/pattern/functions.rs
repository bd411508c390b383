//! `string.find`, `match`, `gmatch` and `gsub` over the counted matcher,
//! with Lua 5.4's argument handling and results.

use std::cell::Cell;
use std::io::Write as _;
use std::rc::Rc;

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value};

use super::args::{message, type_name, Args, Raise};
use super::matcher::{find_plain, is_literal, Cap, Counter, Fail, Matcher};
use super::Meter;

/// What every replaced function holds.
pub(crate) struct Shared {
    pub(crate) meter: Rc<dyn Meter>,
    /// Lua's `pcall`: replacement functions and `__index` run under it so
    /// that their error values come back untouched, to be raised again.
    pub(crate) pcall: Function,
    /// `function(t, k) return t[k] end`, for tables with a metatable.
    pub(crate) index: Function,
    /// The first value of a result that the wrapper must raise.
    pub(crate) raise: Table,
}

impl Shared {
    /// A result in the form the Lua wrapper expects: the values, or the
    /// marker and the error value to raise; the meter's error as is.
    pub(crate) fn respond(
        &self,
        lua: &Lua,
        result: Result<MultiValue, Raise>,
    ) -> mlua::Result<MultiValue> {
        let error = match result {
            Ok(values) => return Ok(values),
            Err(Raise::Rust(e)) => return Err(e),
            Err(Raise::Message(m)) => Value::String(lua.create_string(m)?),
            Err(Raise::Value(v)) => v,
        };
        Ok(MultiValue::from_vec(vec![
            Value::Table(self.raise.clone()),
            error,
        ]))
    }
}

/// The raise for a matcher that stopped: the pattern's error at the
/// caller's position, unless the meter (charged first) refuses.
fn failed(lua: &Lua, counter: &mut Counter, fail: Fail) -> Raise {
    let fail = match fail {
        Fail::Pattern(e) => counter.flush().err().unwrap_or(Fail::Pattern(e)),
        Fail::Stopped => Fail::Stopped,
    };
    match fail {
        Fail::Pattern(e) => message(lua, &e.message()),
        Fail::Stopped => Raise::Rust(
            counter
                .take_error()
                .unwrap_or_else(|| mlua::Error::runtime("pattern matching stopped")),
        ),
    }
}

/// Lua's `posrelatI(init) - 1` as an index, or `None` past the end.
fn start_index(init: i64, len: usize) -> Option<usize> {
    let start = match init {
        i if i > 0 => usize::try_from(i - 1).unwrap_or(usize::MAX),
        0 => 0,
        i if i.unsigned_abs() > len as u64 => 0,
        i => len - i.unsigned_abs() as usize,
    };
    (start <= len).then_some(start)
}

/// The pattern without its `^`, and whether it had one.
fn anchored(pat: &[u8]) -> (bool, &[u8]) {
    match pat.split_first() {
        Some((b'^', rest)) => (true, rest),
        _ => (false, pat),
    }
}

fn one(value: Value) -> MultiValue {
    MultiValue::from_vec(vec![value])
}

fn capture_value(lua: &Lua, src: &[u8], cap: Cap) -> mlua::Result<Value> {
    Ok(match cap {
        Cap::Text(a, b) => Value::String(lua.create_string(&src[a..b])?),
        Cap::Position(p) => Value::Integer(p as i64),
    })
}

/// Appends the captures of the match `s..e` (the whole match if it has
/// none and `whole`) to `out`.
fn push_captures(
    lua: &Lua,
    m: &mut Matcher,
    src: &[u8],
    (s, e): (usize, usize),
    whole: bool,
    out: &mut MultiValue,
) -> Result<(), Raise> {
    for i in 0..m.capture_count(whole) {
        match m.capture(i, s, e) {
            Ok(cap) => out.push_back(capture_value(lua, src, cap)?),
            Err(p) => return Err(failed(lua, &mut m.counter, Fail::Pattern(p))),
        }
    }
    Ok(())
}

/// `string.find` (`find`) and `string.match` (`!find`).
pub(crate) fn find(
    lua: &Lua,
    shared: &Shared,
    values: &MultiValue,
    find: bool,
) -> Result<MultiValue, Raise> {
    let args = Args::new(lua, values, if find { "find" } else { "match" });
    let subject = args.string(1)?;
    let pattern = args.string(2)?;
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    let Some(start) = start_index(args.opt_integer(3, 1)?, src.len()) else {
        return Ok(one(Value::Nil));
    };
    if find && (args.truthy(4) || is_literal(&pat)) {
        let mut counter = Counter::new(&*shared.meter);
        let found = find_plain(&src[start..], &pat, &mut counter)
            .and_then(|found| counter.flush().map(|()| found))
            .map_err(|f| failed(lua, &mut counter, f))?;
        return Ok(match found {
            Some(i) => MultiValue::from_vec(vec![
                Value::Integer((start + i + 1) as i64),
                Value::Integer((start + i + pat.len()) as i64),
            ]),
            None => one(Value::Nil),
        });
    }
    let (anchor, pat) = anchored(&pat);
    let mut m = Matcher::new(&src, pat, &*shared.meter);
    let mut s = start;
    loop {
        match m.match_at(s) {
            Ok(Some(e)) => {
                let mut out = MultiValue::new();
                if find {
                    out.push_back(Value::Integer((s + 1) as i64));
                    out.push_back(Value::Integer(e as i64));
                }
                push_captures(lua, &mut m, &src, (s, e), !find, &mut out)?;
                m.counter
                    .flush()
                    .map_err(|f| failed(lua, &mut m.counter, f))?;
                return Ok(out);
            }
            Ok(None) => {}
            Err(f) => return Err(failed(lua, &mut m.counter, f)),
        }
        if anchor || s >= src.len() {
            break;
        }
        s += 1;
    }
    m.counter
        .flush()
        .map_err(|f| failed(lua, &mut m.counter, f))?;
    Ok(one(Value::Nil))
}

/// Most matches one refill of gmatch's buffer collects.
const MAX_BATCH: usize = 64;

/// `string.gmatch`: a function that fills the wrapper's buffer with the
/// captures of the next few matches, so that most steps of the loop cost
/// no call into Rust. Each refill collects twice as many matches as the
/// last (up to [`MAX_BATCH`]), so a loop that stops early has had at most
/// about as much work done ahead as it used.
pub(crate) fn gmatch(
    lua: &Lua,
    shared: &Rc<Shared>,
    values: &MultiValue,
) -> Result<MultiValue, Raise> {
    let args = Args::new(lua, values, "gmatch");
    let subject = args.string(1)?.into_owned();
    let pattern = args.string(2)?;
    let len = subject.as_bytes().len();
    // Past the end, one past it: the iterator then finds nothing.
    let start = start_index(args.opt_integer(3, 1)?, len).unwrap_or(len + 1);
    // Patterns are short: a copy saves borrowing it again at every refill.
    let pattern = pattern.as_bytes().to_vec();
    let state = Cell::new(GmatchState {
        next: start,
        last_match: None,
        batch: 1,
    });
    let shared = shared.clone();
    let fill = lua.create_function(move |lua, buffer: Table| {
        let mut st = state.get();
        let result = fill_gmatch(
            lua,
            &shared,
            &subject.as_bytes(),
            &pattern,
            &mut st,
            &buffer,
        );
        state.set(st);
        shared.respond(lua, result)
    })?;
    Ok(one(Value::Function(fill)))
}

#[derive(Clone, Copy)]
struct GmatchState {
    /// Where the next match is looked for.
    next: usize,
    /// Where the last match ended: an empty match there is skipped.
    last_match: Option<usize>,
    /// How many matches the next refill collects.
    batch: usize,
}

/// Puts the captures of up to `st.batch` matches in `buffer`; returns how
/// many values it put and how many each match has. An error after the
/// first match is left for the next refill to meet again (matching is a
/// pure function of the state), so it is raised at the same iteration as
/// Lua's.
fn fill_gmatch(
    lua: &Lua,
    shared: &Shared,
    src: &[u8],
    pat: &[u8],
    st: &mut GmatchState,
    buffer: &Table,
) -> Result<MultiValue, Raise> {
    let mut m = Matcher::new(src, pat, &*shared.meter);
    let (mut found, mut size, mut width) = (0, 0, 0);
    let mut s = st.next;
    while found < st.batch && s <= src.len() {
        let e = match m.match_at(s) {
            Ok(Some(e)) if Some(e) != st.last_match => e,
            Ok(_) => {
                s += 1;
                continue;
            }
            Err(Fail::Pattern(_)) if found > 0 => break,
            Err(f) => return Err(failed(lua, &mut m.counter, f)),
        };
        let count = m.capture_count(true);
        let bad = (0..count).find_map(|i| m.capture(i, s, e).err());
        // Every match of one pattern has as many captures; should one not,
        // it waits for a refill of its own, as does a bad capture.
        if found > 0 && (bad.is_some() || count != width) {
            break;
        }
        if let Some(p) = bad {
            // Lua moves past the match before it finds the capture bad.
            (st.next, st.last_match) = (e, Some(e));
            return Err(failed(lua, &mut m.counter, Fail::Pattern(p)));
        }
        for cap in (0..count).filter_map(|i| m.capture(i, s, e).ok()) {
            size += 1;
            buffer.raw_set(size, capture_value(lua, src, cap)?)?;
        }
        (found, width) = (found + 1, count);
        (st.next, st.last_match) = (e, Some(e));
        s = e;
    }
    st.batch = (st.batch * 2).min(MAX_BATCH);
    m.counter
        .flush()
        .map_err(|f| failed(lua, &mut m.counter, f))?;
    Ok(MultiValue::from_vec(vec![
        Value::Integer(size),
        Value::Integer(width as i64),
    ]))
}

/// One element of a replacement string, parsed once per call.
enum Piece {
    Literal(usize, usize),
    Percent,
    Whole,
    Capture(usize),
    /// `%` before anything else: an error when first used, as in Lua.
    Invalid,
}

fn parse_replacement(repl: &[u8]) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut from = 0;
    let mut i = 0;
    while i < repl.len() {
        if repl[i] != b'%' {
            i += 1;
            continue;
        }
        if from < i {
            pieces.push(Piece::Literal(from, i));
        }
        let piece = match repl.get(i + 1) {
            Some(b'%') => Piece::Percent,
            Some(b'0') => Piece::Whole,
            Some(&d @ b'1'..=b'9') => Piece::Capture(usize::from(d - b'1')),
            _ => Piece::Invalid,
        };
        let invalid = matches!(piece, Piece::Invalid);
        pieces.push(piece);
        if invalid {
            return pieces;
        }
        i += 2;
        from = i;
    }
    if from < repl.len() {
        pieces.push(Piece::Literal(from, repl.len()));
    }
    pieces
}

enum Replacement {
    Text(Vec<u8>, Vec<Piece>),
    Table(Table),
    Function(Function),
}

/// `string.gsub`.
pub(crate) fn gsub(lua: &Lua, shared: &Shared, values: &MultiValue) -> Result<MultiValue, Raise> {
    let args = Args::new(lua, values, "gsub");
    let subject = args.string(1)?;
    let pattern = args.string(2)?;
    let (src, pat) = (subject.as_bytes(), pattern.as_bytes());
    // Lua reads the count before it checks the replacement's type.
    let max = args.opt_integer(4, src.len() as i64 + 1)?;
    let repl = match args.get(3) {
        Some(v @ (Value::String(_) | Value::Integer(_) | Value::Number(_))) => {
            let text = lua
                .coerce_string(v.clone())?
                .ok_or_else(|| args.type_error(3, "string/function/table"))?;
            let text = text.as_bytes().to_vec();
            let pieces = parse_replacement(&text);
            Replacement::Text(text, pieces)
        }
        Some(Value::Table(t)) => Replacement::Table(t.clone()),
        Some(Value::Function(f)) => Replacement::Function(f.clone()),
        _ => return Err(args.type_error(3, "string/function/table")),
    };
    let (anchor, pat) = anchored(&pat);
    let mut m = Matcher::new(&src, pat, &*shared.meter);
    let mut out = Vec::new();
    // Text before `copied` is in `out` already: unchanged runs are copied
    // in one go when the next replacement comes.
    let (mut copied, mut changed) = (0, false);
    let (mut s, mut last_match, mut n) = (0, None, 0i64);
    while n < max {
        let end = m.match_at(s).map_err(|f| failed(lua, &mut m.counter, f))?;
        match end {
            Some(e) if Some(e) != last_match => {
                n += 1;
                match &repl {
                    Replacement::Text(text, pieces) => {
                        out.extend_from_slice(&src[copied..s]);
                        expand(lua, &mut m, &src, (s, e), text, pieces, &mut out)?;
                        (copied, changed) = (e, true);
                    }
                    looked_up => {
                        if let Some(value) =
                            replacement(lua, shared, &mut m, &src, (s, e), looked_up)?
                        {
                            out.extend_from_slice(&src[copied..s]);
                            out.extend_from_slice(&value.as_bytes());
                            (copied, changed) = (e, true);
                        }
                    }
                }
                s = e;
                last_match = Some(e);
            }
            _ if s < src.len() => s += 1,
            _ => break,
        }
        if anchor {
            break;
        }
    }
    m.counter
        .flush()
        .map_err(|f| failed(lua, &mut m.counter, f))?;
    let result = if changed {
        out.extend_from_slice(&src[copied..]);
        lua.create_string(&out)?
    } else {
        subject.into_owned()
    };
    Ok(MultiValue::from_vec(vec![
        Value::String(result),
        Value::Integer(n),
    ]))
}

/// The value a table or function gives for the match `s..e`: `None` keeps
/// the match as it was.
fn replacement(
    lua: &Lua,
    shared: &Shared,
    m: &mut Matcher,
    src: &[u8],
    (s, e): (usize, usize),
    repl: &Replacement,
) -> Result<Option<LuaString>, Raise> {
    let value = match repl {
        Replacement::Text(..) => return Ok(None),
        Replacement::Table(t) => {
            let key = match m.capture(0, s, e) {
                Ok(cap) => capture_value(lua, src, cap)?,
                Err(p) => return Err(failed(lua, &mut m.counter, Fail::Pattern(p))),
            };
            // Without a metatable nothing can run or fail: a raw read.
            if t.metatable().is_none() {
                t.raw_get::<Value>(key)?
            } else {
                let index = Value::Function(shared.index.clone());
                protected(&shared.pcall, (index, Value::Table(t.clone()), key))?
            }
        }
        // One capture is the usual case: passed without a MultiValue.
        Replacement::Function(f) if m.capture_count(true) == 1 => {
            let cap = match m.capture(0, s, e) {
                Ok(cap) => capture_value(lua, src, cap)?,
                Err(p) => return Err(failed(lua, &mut m.counter, Fail::Pattern(p))),
            };
            protected(&shared.pcall, (f, cap))?
        }
        Replacement::Function(f) => {
            let mut call = MultiValue::new();
            call.push_back(Value::Function(f.clone()));
            push_captures(lua, m, src, (s, e), true, &mut call)?;
            protected(&shared.pcall, call)?
        }
    };
    match value {
        Value::Nil | Value::Boolean(false) => Ok(None),
        Value::String(s) => Ok(Some(s)),
        v @ (Value::Integer(_) | Value::Number(_)) => Ok(lua.coerce_string(v)?),
        v => Err(message(
            lua,
            &format!("invalid replacement value (a {})", type_name(Some(&v))),
        )),
    }
}

/// Calls `pcall(...)`: its first result, or the error to raise again.
fn protected(pcall: &Function, call: impl mlua::IntoLuaMulti) -> Result<Value, Raise> {
    // pcall's first result is a boolean; the rest past the second are
    // what Lua's gsub drops too.
    let (ok, value): (bool, Value) = pcall.call(call)?;
    if ok {
        Ok(value)
    } else {
        Err(Raise::Value(value))
    }
}

/// Lua's `add_s`: the replacement string with its `%` items filled in.
fn expand(
    lua: &Lua,
    m: &mut Matcher,
    src: &[u8],
    (s, e): (usize, usize),
    repl: &[u8],
    pieces: &[Piece],
    out: &mut Vec<u8>,
) -> Result<(), Raise> {
    for piece in pieces {
        match *piece {
            Piece::Literal(a, b) => out.extend_from_slice(&repl[a..b]),
            Piece::Percent => out.push(b'%'),
            Piece::Whole => out.extend_from_slice(&src[s..e]),
            Piece::Capture(i) => match m.capture(i, s, e) {
                Ok(Cap::Text(a, b)) => out.extend_from_slice(&src[a..b]),
                Ok(Cap::Position(p)) => {
                    let _ = write!(out, "{p}");
                }
                Err(p) => return Err(failed(lua, &mut m.counter, Fail::Pattern(p))),
            },
            Piece::Invalid => return Err(message(lua, "invalid use of '%' in replacement string")),
        }
    }
    Ok(())
}
