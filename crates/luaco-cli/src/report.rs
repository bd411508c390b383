//! Reports on stderr: syntax errors that point at the line (`luaco check
//! FILE...` and `luaco run`), and the coloured label of every report.

use std::process::ExitCode;

use luaco::mlua;

/// The text of a syntax error from Lua (`chunk:line: message near 'tok'`)
/// followed by the offending line of `source` and a caret under the token
/// Lua names, when it can be found on that line. Sources are bytes: the
/// caret's column counts characters on a UTF-8 line, bytes on any other
/// (shown with one replacement character per stray byte, so it lines up).
pub(crate) fn syntax_report(error: &mlua::Error, source: &[u8]) -> String {
    let message = match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    match locate(&message, source) {
        Some((line_no, line, column)) => {
            let gutter = line_no.to_string();
            let pad = " ".repeat(gutter.len());
            let (shown, column) = match std::str::from_utf8(line) {
                Ok(text) => (text.to_owned(), text[..column].chars().count()),
                Err(_) => (String::from_utf8_lossy(line).into_owned(), column),
            };
            let caret = format!("{}^", " ".repeat(column));
            format!("{message}\n {gutter} | {shown}\n {pad} | {caret}")
        }
        None => message,
    }
}

/// The line number, the line's bytes and the caret's byte offset in it.
fn locate<'a>(message: &str, source: &'a [u8]) -> Option<(usize, &'a [u8], usize)> {
    // `chunk:LINE: message`: the line number follows the first ':' that
    // is followed by digits and another ':'.
    let line_no = message.split(':').find_map(|part| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<usize>().ok())
            .flatten()
    })?;
    let lines: Vec<&[u8]> = source
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let near = message.rsplit_once(" near ").map(|(_, tok)| tok.trim());
    if near == Some("<eof>") {
        // The end of the file: after the last line that has anything on it.
        let (i, last) = lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| !l.iter().all(u8::is_ascii_whitespace))?;
        let end = std::str::from_utf8(last).map_or(last.len(), str::len);
        return Some((i + 1, last, end));
    }
    let line = *lines.get(line_no.checked_sub(1)?)?;
    let token = near
        .and_then(|t| t.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or("")
        .as_bytes();
    let indent = line.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if token.is_empty() {
        return Some((line_no, line, indent));
    }
    // Lua gives no column. The token it names may occur more than once on
    // the line: the right one is the first where the source cut just
    // after it fails the same way (cut before it, Lua would meet <eof>).
    let line_start = source_offset(source, line_no)?;
    let lua = mlua::Lua::new();
    let occurrences: Vec<usize> = (0..line.len().saturating_sub(token.len() - 1))
        .filter(|&i| line[i..].starts_with(token))
        .collect();
    let wanted = format!(" near '{}'", String::from_utf8_lossy(token));
    // Each try compiles the source up to there: a few tries only, so a
    // long minified line stays cheap (past them, the first occurrence).
    let column = occurrences
        .iter()
        .copied()
        .take(MAX_TRIES)
        .find(|&i| {
            let cut = &source[..line_start + i + token.len()];
            match lua
                .load(cut)
                .set_name("=cut")
                .set_mode(mlua::chunk::ChunkMode::Text)
                .into_function()
            {
                Err(mlua::Error::SyntaxError { message, .. }) => message.ends_with(&wanted),
                _ => false,
            }
        })
        .or_else(|| occurrences.first().copied())
        .unwrap_or(indent);
    Some((line_no, line, column))
}

/// How many occurrences of the token a caret search compiles the source for.
const MAX_TRIES: usize = 16;

/// The byte offset where line `line_no` (from 1) of `source` starts.
fn source_offset(source: &[u8], line_no: usize) -> Option<usize> {
    if line_no == 1 {
        return Some(0);
    }
    source
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(line_no - 2)
        .map(|(i, _)| i + 1)
}

/// `what` for the start of a report on stderr: bold red on a terminal,
/// plain when stderr is not one or `NO_COLOR` is set (no-color.org).
pub(crate) fn label(what: &str) -> String {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    match colour {
        true => format!("\x1b[1;31m{what}\x1b[0m"),
        false => what.to_owned(),
    }
}

