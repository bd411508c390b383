//! The counted `string.find`/`match`/`gmatch`/`gsub`: the same results and
//! errors as Lua 5.4's C functions (hand-written cases and a differential
//! proptest against a state that keeps the C originals), and a meter that
//! stops a runaway pattern promptly.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use luaco_sandbox::{install_counted, Meter};
use mlua::{Lua, MultiValue, Value};
use proptest::prelude::*;

/// A meter that never stops.
struct Unlimited;

impl Meter for Unlimited {
    fn charge(&self, _: u64) -> mlua::Result<()> {
        Ok(())
    }
}

/// The error a [`Budget`] stops with; one instance, so the test can tell
/// it is the very error that comes back.
#[derive(Debug)]
struct OutOfSteps;

impl fmt::Display for OutOfSteps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("out of steps")
    }
}

impl std::error::Error for OutOfSteps {}

/// Stops once more than `limit` steps are charged, recording the running
/// total at each charge.
struct Budget {
    limit: u64,
    totals: RefCell<Vec<u64>>,
    error: Arc<OutOfSteps>,
}

impl Budget {
    fn new(limit: u64) -> Rc<Budget> {
        Rc::new(Budget {
            limit,
            totals: RefCell::new(Vec::new()),
            error: Arc::new(OutOfSteps),
        })
    }

    fn total(&self) -> u64 {
        self.totals.borrow().last().copied().unwrap_or(0)
    }
}

impl Meter for Budget {
    fn charge(&self, steps: u64) -> mlua::Result<()> {
        let total = self.total() + steps;
        self.totals.borrow_mut().push(total);
        if total > self.limit {
            return Err(mlua::Error::ExternalError(self.error.clone()));
        }
        Ok(())
    }
}

