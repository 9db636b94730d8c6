//! Python's `re.sub(pattern, replacement, text)`, which graphite's `aliasSub`
//! is, on `regex_lite`: every non-overlapping match replaced, with Python's
//! replacement syntax (`\1`, `\g<1>`, `\g<name>`, `\n`, `\\`), a group that
//! did not take part in the match standing for nothing.
//!
//! Patterns are `regex_lite`'s syntax, which is Python's for what series
//! names need (groups, classes, anchors, repetition, `(?P<name>…)`), without
//! look-around, backreferences in the pattern and Unicode classes: `\w`,
//! `\d` and `\s` are ASCII here, Unicode-aware in Python.

use regex_lite::{Captures, Regex};

/// The longest pattern compiled. graphite-web has no bound; `regex_lite`
/// bounds its compiled size itself, and 4096 bytes is far beyond a
/// dashboard's alias patterns while keeping hostile ones cheap to refuse.
pub const MAX_PATTERN: usize = 4096;

/// One piece of a parsed replacement.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Group(usize),
    Named(String),
}

/// Why a substitution cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubError {
    #[error("invalid regular expression: {0}")]
    Pattern(String),
    #[error("invalid replacement: {0}")]
    Replacement(&'static str),
}

/// A compiled `re.sub`.
#[derive(Debug, Clone)]
pub struct Substitution {
    regex: Regex,
    replacement: Vec<Piece>,
}

impl Substitution {
    pub fn new(pattern: &str, replacement: &str) -> Result<Substitution, SubError> {
        if pattern.len() > MAX_PATTERN {
            return Err(SubError::Pattern("pattern too long".into()));
        }
        let regex = Regex::new(pattern).map_err(|e| SubError::Pattern(first_line(&e.to_string())))?;
        let replacement = parse_replacement(replacement)?;
        for piece in &replacement {
            let known = match piece {
                Piece::Group(n) => *n < regex.captures_len(),
                Piece::Named(name) => regex.capture_names().flatten().any(|n| n == name),
                Piece::Text(_) => true,
            };
            if !known {
                return Err(SubError::Replacement("invalid group reference"));
            }
        }
        Ok(Substitution { regex, replacement })
    }

    /// `text` with every match replaced.
    pub fn apply(&self, text: &str) -> String {
        self.regex
            .replace_all(text, |caps: &Captures<'_>| {
                let mut out = String::new();
                for piece in &self.replacement {
                    match piece {
                        Piece::Text(t) => out.push_str(t),
                        Piece::Group(n) => out.push_str(caps.get(*n).map_or("", |m| m.as_str())),
                        Piece::Named(name) => out.push_str(caps.name(name).map_or("", |m| m.as_str())),
                    }
                }
                out
            })
            .into_owned()
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}

