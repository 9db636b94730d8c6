//! No module imports one that imports it back.
//!
//! Reads the library's sources (`src/**/*.rs` but `src/bin`), finds which
//! of the crate's modules each one names (`use crate::x`, `crate::x::y`
//! paths, `super::` paths, `{..}` groups), and fails naming the cycle if
//! the modules depend on each other in a circle. The units are the
//! top-level modules (`client`, `journal`, `server`, ...) and the
//! submodules of `protocol` (`protocol::request`, `protocol::number`, ...),
//! whose dependencies the module map in `lib.rs` promises run one way.
//!
//! A module's own tests may use anything (they are cut off at their
//! `#[cfg(test)] mod`), and test-only modules (`#[cfg(test)] mod testing;`)
//! are skipped. A parent naming its own children (`pub use request::..`) is
//! containment, not a dependency; a child using its parent's items is one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules whose submodules are units of their own.
const SPLIT: &[&str] = &["protocol", "session", "engine", "server", "journal"];

/// A unit: `["client"]`, `["protocol", "request"]`.
type Unit = Vec<String>;

/// The source files as (path under `src/`, text), `src/bin` left out.
fn read_sources(src: &Path) -> Vec<(String, String)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("src/ is readable")
            .map(|e| e.expect("src/ entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().unwrap().to_str().expect("UTF-8 file names").to_owned();
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            if path.is_dir() {
                if rel != "bin" {
                    walk(&path, &rel, out);
                }
            } else if rel.ends_with(".rs") {
                out.push((rel, std::fs::read_to_string(&path).expect("source is UTF-8")));
            }
        }
    }
    let mut out = Vec::new();
    walk(src, "", &mut out);
    out
}

/// The module path of a file: `protocol/request.rs` → `[protocol,
/// request]`, `server/mod.rs` → `[server]`, `lib.rs` → `[]`.
fn module_path(file: &str) -> Vec<String> {
    let stem = file.strip_suffix(".rs").expect(".rs file");
    let mut path: Vec<String> = stem.split('/').map(str::to_owned).collect();
    if matches!(path.last().map(String::as_str), Some("mod" | "lib")) {
        path.pop();
    }
    path
}

/// The unit a module path belongs to.
fn unit_of(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Unit> {
    let top = path.first()?;
    if SPLIT.contains(&top.as_str()) && path.len() >= 2 && modules.contains(&path[..2].to_vec()) {
        return Some(path[..2].to_vec());
    }
    Some(vec![top.clone()])
}

/// The code of a file without comments and without its test module.
fn code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|next| next.trim_start().starts_with("mod tests"))
        {
            // The test module is the last item of every file.
            break;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Modules declared test-only by their parent: `#[cfg(test)] mod testing;`.
fn test_only_modules(files: &[(String, String)]) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for (file, text) in files {
        let mut lines = text.lines().map(str::trim);
        while let Some(line) = lines.next() {
            if line != "#[cfg(test)]" {
                continue;
            }
            let Some(next) = lines.next() else { break };
            let next = next.strip_prefix("pub ").unwrap_or(next);
            let next = next.strip_prefix("pub(crate) ").unwrap_or(next);
            if let Some(name) = next.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                let mut path = module_path(file);
                path.push(name.to_owned());
                out.insert(path);
            }
        }
    }
    out
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Colons,
    Open,
    Close,
    Comma,
}

/// The tokens of a path or use tree starting at `text`, up to where it
/// ends (anything else: `;`, `(`, whitespace outside braces, ...).
fn path_tokens(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut depth = 0;
    let mut rest = text;
    loop {
        let trimmed = if depth > 0 { rest.trim_start() } else { rest };
        let Some(c) = trimmed.chars().next() else { break };
        if c.is_alphanumeric() || c == '_' {
            let end = trimmed
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(trimmed.len());
            tokens.push(Token::Ident(trimmed[..end].to_owned()));
            rest = &trimmed[end..];
        } else if let Some(after) = trimmed.strip_prefix("::") {
            tokens.push(Token::Colons);
            rest = after;
        } else if c == '{' {
            depth += 1;
            tokens.push(Token::Open);
            rest = &trimmed[1..];
        } else if c == '}' && depth > 0 {
            depth -= 1;
            tokens.push(Token::Close);
            rest = &trimmed[1..];
            if depth == 0 {
                break;
            }
        } else if c == ',' && depth > 0 {
            tokens.push(Token::Comma);
            rest = &trimmed[1..];
        } else if depth > 0 {
            // `as name`, `*`, ...: skip the byte inside a group.
            rest = &trimmed[c.len_utf8()..];
        } else {
            break;
        }
    }
    tokens
}