/// Lua helpers loaded in both states: results as comparable strings.
const HELPERS: &str = r##"
local function one(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  if t == "number" then return math.type(v) .. ":" .. tostring(v) end
  if t == "table" then return "table" end
  return tostring(v)
end
function ser(...)
  local out = {}
  for i = 1, select("#", ...) do out[i] = one((select(i, ...))) end
  return select("#", ...) .. "[" .. table.concat(out, ",") .. "]"
end
function do_call(name, ...)
  return ser(pcall(string[name], ...))
end
-- Called from Lua code, so that errors carry a position.
function do_direct(name, ...)
  return ser(pcall(function(...)
    local r = table.pack(string[name](...))
    return table.unpack(r, 1, r.n)
  end, ...))
end
function do_gmatch(...)
  local ok, it = pcall(string.gmatch, ...)
  if not ok then return "gmatch " .. ser(ok, it) end
  local out = {}
  for _ = 1, 1000 do
    local r = table.pack(pcall(it))
    out[#out + 1] = ser(table.unpack(r, 1, r.n))
    if not r[1] or r.n == 1 then break end
  end
  return table.concat(out, ";")
end
local TABLE = { a = "A", b = false, ["("] = 1, [1] = "one", [2] = 2.5, ["%"] = "%%", [""] = "E", aa = {} }
local META = setmetatable({ a = "A" }, { __index = function(t, k)
  if k == "]" then error("no ]") end
  if type(k) == "number" then return k * 2 end
  return nil
end })
function do_gsub_table(s, p, meta, ...)
  return ser(pcall(string.gsub, s, p, meta and META or TABLE, ...))
end
function do_gsub_function(s, p, mode, ...)
  local calls, k = {}, 0
  local function f(...)
    k = k + 1
    calls[#calls + 1] = ser(...)
    if mode == 1 and k == 3 then error("third") end
    if mode == 2 and k == 2 then error({}) end
    local m = k % 5
    if m == 0 then return nil
    elseif m == 1 then return (...) .. "!"
    elseif m == 2 then return false
    elseif m == 3 then return k
    else return select("#", ...), "ignored" end
  end
  return ser(pcall(string.gsub, s, p, f, ...)) .. "|" .. table.concat(calls, ";")
end
-- A hand-written case: the expression's values as text, or its error.
function case(code)
  local f = assert(load("local r = table.pack(" .. code .. ") return table.unpack(r, 1, r.n)", "=case"))
  local r = table.pack(pcall(f))
  local out = {}
  for i = 2, r.n do out[#out + 1] = tostring(r[i]) end
  return (r[1] and "" or "error: ") .. table.concat(out, " ")
end
"##;

fn reference() -> mlua::Result<Lua> {
    let lua = Lua::new();
    lua.load(HELPERS).set_name("=helpers").exec()?;
    Ok(lua)
}

fn counted(meter: Rc<dyn Meter>) -> mlua::Result<Lua> {
    let lua = Lua::new();
    install_counted(&lua, &lua.globals().get("string")?, meter)?;
    lua.load(HELPERS).set_name("=helpers").exec()?;
    Ok(lua)
}

/// Both states, for comparing.
struct Pair {
    c: Lua,
    rust: Lua,
}

impl Pair {
    fn new() -> Pair {
        Pair {
            c: reference().expect("reference state"),
            rust: counted(Rc::new(Unlimited)).expect("counted state"),
        }
    }

    /// Calls the global helper `f` with `args` in both states: the bytes
    /// of the string it returns.
    fn both(&self, f: &str, args: &[Value]) -> (Vec<u8>, Vec<u8>) {
        let run = |lua: &Lua| -> mlua::Result<Vec<u8>> {
            let args = args
                .iter()
                .map(|v| to_state(lua, v))
                .collect::<mlua::Result<MultiValue>>()?;
            let result: mlua::LuaString = lua.globals().get::<mlua::Function>(f)?.call(args)?;
            Ok(result.as_bytes().to_vec())
        };
        let show = |r: mlua::Result<Vec<u8>>| {
            r.unwrap_or_else(|e| format!("host error: {e}").into_bytes())
        };
        (show(run(&self.c)), show(run(&self.rust)))
    }

    fn case(&self, code: &str) -> String {
        let (c, rust) = self.both("case", &[text(code)]);
        let (c, rust) = (String::from_utf8_lossy(&c), String::from_utf8_lossy(&rust));
        assert_eq!(c, rust, "{code}");
        c.into_owned()
    }
}

/// A value of one state, rebuilt in another (strings and plain values).
fn to_state(lua: &Lua, v: &Value) -> mlua::Result<Value> {
    Ok(match v {
        Value::String(s) => Value::String(lua.create_string(s.as_bytes())?),
        other => other.clone(),
    })
}

thread_local! {
    static SCRATCH: Lua = Lua::new();
}

/// A string value for [`Pair::both`]'s arguments.
fn text(s: impl AsRef<[u8]>) -> Value {
    SCRATCH.with(|lua| Value::String(lua.create_string(s.as_ref()).expect("scratch string")))
}

/// Each case's result in both states must agree and be the expected one;
/// every wrong case is reported, not just the first.
fn check_cases(pair: &Pair, cases: &[(&str, &str)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(code, expected)| {
            let got = pair.case(code);
            (got != *expected)
                .then(|| format!("{code}\n  expected {expected:?}\n  got      {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn features_match_lua() {
    let pair = Pair::new();
    let cases: &[(&str, &str)] = &[
        // Classes, C locale.
        (r#"("x1 \t_Ab,"):gsub("%a", "A")"#, "A1 \t_AA, 3"),
        (r#"("x1 \t_Ab,"):gsub("%d", "D")"#, "xD \t_Ab, 1"),
        (r#"("a \t\n\v\f\rb"):gsub("%s", "S")"#, "aSSSSSSb 6"),
        (r#"("aB1!"):gsub("%w", "W")"#, "WWW! 3"),
        (r#"("aB1!"):gsub("%p", "P")"#, "aB1P 1"),
        (r#"("aB1!"):gsub("%l", "L")"#, "LB1! 1"),
        (r#"("aB1!"):gsub("%u", "U")"#, "aU1! 1"),
        (r#"("0fG"):gsub("%x", "X")"#, "XXG 2"),
        (r#"("a\1\127 "):gsub("%c", "C")"#, "aCC  2"),
        (r#"("a \1"):gsub("%g", "G")"#, "G \u{1} 1"),
        (r#"("a1 "):gsub("%A", "-")"#, "a-- 2"),
        (r#"("a\0b"):find("%z")"#, "2 2"),
        (r#"("\195\169"):find("%a")"#, "nil"),
        (r#"("a.b"):find("%.")"#, "2 2"),
        (r#"("a.b"):find(".", 2)"#, "2 2"),
        // Sets.
        (r#"("abc-"):find("[b-]+")"#, "2 2"),
        (r#"("a-c"):find("[a%-]+")"#, "1 2"),
        (r#"("x]y"):find("[]]")"#, "2 2"),
        (r#"("]]x"):find("[^]]")"#, "3 3"),
        (r#"("a5_"):find("[%d_]+")"#, "2 3"),
        (r#"("dcba"):match("[b-d]+")"#, "dcb"),
        (r#"("a-"):match("[a-]+")"#, "a-"),
        // Quantifiers.
        (r#"("aaab"):match("a*")"#, "aaa"),
        (r#"("aaab"):match("a-b")"#, "aaab"),
        (r#"("<a><b>"):match("<(.-)>")"#, "a"),
        (r#"("<a><b>"):match("<(.*)>")"#, "a><b"),
        (r#"("b"):match("a?b")"#, "b"),
        (r#"("ab"):match("a+b")"#, "ab"),
        (r#"("b"):match("a+b")"#, "nil"),
        // Anchors.
        (r#"("aab"):find("^b")"#, "nil"),
        (r#"("aab"):find("b$")"#, "3 3"),
        (r#"("a$b"):find("a$b")"#, "1 3"),
        (r#"("a^b"):find("a^b")"#, "1 3"),
        (r#"("ab"):gsub("^a", "x")"#, "xb 1"),
        (r#"("aa"):gsub("^a", "x")"#, "xa 1"),
        // Captures.
        (r#"("key = val"):match("(%w+) = (%w+)")"#, "key val"),
        (r#"("hello"):find("(l)(l)")"#, "3 4 l l"),
        (r#"("hello"):match("()ll()")"#, "3 5"),
        (r#"("hello"):gsub("()l", "%1")"#, "he34o 2"),
        (r#"("abab"):find("(ab)%1")"#, "1 4 ab"),
        (r#"("()x"):find("()%1")"#, "nil"),
        (r#"("a(b(c)d)e"):match("%b()")"#, "(b(c)d)"),
        (r#"("aXa"):match("%baa")"#, "aXa"),
        (r#"("THE (quick) fox"):gsub("%f[%a]%a+", "W")"#, "W (W) W 3"),
        (r#"("ab"):find("%f[%z]")"#, "3 2"),
        // init.
        (r#"("abc"):find("b", -1)"#, "nil"),
        (r#"("abc"):find("b", -2)"#, "2 2"),
        (r#"("abc"):find("b", 0)"#, "2 2"),
        (r#"("abc"):find("b", -100)"#, "2 2"),
        (r#"("abc"):find("", 4)"#, "4 3"),
        (r#"("abc"):find("", 5)"#, "nil"),
        (r#"("abc"):find("c", "3")"#, "3 3"),
        (r#"("abc"):find("c", 3.0)"#, "3 3"),
        (r#"("abc"):find("b", math.mininteger)"#, "2 2"),
        // Plain find and its fast path.
        (r#"("a.b"):find(".", 1, true)"#, "2 2"),
        (r#"("a+b"):find("+", 1, 1)"#, "2 2"),
        (r#"("a]b"):find("]")"#, "2 2"),
        (r#"("abc"):find("", 2, true)"#, "2 1"),
        (r#"("abcabc"):find("ca", 1, true)"#, "3 4"),
        (r#"string.find(12345, 3)"#, "3 3"),
        (r#"string.find(1.5, ".", 1, true)"#, "2 2"),
        (r#"string.match(2^63, "e(.*)")"#, "+18"),
        // gmatch.
        (
            r#"(function() local t = {} for k, v in ("a=1, b=2"):gmatch("(%w+)=(%w+)") do t[#t+1] = k..v end return table.concat(t, ",") end)()"#,
            "a1,b2",
        ),
        (
            r#"(function() local t = {} for w in ("abcabc"):gmatch("b", 3) do t[#t+1] = w end return #t end)()"#,
            "1",
        ),
        (
            r#"(function() local t = {} for w in ("abc"):gmatch("x*") do t[#t+1] = w end return #t end)()"#,
            "4",
        ),
        (
            r#"(function() local t = {} for a, b in ("ab"):gmatch("()(.?)") do t[#t+1] = a..b end return table.concat(t, ",") end)()"#,
            // The empty match at 3 ends where "b" did: skipped.
            "1a,2b",
        ),
        (r##"select("#", ("a"):gmatch("b")())"##, "0"),
        // Three matches, then a position where the recursion is too deep:
        // the error comes at the fourth step, and again at the fifth.
        (
            r#"(function() local it = ("bbb" .. ("a"):rep(300)):gmatch(("a?"):rep(250) .. "b") local t = {} for i = 1, 5 do local ok, v = pcall(it) t[i] = tostring(ok) .. ":" .. tostring(v) end return table.concat(t, ",") end)()"#,
            "true:b,true:b,true:b,false:pattern too complex,false:pattern too complex",
        ),
        (
            r#"(function() local t = {} for k, v in ("a1b2c3"):gmatch("(%a)(%d)") do t[#t+1] = k .. "=" .. v end return table.concat(t, ",") end)()"#,
            "a=1,b=2,c=3",
        ),
        (r#"("^a"):gmatch("^a")()"#, "^a"),
        // gsub.
        (r#"("hello world"):gsub("o", "0", 1)"#, "hell0 world 1"),
        (r#"("hello world"):gsub("o", "0", -1)"#, "hello world 0"),
        (r#"("hello"):gsub("", "-")"#, "-h-e-l-l-o- 6"),
        (r#"("abc"):gsub("%w", "%0%0")"#, "aabbcc 3"),
        (r#"("abc"):gsub("(b)", "[%1%%]")"#, "a[b%]c 1"),
        (r#"("abc"):gsub("b", "%1")"#, "abc 1"),
        (r#"("abc"):gsub("b", 5)"#, "a5c 1"),
        (r#"string.gsub(123, 2, 9.5)"#, "19.53 1"),
        (r#"("a b"):gsub("%w", { a = "1", b = false })"#, "1 b 2"),
        (r#"("ab"):gsub("()", { [1] = "x", [3] = 2.0 })"#, "xab2.0 3"),
        (
            r#"("ab"):gsub(".", setmetatable({}, { __index = function(_, k) return k:upper() end }))"#,
            "AB 2",
        ),
        (
            r#"("a b"):gsub("(%w)", function(c) if c == "a" then return nil end return c .. c end)"#,
            "a bb 2",
        ),
        (
            r##"("ab"):gsub("(a)(b)", function(...) return select("#", ...) end)"##,
            "2 1",
        ),
        (r#"("abc"):gsub("x*", "-")"#, "-a-b-c- 4"),
        (r#"("abc"):gsub("b*", "-")"#, "-a-c- 3"),
        // Argument coercion and counts.
        (r##"select("#", ("abc"):find("x"))"##, "1"),
        (r##"select("#", ("abc"):match("x"))"##, "1"),
        (
            r#"(" 3 "):rep(1), ("abcdef"):find("d", " 0x4 ")"#,
            " 3  4 4",
        ),
    ];
    check_cases(&pair, cases);
}

#[test]
fn errors_match_lua() {
    let pair = Pair::new();
    let cases: &[(&str, &str)] = &[
        (r#"("abc"):find("%")"#, "error: case:1: malformed pattern (ends with '%')"),
        (r#"("abc"):find("[a")"#, "error: case:1: malformed pattern (missing ']')"),
        (r#"("abc"):find("[a%")"#, "error: case:1: malformed pattern (missing ']')"),
        (r#"("abc"):find("[]")"#, "error: case:1: malformed pattern (missing ']')"),
        (r#"("abc"):find("%f")"#, "error: case:1: missing '[' after '%f' in pattern"),
        (r#"("abc"):find("%fa")"#, "error: case:1: missing '[' after '%f' in pattern"),
        (r#"("abc"):find("(a)%2")"#, "error: case:1: invalid capture index %2"),
        (r#"("abc"):find("%0")"#, "error: case:1: invalid capture index %0"),
        (r#"("abc"):find("(a%1)")"#, "error: case:1: invalid capture index %1"),
        (r#"("abc"):match("a)")"#, "error: case:1: invalid pattern capture"),
        // No special character: a plain search, so no error.
        (r#"("abc"):find("a)")"#, "nil"),
        (r#"("abc"):match("(a")"#, "error: case:1: unfinished capture"),
        (r#"("abc"):find("%b")"#, "error: case:1: malformed pattern (missing arguments to '%b')"),
        (r#"("abc"):find("%ba")"#, "error: case:1: malformed pattern (missing arguments to '%b')"),
        (r#"("abc"):find(("("):rep(33))"#, "error: case:1: too many captures"),
        (r#"("a"):rep(300):find(("a?"):rep(300))"#, "error: case:1: pattern too complex"),
        (r#"("abc"):gsub("a", { a = {} })"#, "error: case:1: invalid replacement value (a table)"),
        (r#"("abc"):gsub("a", function() return true end)"#, "error: case:1: invalid replacement value (a boolean)"),
        (r#"("abc"):gsub("a", "%")"#, "error: case:1: invalid use of '%' in replacement string"),
        (r#"("abc"):gsub("a", "%x")"#, "error: case:1: invalid use of '%' in replacement string"),
        (r#"("abc"):gsub("a", "%2")"#, "error: case:1: invalid capture index %2"),
        (r#"("abc"):gsub("(a", "%1")"#, "error: case:1: unfinished capture"),
        (r#"("abc"):gsub("(a", "x")"#, "xbc 1"),
        (r#"("abc"):gmatch("(a")()"#, "error: case:1: unfinished capture"),
        (r#"string.find(nil, "a")"#, "error: case:1: bad argument #1 to 'find' (string expected, got nil)"),
        (r#"string.find()"#, "error: case:1: bad argument #1 to 'find' (string expected, got no value)"),
        (r#"string.match("a")"#, "error: case:1: bad argument #2 to 'match' (string expected, got no value)"),
        (r#"("a"):find({})"#, "error: case:1: bad argument #1 to 'find' (string expected, got table)"),
        (
            r#"("a"):find(setmetatable({}, { __name = "Thing" }))"#,
            "error: case:1: bad argument #1 to 'find' (string expected, got Thing)",
        ),
        (r#"string.find("a", "a", 1.5)"#, "error: case:1: bad argument #3 to 'find' (number has no integer representation)"),
        (r#"string.find("a", "a", "x")"#, "error: case:1: bad argument #3 to 'find' (number expected, got string)"),
        (r#"string.gmatch("a", "a", {})"#, "error: case:1: bad argument #3 to 'gmatch' (number expected, got table)"),
        (r#"string.gsub("a", "a")"#, "error: case:1: bad argument #3 to 'gsub' (string/function/table expected, got no value)"),
        (r#"string.gsub("a", "a", true, "n")"#, "error: case:1: bad argument #4 to 'gsub' (number expected, got string)"),
        (r#"("a"):gsub("a", true)"#, "error: case:1: bad argument #2 to 'gsub' (string/function/table expected, got boolean)"),
        (
            r#"setmetatable({}, { __index = string }):find("a")"#,
            "error: case:1: calling 'find' on bad self (string expected, got table)",
        ),
        (r#"(function() local f = string.find local r = f() return r end)()"#, "error: case:1: bad argument #1 to 'f' (string expected, got no value)"),
        (
            r#"coroutine.wrap(function() local r = ("a"):find("[") return r end)()"#,
            "error: case:1: case:1: malformed pattern (missing ']')",
        ),
        (r#"pcall(string.find)"#, "false bad argument #1 to 'string.find' (string expected, got no value)"),
        (r#"pcall(string.find, "a", "[")"#, "false malformed pattern (missing ']')"),
        (r#"("x"):gsub("x", function() error("boom") end)"#, "error: case:1: boom"),
        (r#"("x"):gsub("x", setmetatable({}, { __index = function() error("idx", 0) end }))"#, "error: idx"),
    ];
    check_cases(&pair, cases);
}

/// The one place the wrappers show: a tail call to a Lua function
/// replaces its caller's frame, where a C function's would not, so the
/// caller's line and the name it used are lost.
#[test]
fn a_tail_call_loses_the_position() -> mlua::Result<()> {
    let lua = counted(Rc::new(Unlimited))?;
    let messages: (String, String) = lua
        .load(
            r#"
            local _, pattern = pcall(function() return ("a"):find("[") end)
            local _, argument = pcall(function() return ("a"):find({}) end)
            return pattern, argument
        "#,
        )
        .eval()?;
    assert_eq!(
        (messages.0.as_str(), messages.1.as_str()),
        (
            "malformed pattern (missing ']')",
            "bad argument #2 to 'string.find' (string expected, got table)"
        )
    );
    Ok(())
}

#[test]
fn replacement_errors_keep_their_value() -> mlua::Result<()> {
    let lua = counted(Rc::new(Unlimited))?;
    let same: bool = lua
        .load(
            r#"
            local e = {}
            local ok, got = pcall(string.gsub, "x", "x", function() error(e) end)
            local ok2, got2 = pcall(string.gsub, "x", "x", setmetatable({}, { __index = function() error(e) end }))
            return not ok and got == e and not ok2 and got2 == e
        "#,
        )
        .eval()?;
    assert!(same);
    Ok(())
}

/// Pieces patterns are made of, malformed ones included.
const PIECES: &[&str] = &[
    "a", "b", "1", " ", ".", "%a", "%d", "%s", "%w", "%p", "%A", "%S", "%l", "%u", "%c", "%x",
    "%g", "%z", "%.", "%%", "%(", "%]", "[ab]", "[^a]", "[a-c]", "[%a]", "[]]", "[^]]", "[%]]",
    "[a-]", "*", "+", "-", "?", "^", "$", "(", ")", "()", "%1", "%2", "%0", "%b()", "%b[]", "%baa",
    "%f[%w]", "%f[^a]", "%f[%z]", "%", "[", "]", "%f", "%b", "%ba", "[a", "[%", "[^", "\0",
    "\u{e9}", "\n",
];

fn subject() -> impl Strategy<Value = Vec<u8>> {
    let alphabet: &[u8] = b"ab()%[]. 1\n\0\xc3\xa9";
    prop_oneof![
        6 => proptest::collection::vec(proptest::sample::select(alphabet), 0..12),
        1 => proptest::collection::vec(proptest::sample::select(alphabet), 12..40),
    ]
}

fn pattern() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(PIECES).prop_map(|p| p.as_bytes().to_vec()),
            1 => proptest::sample::select(&b"%[]()^$*+-?.bf019a"[..]).prop_map(|b| vec![b]),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat())
}

fn replacement() -> impl Strategy<Value = Vec<u8>> {
    const PIECES: &[&str] = &["x", "%0", "%1", "%2", "%%", "%", "%a", "%9", "", "-"];
    proptest::collection::vec(proptest::sample::select(PIECES), 0..4)
        .prop_map(|parts| parts.concat().into_bytes())
}

/// An optional integer argument: absent, nil, a number, or something
/// that Lua turns into one or refuses.
fn integer() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        4 => Just(None),
        2 => Just(Some(Value::Nil)),
        8 => (-8i64..16).prop_map(|i| Some(Value::Integer(i))),
        1 => prop_oneof![Just(2.0), Just(1.5), Just(-0.0), Just(1e300)].prop_map(|n| Some(Value::Number(n))),
        1 => prop_oneof![Just("3"), Just(" 0x2 "), Just("2.5"), Just("x")].prop_map(|s| Some(text(s))),
        1 => Just(Some(Value::Boolean(true))),
    ]
}

/// A subject or pattern argument: mostly text, sometimes a number (which
/// Lua turns into text) or something it refuses.
fn stringish(text_of: impl Strategy<Value = Vec<u8>>) -> impl Strategy<Value = Value> {
    prop_oneof![
        30 => text_of.prop_map(text),
        1 => (-20i64..200).prop_map(Value::Integer),
        1 => prop_oneof![Just(1.5), Just(-0.0), Just(1e15), Just(2f64.powi(63))].prop_map(Value::Number),
        1 => Just(Value::Boolean(false)),
        1 => Just(Value::Nil),
    ]
}

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 2000;
    }
    config
}

/// Arguments up to the last one present.
fn arguments(fixed: Vec<Value>, optional: Vec<Option<Value>>) -> Vec<Value> {
    let last = optional
        .iter()
        .rposition(Option::is_some)
        .map_or(0, |i| i + 1);
    fixed
        .into_iter()
        .chain(
            optional
                .into_iter()
                .take(last)
                .map(|v| v.unwrap_or(Value::Nil)),
        )
        .collect()
}

thread_local! {
    static PAIR: Pair = Pair::new();
}

fn compare(f: &str, args: &[Value]) -> Result<(), TestCaseError> {
    PAIR.with(|pair| {
        let (c, rust) = pair.both(f, args);
        let (c, rust) = (
            c.escape_ascii().to_string(),
            rust.escape_ascii().to_string(),
        );
        prop_assert!(!c.starts_with("host error"), "{}", c);
        prop_assert_eq!(c, rust, "{}{:?}", f, args);
        Ok(())
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn find_and_match_agree(s in stringish(subject()), p in stringish(pattern()), init in integer(),
                            plain in prop_oneof![Just(None), Just(Some(Value::Boolean(true))),
                                                 Just(Some(Value::Boolean(false))), Just(Some(Value::Integer(1)))],
                            direct in any::<bool>()) {
        let how = if direct { "do_direct" } else { "do_call" };
        let find = arguments(vec![text("find"), s.clone(), p.clone()], vec![init.clone(), plain]);
        compare(how, &find)?;
        let matched = arguments(vec![text("match"), s, p], vec![init]);
        compare(how, &matched)?;
    }

    #[test]
    fn gmatch_agrees(s in stringish(subject()), p in stringish(pattern()), init in integer()) {
        compare("do_gmatch", &arguments(vec![s, p], vec![init]))?;
    }

    #[test]
    fn gsub_agrees(s in stringish(subject()), p in stringish(pattern()), r in stringish(replacement()),
                   n in integer(), meta in any::<bool>(), mode in 0i64..3, direct in any::<bool>()) {
        let how = if direct { "do_direct" } else { "do_call" };
        compare(how, &arguments(vec![text("gsub"), s.clone(), p.clone(), r], vec![n.clone()]))?;
        compare("do_gsub_table", &arguments(vec![s.clone(), p.clone(), Value::Boolean(meta)], vec![n.clone()]))?;
        compare("do_gsub_function", &arguments(vec![s, p, Value::Integer(mode)], vec![n]))?;
    }
}

/// The meter's error inside what mlua made of it on the way out.
fn meter_error(error: &mlua::Error) -> Option<&OutOfSteps> {
    match error {
        mlua::Error::CallbackError { cause, .. } => meter_error(cause),
        mlua::Error::WithContext { cause, .. } => meter_error(cause),
        mlua::Error::ExternalError(inner) => inner.downcast_ref::<OutOfSteps>(),
        _ => None,
    }
}

/// Runs `code` under a meter that stops after ten million steps, and
/// checks that it stops promptly, with the meter's own error.
fn stops(code: &str) {
    let budget = Budget::new(10_000_000);
    let lua = counted(budget.clone()).expect("counted state");
    let started = Instant::now();
    let result = lua.load(code).exec();
    let elapsed = started.elapsed();
    let error = result.expect_err(code);
    assert!(elapsed < Duration::from_secs(10), "{code}: {elapsed:?}");
    let found = meter_error(&error).is_some_and(|ours| std::ptr::eq(ours, &*budget.error));
    assert!(found, "{code}: not the meter's error: {error:?}");
    let totals = budget.totals.borrow();
    assert!(
        totals.windows(2).all(|w| w[0] < w[1]),
        "{code}: totals must increase"
    );
    assert!(
        budget.total() > 10_000_000 && budget.total() < 10_100_000,
        "{code}: {}",
        budget.total()
    );
}

#[test]
fn the_meter_stops_catastrophic_backtracking() {
    stops(r#"string.find(string.rep("a", 30), string.rep("a*", 30) .. "b")"#);
    stops(r#"string.match(string.rep("a", 30), string.rep("a*", 30) .. "b")"#);
    stops(r#"for _ in string.gmatch(string.rep("a", 30), string.rep("a*", 30) .. "b") do end"#);
    stops(r#"string.gsub(string.rep("a", 30), string.rep("a*", 30) .. "b", function() end)"#);
    stops(r#"string.gsub(string.rep("a", 30), string.rep("a*", 30) .. "b", "x")"#);
    // A plain search is bounded too.
    stops(r#"local s = ("a"):rep(1e6) for _ = 1, 100 do s:find("ab", 1, true) end"#);
    stops(r#"local s = ("(("):rep(3e3) for _ = 1, 10 do s:find("%b()") end"#);
}

#[test]
fn the_meter_is_charged_at_the_end_of_each_call() -> mlua::Result<()> {
    let budget = Budget::new(u64::MAX);
    let lua = counted(budget.clone())?;
    lua.load(r#"string.find("abc", "b")"#).exec()?;
    let after_one = budget.totals.borrow().len();
    assert!(after_one >= 1 && budget.total() > 0 && budget.total() < 1024);
    lua.load(r#"string.find("abc", "b")"#).exec()?;
    assert_eq!(budget.totals.borrow().len(), after_one + 1);
    Ok(())
}

#[test]
fn an_error_is_a_plain_string_in_lua() -> mlua::Result<()> {
    let lua = counted(Rc::new(Unlimited))?;
    let (kind, message): (String, String) = lua
        .load(r#"local ok, e = pcall(string.find, "a", "%") return type(e), e"#)
        .eval()?;
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("string", "malformed pattern (ends with '%')")
    );
    Ok(())
}

/// Times C against the counted functions on ordinary work; run with
/// `cargo test --release -p luaco-sandbox --test pattern -- --ignored --nocapture speed`.
#[test]
#[ignore]
fn speed() -> mlua::Result<()> {
    let bench = r#"
        local digits = {}
        for i = 1, 1e6 // 8 do digits[i] = tostring(i % 9973) .. ", " end
        local numbers = table.concat(digits):sub(1, 1e6)
        local words = {}
        for i = 1, 2e5 do words[i] = ("word%d"):format(i % 97) end
        local text = table.concat(words, "  \t ")
        local hay = ("abcdefghij"):rep(1e5) .. "needle"
        local short = {}
        for i = 1, 1000 do short[i] = ("key%d = value%d"):format(i, i) end
        local function time(f)
          local best = math.huge
          for _ = 1, 5 do
            local t = os.clock() f() best = math.min(best, os.clock() - t)
          end
          return best
        end
        return {
          gmatch = time(function() local n = 0 for d in numbers:gmatch("%d+") do n = n + 1 end end),
          gsub = time(function() text:gsub("%s+", " ") end),
          plain = time(function() for _ = 1, 20 do hay:find("needle", 1, true) end end),
          literal = time(function() for _ = 1, 20 do hay:find("needle") end end),
          match = time(function() for _ = 1, 20 do for i = 1, #short do short[i]:match("^(%w+)%s*=%s*(%w+)$") end end end),
          find_short = time(function() for _ = 1, 20 do for i = 1, #short do short[i]:find("=", 1, true) end end end),
          gsub_fn = time(function() text:gsub("%a+", function(w) return w end) end),
          gsub_table = time(function() text:gsub("%a+", { word = "w" }) end),
          find_class = time(function() text:find("%d%d%d%d") end),
        }
    "#;
    let (c_lua, rust_lua) = (reference()?, counted(Rc::new(Unlimited))?);
    let c: mlua::Table = c_lua.load(bench).eval()?;
    let rust: mlua::Table = rust_lua.load(bench).eval()?;
    for name in [
        "gmatch",
        "gsub",
        "plain",
        "literal",
        "match",
        "find_short",
        "gsub_fn",
        "gsub_table",
        "find_class",
    ] {
        let (a, b): (f64, f64) = (c.get(name)?, rust.get(name)?);
        println!(
            "{name:12} C {:8.3} ms   counted {:8.3} ms   ratio {:.2}",
            a * 1e3,
            b * 1e3,
            b / a
        );
    }
    Ok(())
}