/// Python's `parse_template`: escapes and group references.
fn parse_replacement(template: &str) -> Result<Vec<Piece>, SubError> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            text.push(c);
            continue;
        }
        let group = match chars.next() {
            None => return Err(SubError::Replacement("bad escape at the end")),
            Some('g') => {
                if chars.next() != Some('<') {
                    return Err(SubError::Replacement("missing < after \\g"));
                }
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('>') => break,
                        Some(c) => name.push(c),
                        None => return Err(SubError::Replacement("missing > after \\g<")),
                    }
                }
                match name.parse::<usize>() {
                    Ok(n) => Piece::Group(n),
                    Err(_) if is_identifier(&name) => Piece::Named(name),
                    Err(_) => return Err(SubError::Replacement("bad group name")),
                }
            }
            Some(d @ '1'..='9') => {
                let mut n = d.to_digit(10).expect("a digit") as usize;
                if let Some(second) = chars.peek().and_then(|c| c.to_digit(10)) {
                    chars.next();
                    n = n * 10 + second as usize;
                }
                Piece::Group(n)
            }
            Some(e) => {
                match e {
                    'n' => text.push('\n'),
                    't' => text.push('\t'),
                    'r' => text.push('\r'),
                    'f' => text.push('\x0c'),
                    'v' => text.push('\x0b'),
                    'a' => text.push('\x07'),
                    'b' => text.push('\x08'),
                    '\\' => text.push('\\'),
                    '0' => text.push('\0'),
                    c if c.is_ascii_alphanumeric() => return Err(SubError::Replacement("bad escape")),
                    c => {
                        text.push('\\');
                        text.push(c);
                    }
                }
                continue;
            }
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(group);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_') && chars.all(|c| c.is_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(pattern: &str, replacement: &str, text: &str) -> Result<String, SubError> {
        Substitution::new(pattern, replacement).map(|s| s.apply(text))
    }

    #[test]
    fn grafanas_ref_id_wrapper() {
        assert_eq!(
            sub("(^.*$)", r"\1 A", "servers.web1.cpu"),
            Ok("servers.web1.cpu A".into())
        );
        assert_eq!(sub("(^.*$)", r"\1 A", "sumSeries(a.*)"), Ok("sumSeries(a.*) A".into()));
        assert_eq!(sub("(^.*$)", r"\1 A", ""), Ok(" A".into()));
    }

    #[test]
    fn replacement_syntax_as_python() {
        assert_eq!(sub(r"^(\w+)\.(\w+)$", r"\2-\1", "a.b"), Ok("b-a".into()));
        assert_eq!(sub(r"^(\w+)\.(\w+)$", r"\g<2>0", "a.b"), Ok("b0".into()));
        assert_eq!(sub(r"^(?P<x>\w+)\..*", r"\g<x>", "a.b"), Ok("a".into()));
        assert_eq!(sub(r"b", r"\\", "abc"), Ok(r"a\c".into()));
        assert_eq!(sub(r"b", r"\n\t", "abc"), Ok("a\n\tc".into()));
        assert_eq!(sub(r"b", r"\.", "abc"), Ok(r"a\.c".into()));
        assert_eq!(sub(r"b", "$1", "abc"), Ok("a$1c".into()));
        // A group that took no part stands for nothing.
        assert_eq!(sub(r"(x)?b", r"[\1]", "abc"), Ok("a[]c".into()));
        // Every match, and empty ones.
        assert_eq!(sub(r"\.", "_", "a.b.c"), Ok("a_b_c".into()));
        assert_eq!(sub("x*", "-", "abc"), Ok("-a-b-c-".into()));
        let twelve = "(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)";
        assert_eq!(sub(twelve, r"\12\1", "abcdefghijkl"), Ok("la".into()));
    }

    #[test]
    fn bad_replacements_and_patterns() {
        assert_eq!(
            sub("(a)", r"\2", "a"),
            Err(SubError::Replacement("invalid group reference"))
        );
        assert_eq!(
            sub("(a)", r"\g<y>", "a"),
            Err(SubError::Replacement("invalid group reference"))
        );
        assert_eq!(
            sub("(a)", r"\g<1", "a"),
            Err(SubError::Replacement("missing > after \\g<"))
        );
        assert_eq!(
            sub("(a)", r"\g1", "a"),
            Err(SubError::Replacement("missing < after \\g"))
        );
        assert_eq!(sub("(a)", r"\g<->", "a"), Err(SubError::Replacement("bad group name")));
        assert_eq!(
            sub("(a)", "\\", "a"),
            Err(SubError::Replacement("bad escape at the end"))
        );
        assert_eq!(sub("(a)", r"\q", "a"), Err(SubError::Replacement("bad escape")));
        assert!(matches!(sub("(a", "x", "a"), Err(SubError::Pattern(_))));
        assert!(matches!(sub(r"(?=a)", "x", "a"), Err(SubError::Pattern(_))));
        assert!(matches!(
            sub(&"a".repeat(MAX_PATTERN + 1), "x", "a"),
            Err(SubError::Pattern(_))
        ));
    }
}