/// Every path a use tree names, from `prefix`: `{a, b::{c, d}}` gives
/// `a`, `b::c`, `b::d`.
fn expand(tokens: &[Token], at: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = prefix;
    loop {
        match tokens.get(*at) {
            Some(Token::Ident(name)) => {
                *at += 1;
                if name != "self" && name != "as" {
                    path.push(name.clone());
                }
                if tokens.get(*at) == Some(&Token::Colons) {
                    *at += 1;
                    continue;
                }
                out.push(path);
                return;
            }
            Some(Token::Open) => {
                *at += 1;
                loop {
                    expand(tokens, at, path.clone(), out);
                    // Skip `as x` and the like up to the comma or brace.
                    while let Some(Token::Ident(_)) = tokens.get(*at) {
                        *at += 1;
                    }
                    match tokens.get(*at) {
                        Some(Token::Comma) => *at += 1,
                        Some(Token::Close) => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                    if tokens.get(*at) == Some(&Token::Close) {
                        *at += 1;
                        return;
                    }
                }
            }
            _ => {
                out.push(path);
                return;
            }
        }
    }
}

/// Which units each unit depends on.
fn dependencies(files: &[(String, String)]) -> BTreeMap<Unit, BTreeSet<Unit>> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(f, _)| module_path(f)).collect();
    let test_only = test_only_modules(files);
    let mut graph: BTreeMap<Unit, BTreeSet<Unit>> = BTreeMap::new();
    for (file, text) in files {
        let here = module_path(file);
        if test_only.iter().any(|t| here.starts_with(t)) {
            continue;
        }
        let Some(unit) = unit_of(&here, &modules) else {
            continue; // lib.rs: the crate root declares and re-exports.
        };
        let code = code(text);
        let mut paths = Vec::new();
        for (keyword, base) in [("crate::", Vec::new()), ("super::", here[..here.len() - 1].to_vec())] {
            for (i, _) in code.match_indices(keyword) {
                let before = code[..i].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                    continue;
                }
                let tokens = path_tokens(&code[i + keyword.len()..]);
                expand(&tokens, &mut 0, base.clone(), &mut paths);
            }
        }
        let deps = graph.entry(unit.clone()).or_default();
        for path in paths {
            let Some(target) = unit_of(&path, &modules) else {
                continue;
            };
            // A unit naming itself or one of its children is not a dependency.
            if !target.starts_with(&unit) {
                deps.insert(target);
            }
        }
    }
    graph
}

/// A cycle in `graph`, as the units along it with the first repeated at
/// the end.
fn find_cycle(graph: &BTreeMap<Unit, BTreeSet<Unit>>) -> Option<Vec<Unit>> {
    fn visit(
        unit: &Unit,
        graph: &BTreeMap<Unit, BTreeSet<Unit>>,
        done: &mut BTreeSet<Unit>,
        stack: &mut Vec<Unit>,
    ) -> Option<Vec<Unit>> {
        if let Some(start) = stack.iter().position(|u| u == unit) {
            let mut cycle = stack[start..].to_vec();
            cycle.push(unit.clone());
            return Some(cycle);
        }
        if done.contains(unit) {
            return None;
        }
        stack.push(unit.clone());
        for next in graph.get(unit).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        done.insert(unit.clone());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|unit| visit(unit, graph, &mut done, &mut Vec::new()))
}

fn show(cycle: &[Unit]) -> String {
    cycle.iter().map(|u| u.join("::")).collect::<Vec<_>>().join(" → ")
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = dependencies(&read_sources(&src));
    // The reader must see the modules it guards, or it proves nothing.
    for unit in [&["client"][..], &["protocol", "request"], &["protocol", "response"]] {
        assert!(
            graph.contains_key(&unit.iter().map(|s| s.to_string()).collect::<Unit>()),
            "{unit:?} not read"
        );
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import cycle: {}", show(&cycle));
    }
}

fn sources(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect()
}

#[test]
fn a_cycle_through_super_and_crate_paths_is_found_and_named() {
    // The shape of the number codec before protocol::number: each half of
    // it imported the other.
    let files = sources(&[
        ("lib.rs", "pub mod protocol;\npub mod client;\n"),
        (
            "protocol/mod.rs",
            "pub mod request;\npub mod response;\npub use request::parse_line;\n",
        ),
        (
            "protocol/request.rs",
            "fn f() { super::response::write_value(out, v); }\n",
        ),
        (
            "protocol/response.rs",
            "use super::request::{parse_timestamp, parse_value};\n",
        ),
        (
            "client.rs",
            "use crate::protocol::{request::encode_put, response::parse_response};\n",
        ),
    ]);
    let cycle = find_cycle(&dependencies(&files)).expect("the cycle is found");
    assert_eq!(
        show(&cycle),
        "protocol::request → protocol::response → protocol::request"
    );
    let files = sources(&[
        ("lib.rs", ""),
        ("client.rs", "use crate::{clock, protocol::Query};\n"),
        ("clock.rs", "fn f() -> i64 { crate::client::now() }\n"),
        ("protocol/mod.rs", ""),
    ]);
    assert_eq!(
        find_cycle(&dependencies(&files)).map(|c| show(&c)),
        Some("client → clock → client".to_owned())
    );
}

#[test]
fn parents_tests_comments_and_test_only_modules_are_not_dependencies() {
    let files = sources(&[
        ("lib.rs", "#[cfg(test)]\nmod testutil;\n"),
        ("testutil.rs", "use crate::protocol::number::x;\n"),
        (
            "protocol/mod.rs",
            "pub mod number;\npub mod request;\n#[cfg(test)]\nmod testing;\npub use request::Request;\n",
        ),
        ("protocol/testing.rs", "use super::request::y;\nuse super::number::z;\n"),
        ("protocol/request.rs", "use super::{is_field_byte, number::{parse_value as p, write_value}};\n"),
        (
            "protocol/number.rs",
            "// see crate::protocol::request\nfn f() {}\n#[cfg(test)]\nmod tests {\n    use crate::protocol::request::q;\n}\n",
        ),
    ]);
    let graph = dependencies(&files);
    let unit = |s: &str| s.split("::").map(str::to_owned).collect::<Unit>();
    assert_eq!(find_cycle(&graph), None);
    assert_eq!(
        graph[&unit("protocol::request")],
        [unit("protocol"), unit("protocol::number")].into()
    );
    assert_eq!(graph[&unit("protocol::number")], BTreeSet::new());
    assert_eq!(graph[&unit("protocol")], BTreeSet::new());
    assert!(!graph.contains_key(&unit("testutil")));
    assert!(!graph.contains_key(&unit("protocol::testing")));
}