/// A first line starting with `#` (a shebang) is not Lua: blank it, keeping
/// the line numbers of the rest.
pub(crate) fn skip_shebang(source: &[u8]) -> &[u8] {
    if source.starts_with(b"#") {
        match source.iter().position(|&b| b == b'\n') {
            Some(i) => &source[i..],
            None => b"",
        }
    } else {
        source
    }
}

/// The precompiled chunk in `source` (after [`skip_shebang`]), if it is
/// one: Lua's signature, `ESC Lua`, at the start or just after the
/// shebang line, as `lua5.4` looks for it.
pub(crate) fn binary_chunk(source: &[u8]) -> Option<&[u8]> {
    let rest = source.strip_prefix(b"\n").unwrap_or(source);
    rest.starts_with(b"\x1bLua").then_some(rest)
}

/// `luaco check FILE...`: compiles each file without running it. Prints
/// `FILE: ok` or the error with its line; exit 1 if any failed, 2 if a
/// file cannot be read.
pub(crate) fn check(files: &[String]) -> ExitCode {
    if files.is_empty() {
        eprintln!("luaco: check needs at least one FILE");
        eprintln!("usage: luaco check FILE...");
        return ExitCode::from(2);
    }
    let lua = mlua::Lua::new();
    let mut failed = false;
    let mut unreadable = false;
    for file in files {
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("luaco: cannot read {file}: {e}");
                unreadable = true;
                continue;
            }
        };
        let source = skip_shebang(&bytes);
        let compiled = lua
            .load(source)
            .set_name(format!("@{file}"))
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function();
        match compiled {
            Ok(_) => println!("{file}: ok"),
            Err(e) => {
                eprintln!("{}: {}", label("error"), syntax_report(&e, source));
                failed = true;
            }
        }
    }
    match (unreadable, failed) {
        (true, _) => ExitCode::from(2),
        (false, true) => ExitCode::from(1),
        (false, false) => ExitCode::SUCCESS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(source: &str) -> String {
        let lua = mlua::Lua::new();
        match lua.load(source).set_name("@t.lua").into_function() {
            Ok(_) => String::new(),
            Err(e) => syntax_report(&e, source.as_bytes()),
        }
    }

    #[test]
    fn the_caret_sits_under_the_token_lua_names() {
        let r = report("local a = 1\nlocal x = = 2\n");
        assert_eq!(
            r,
            "t.lua:2: unexpected symbol near '='\n 2 | local x = = 2\n   |           ^"
        );
    }

    #[test]
    fn an_unclosed_block_points_at_the_end_of_the_file() {
        let r = report("local function f()\n  return 1\n\n");
        assert!(
            r.contains(": 'end' expected (to close 'function' at line 1)"),
            "{r}"
        );
        assert!(r.ends_with(" 2 |   return 1\n   |           ^"), "{r}");
    }

    #[test]
    fn shebangs_keep_line_numbers() {
        assert_eq!(
            skip_shebang(b"#!/usr/bin/env luaco\nprint(1)"),
            b"\nprint(1)"
        );
        assert_eq!(skip_shebang(b"print(1)"), b"print(1)");
    }

    #[test]
    fn the_caret_counts_characters_on_utf8_lines_and_bytes_on_others() {
        // "é" is two bytes in UTF-8 and one in Latin-1: the caret sits
        // under the second '=' either way.
        let r = report("local s = 'é' = 2\n");
        assert!(r.ends_with("\n   |               ^"), "{r}");
        let lua = mlua::Lua::new();
        let latin = b"local s = '\xe9' = 2\n";
        let e = lua
            .load(&latin[..])
            .set_name("@t.lua")
            .into_function()
            .expect_err("a syntax error");
        let r = syntax_report(&e, latin);
        assert!(r.contains(" 1 | local s = '\u{fffd}' = 2\n"), "{r}");
        assert!(r.ends_with("\n   |               ^"), "{r}");
    }
}
