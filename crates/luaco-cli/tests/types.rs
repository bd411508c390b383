//! `luaco types`: the LuaLS definitions cover every global and method the
//! runtime installs (the list is read from a live runtime, so it cannot
//! drift), and every `---@` annotation line is well formed.

use std::collections::BTreeSet;
use std::process::Command;

use luaco::{Config, Runtime, ScriptContext, ScriptValue};

/// Every name scripts can reach, read from the runtime: globals of the API
/// (`sleep`), members of its tables (`fs.read`), and methods of the
/// objects it hands out (`Promise:next`, `Channel:send`, …), each as
/// `global`, `table.member` or `Class:method`.
fn installed_names() -> BTreeSet<String> {
    let rt = Runtime::new(Config::default()).expect("runtime");
    let p = rt
        .create_async(
            r#"
        local out = {}
        local function methods(class, index)
          for k, v in pairs(index) do
            if type(k) == "string" and type(v) == "function" and k:sub(1, 1) ~= "_" then
              out[#out + 1] = class .. ":" .. k
            end
          end
        end
        for k, v in pairs(require("luaco")) do
          if type(v) == "table" then
            for member in pairs(v) do out[#out + 1] = k .. "." .. member end
          else
            out[#out + 1] = k
          end
        end
        -- Promise methods sit behind an __index function, in its upvalue.
        local index = debug.getmetatable(sleep(0)).__index
        for i = 1, 10 do
          local name, value = debug.getupvalue(index, i)
          if name == "methods" then methods("Promise", value) end
        end
        methods("Timer", debug.getmetatable(set_timeout(function() end, 0)).__index)
        methods("Semaphore", debug.getmetatable(sync.semaphore(1)).__index)
        methods("Channel", debug.getmetatable(sync.channel(1)).__index)
        local sub = events.on("x", function() end)
        methods("Subscription", debug.getmetatable(sub).__index)
        sub:off()
        return out
    "#,
            ScriptContext::new("names"),
        )
        .expect("spawn");
    let ScriptValue::Array(names) = rt.block_on(&p).expect("names") else {
        panic!("no list");
    };
    names
        .into_iter()
        .map(|n| match n {
            ScriptValue::String(s) => s,
            other => panic!("{other:?}"),
        })
        .collect()
}

fn definitions() -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("luaco.d.lua");
    let status = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .args(["types", "--out"])
        .arg(&out)
        .status()
        .expect("luaco types");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("definitions");
    // A meta file is Lua: it must compile.
    let check = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("check")
        .arg(&out)
        .output()
        .expect("luaco check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Without --out, the same text on stdout.
    let stdout = Command::new(env!("CARGO_BIN_EXE_luaco"))
        .arg("types")
        .output()
        .expect("luaco types");
    assert_eq!(String::from_utf8_lossy(&stdout.stdout), text);
    text
}

#[test]
fn every_installed_name_is_defined() {
    let text = definitions();
    assert!(text.starts_with("---@meta"), "not a meta file");
    let names = installed_names();
    assert!(names.len() > 60, "{names:?}");
    let mut missing = Vec::new();
    for name in &names {
        let defined = if let Some((class, method)) = name.split_once(':') {
            // Methods: `function Class:method(` on the local of that class,
            // or a field of function type (`then` is a Lua keyword).
            text.contains(&format!("function {class}:{method}("))
                || text.contains(&format!("---@field {method} fun(self: luaco.{class}"))
        } else if let Some((table, member)) = name.split_once('.') {
            text.contains(&format!("function {table}.{member}("))
                || text.contains(&format!("---@field {member} "))
                    && text.contains(&format!("\n{table} = {{}}"))
        } else {
            text.contains(&format!("function {name}("))
                || text.contains(&format!("\n{name} = {{}}"))
        };
        if !defined {
            missing.push(name.clone());
        }
    }
    assert!(missing.is_empty(), "not in `luaco types`: {missing:?}");
}

/// A LuaLS type expression, loosely: names, generics, unions, optionals,
/// arrays, string literals, `fun(...)` and `table<K, V>`.
fn is_type(t: &str) -> bool {
    !t.is_empty()
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || " _.<>,|?[]\"():".contains(c))
        && t.matches('<').count() == t.matches('>').count()
        && t.matches('(').count() == t.matches(')').count()
        && t.matches('"').count() % 2 == 0
}

fn is_name(n: &str) -> bool {
    let n = n.strip_suffix('?').unwrap_or(n);
    n == "..."
        || (!n.is_empty()
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            && !n.starts_with(|c: char| c.is_ascii_digit()))
}

/// The first word of `rest`, and the type after it (up to a `#` comment).
fn name_and_type(rest: &str) -> Option<(&str, &str)> {
    let rest = rest.split(" #").next().unwrap_or(rest).trim();
    let (name, ty) = rest.split_once(' ')?;
    Some((name, ty.trim()))
}

#[test]
fn every_annotation_is_well_formed() {
    let text = definitions();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some(annotation) = line.strip_prefix("---@") else {
            continue;
        };
        let (tag, rest) = annotation.split_once(' ').unwrap_or((annotation, ""));
        let ok = match tag {
            "meta" => true,
            "async" => rest.is_empty(),
            "class" => {
                let name = rest.split(':').next().unwrap_or("").trim();
                let base = name.split('<').next().unwrap_or("");
                is_name(base) && is_type(name)
            }
            "field" | "param" => name_and_type(rest).is_some_and(|(n, t)| is_name(n) && is_type(t)),
            "return" => {
                let t = rest.split(" #").next().unwrap_or(rest).trim();
                is_type(t)
            }
            "generic" => rest.split(',').all(|g| {
                let g = g.trim();
                let name = g.split(':').next().unwrap_or("").trim();
                is_name(name)
            }),
            _ => false,
        };
        if !ok {
            bad.push(format!("line {}: {line}", i + 1));
        }
    }
    assert!(bad.is_empty(), "malformed annotations:\n{}", bad.join("\n"));
}
