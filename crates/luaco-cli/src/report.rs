//! Reports on stderr: syntax errors that point at the line (`luaco check
//! FILE...` and `luaco run`), and the coloured label of every report.

use std::process::ExitCode;

use luaco::mlua;

/// The text of a syntax error from Lua (`chunk:line: message near 'tok'`)
/// followed by the offending line of `source` and a caret under the token
/// Lua names, when it can be found on that line.
pub(crate) fn syntax_report(error: &mlua::Error, source: &str) -> String {
    let message = match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    match locate(&message, source) {
        Some((line_no, line, column)) => {
            let gutter = line_no.to_string();
            let pad = " ".repeat(gutter.len());
            let caret = format!("{}^", " ".repeat(column));
            format!("{message}\n {gutter} | {line}\n {pad} | {caret}")
        }
        None => message,
    }
}

/// The line number, the line's text and the caret's column for `message`.
fn locate<'a>(message: &str, source: &'a str) -> Option<(usize, &'a str, usize)> {
    // `chunk:LINE: message`: the line number follows the first ':' that
    // is followed by digits and another ':'.
    let line_no = message.split(':').find_map(|part| {
        (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse::<usize>().ok())
            .flatten()
    })?;
    let lines: Vec<&str> = source.lines().collect();
    let near = message.rsplit_once(" near ").map(|(_, tok)| tok.trim());
    if near == Some("<eof>") {
        // The end of the file: after the last line that has anything on it.
        let (i, last) = lines
            .iter()
            .enumerate()
            .rev()
            .find(|(_, l)| !l.trim().is_empty())?;
        return Some((i + 1, last, last.len()));
    }
    let line = *lines.get(line_no.checked_sub(1)?)?;
    let token = near
        .and_then(|t| t.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or("");
    let indent = line.len() - line.trim_start().len();
    if token.is_empty() {
        return Some((line_no, line, indent));
    }
    // Lua gives no column. The token it names may occur more than once on
    // the line: the right one is the first where the source cut just
    // after it fails the same way (cut before it, Lua would meet <eof>).
    let line_start = source_offset(source, line_no)?;
    let lua = mlua::Lua::new();
    // Each try compiles the source up to there: a few tries only, so a
    // long minified line stays cheap (past them, the first occurrence).
    let column = line
        .match_indices(token)
        .map(|(i, _)| i)
        .take(MAX_TRIES)
        .find(|&i| {
            let cut = &source[..line_start + i + token.len()];
            match lua.load(cut).set_name("=cut").into_function() {
                Err(mlua::Error::SyntaxError { message, .. }) => {
                    message.ends_with(&format!(" near '{token}'"))
                }
                _ => false,
            }
        })
        .or_else(|| line.find(token))
        .unwrap_or(indent);
    Some((line_no, line, column))
}

/// How many occurrences of the token a caret search compiles the source for.
const MAX_TRIES: usize = 16;

/// The byte offset where line `line_no` (from 1) of `source` starts.
fn source_offset(source: &str, line_no: usize) -> Option<usize> {
    if line_no == 1 {
        return Some(0);
    }
    source
        .match_indices('\n')
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
pub(crate) fn skip_shebang(source: &str) -> &str {
    if source.starts_with('#') {
        match source.find('\n') {
            Some(i) => &source[i..],
            None => "",
        }
    } else {
        source
    }
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
        let text = String::from_utf8_lossy(&bytes);
        let source = skip_shebang(&text);
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
            Err(e) => syntax_report(&e, source),
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
        assert_eq!(skip_shebang("#!/usr/bin/env luaco\nprint(1)"), "\nprint(1)");
        assert_eq!(skip_shebang("print(1)"), "print(1)");
    }
}
