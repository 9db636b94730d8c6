//! Render targets: `aliasSub(sumSeries(servers.*.cpu), "(^.*$)", "\1 A")` to
//! an [`Expr`] tree, or a [`ParseError`] with a one-line reason and the
//! position where reading stopped.
//!
//! The grammar is graphite-web's (`render/grammar_unsafe.py`):
//! - a path expression is one or more dot-separated nodes of characters
//!   other than whitespace and `(){},.'"\|`; `\` escapes one of those (and
//!   `=`), keeping the character; `{a,b}` groups inside a node keep their
//!   commas. Non-ASCII characters are allowed (graphite-web's `UTF8_METRICS`).
//! - a call is `name(args)`: positional arguments, then `key=value`
//!   arguments; names are `[A-Za-z_][A-Za-z0-9_]*`.
//! - an argument is `true`/`false`/`none`/`inf` (any case), an integer
//!   `-?\d+`, a float `-?\d+\.\d+`, either with an exponent `e-?\d+`, a
//!   string in single or double quotes (a backslash keeps the next character
//!   from ending it; the text between the quotes is taken as is, so
//!   `"\1 A"` is backslash, one, space, A), or an expression. A number or a
//!   word must be followed by `,`, `)` or the end to be one; `1h` and
//!   `trueish` are paths.
//! - `expr | call(args)` is `call(expr, args)` (graphite's pipes).
//! - Whitespace may separate any two tokens.
//!
//! Unlike graphite-web, text after a complete expression is an error (it
//! silently ignores it), and nesting is bounded by [`MAX_DEPTH`].

use std::fmt;

/// The deepest nesting of calls accepted. graphite-web has no bound of its
/// own (its parser recurses until Python's limit of 1000 frames, a few
/// hundred calls); the parser here recurses once per call, and 100 levels
/// is far beyond what a dashboard writes while keeping the stack small.
pub const MAX_DEPTH: usize = 100;

/// A parsed target or argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path expression, escapes resolved: `servers.web*.cpu`.
    Path(String),
    Call(Call),
    /// A quoted string, without its quotes.
    Str(String),
    Int(i64),
    /// A float, an integer too large for `i64`, or `inf`.
    Float(f64),
    Bool(bool),
    /// `none`.
    None,
}

/// A function call.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    pub name: String,
    pub args: Vec<Expr>,
    /// `key=value` arguments in the order written.
    pub kwargs: Vec<(String, Expr)>,
}

/// Why a target could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason} at character {position}")]
pub struct ParseError {
    /// What was expected or found, in a few words.
    pub reason: &'static str,
    /// Characters (not bytes) read before the problem, from 0.
    pub position: usize,
}

/// Parses one render target.
pub fn parse(target: &str) -> Result<Expr, ParseError> {
    let mut parser = Parser { text: target, at: 0 };
    parser.skip_whitespace();
    if parser.at == target.len() {
        return Err(parser.error("empty target"));
    }
    let expr = parser.expression(0)?;
    parser.skip_whitespace();
    match parser.peek() {
        None => Ok(expr),
        Some(')') => Err(parser.error("unbalanced ')'")),
        Some(_) => Err(parser.error("unexpected character after the expression")),
    }
}

/// Characters that end a path node (graphite-web's `symbols`) besides
/// whitespace.
const SYMBOLS: &str = "(){},.'\"\\|";

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    at: usize,
}

impl Parser<'_> {
    fn error(&self, reason: &'static str) -> ParseError {
        ParseError {
            reason,
            position: self.text[..self.at].chars().count(),
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.at..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        self.at += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_whitespace();
        if self.peek() == Some(c) {
            self.at += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Whether the text after the next `len` bytes ends a literal: `,`, `)`,
    /// or the end, after optional whitespace.
    fn ends_literal_after(&self, len: usize) -> bool {
        matches!(self.rest()[len..].trim_start().chars().next(), None | Some(',' | ')'))
    }

    /// `term ( '|' call )*`
    fn expression(&mut self, depth: usize) -> Result<Expr, ParseError> {
        let mut expr = match self.call_name() {
            Some(name) => Expr::Call(self.call(name, depth)?),
            None => Expr::Path(self.path()?),
        };
        while self.eat('|') {
            self.skip_whitespace();
            let Some(name) = self.call_name() else {
                return Err(self.error("expected a function call after '|'"));
            };
            let mut call = self.call(name, depth)?;
            call.args.insert(0, expr);
            expr = Expr::Call(call);
        }
        Ok(expr)
    }

    /// The length of an identifier at the front.
    fn identifier_len(&self) -> usize {
        let rest = self.rest().as_bytes();
        match rest.first() {
            Some(b) if b.is_ascii_alphabetic() || *b == b'_' => rest
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                .count(),
            _ => 0,
        }
    }

    /// The length of a function name at the front if `(` follows it (it is
    /// not consumed).
    fn call_name(&self) -> Option<usize> {
        let len = self.identifier_len();
        (len > 0 && self.rest()[len..].trim_start().starts_with('(')).then_some(len)
    }

    /// A call whose name is the next `name_len` bytes.
    fn call(&mut self, name_len: usize, depth: usize) -> Result<Call, ParseError> {
        if depth == MAX_DEPTH {
            return Err(self.error("functions nested too deeply"));
        }
        let name = self.rest()[..name_len].to_string();
        self.at += name_len;
        self.eat('(');
        let mut call = Call {
            name,
            args: Vec::new(),
            kwargs: Vec::new(),
        };
        if self.eat(')') {
            return Ok(call);
        }
        loop {
            self.skip_whitespace();
            let len = self.identifier_len();
            if len > 0 && self.rest()[len..].trim_start().starts_with('=') {
                let key = self.rest()[..len].to_string();
                self.at += len;
                self.eat('=');
                call.kwargs.push((key, self.argument(depth)?));
            } else if call.kwargs.is_empty() {
                call.args.push(self.argument(depth)?);
            } else {
                return Err(self.error("positional argument after a keyword argument"));
            }
            if self.eat(')') {
                return Ok(call);
            }
            if !self.eat(',') {
                return Err(match self.peek() {
                    None => self.error("missing ')'"),
                    Some(_) => self.error("expected ',' or ')'"),
                });
            }
        }
    }

    fn argument(&mut self, depth: usize) -> Result<Expr, ParseError> {
        self.skip_whitespace();
        if let Some(literal) = self.literal()? {
            return Ok(literal);
        }
        match self.peek() {
            None => Err(self.error("missing argument")),
            Some(',' | ')') => Err(self.error("missing argument")),
            Some(_) => self.expression(depth + 1),
        }
    }

    /// A string, number, boolean, `none` or `inf` at the front.
    fn literal(&mut self) -> Result<Option<Expr>, ParseError> {
        if let Some(quote @ ('"' | '\'')) = self.peek() {
            return self.string(quote).map(Some);
        }
        let len = self.identifier_len();
        if len > 0 && self.ends_literal_after(len) {
            let word = self.rest()[..len].to_ascii_lowercase();
            let literal = match word.as_str() {
                "true" => Expr::Bool(true),
                "false" => Expr::Bool(false),
                "none" => Expr::None,
                "inf" => Expr::Float(f64::INFINITY),
                _ => return Ok(None),
            };
            self.at += len;
            return Ok(Some(literal));
        }
        let len = number_len(self.rest());
        if len > 0 && self.ends_literal_after(len) {
            let text = &self.rest()[..len];
            let is_integer = text.bytes().all(|b| b.is_ascii_digit() || b == b'-');
            let number = match text.parse::<i64>() {
                Ok(int) if is_integer => Expr::Int(int),
                // The grammar admits only digits, so the float parser
                // always reads it (an overflowing exponent gives inf).
                _ => Expr::Float(text.parse().expect("digits with an optional fraction and exponent")),
            };
            self.at += len;
            return Ok(Some(number));
        }
        Ok(None)
    }

    /// A quoted string; a backslash keeps the next character from ending it.
    fn string(&mut self, quote: char) -> Result<Expr, ParseError> {
        let body = &self.rest()[1..];
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '\n' | '\r' => break,
                c if c == quote => {
                    let text = body[..i].to_string();
                    self.at += 1 + i + 1;
                    return Ok(Expr::Str(text));
                }
                _ => {}
            }
        }
        Err(self.error("unterminated string"))
    }

    /// A path expression: nodes separated by `.`.
    fn path(&mut self) -> Result<String, ParseError> {
        let mut path = String::new();
        loop {
            self.path_node(&mut path)?;
            if self.peek() != Some('.') {
                return Ok(path);
            }
            self.at += 1;
            path.push('.');
        }
    }

    /// One node: runs of plain or escaped characters and `{a,b}` groups.
    fn path_node(&mut self, path: &mut String) -> Result<(), ParseError> {
        let start = path.len();
        loop {
            match self.peek() {
                Some('{') => {
                    let open = self.at;
                    self.at += 1;
                    path.push('{');
                    loop {
                        if !self.plain_run(path) {
                            return Err(self.error("expected a path element in '{}'"));
                        }
                        match self.peek() {
                            Some(',') => path.push(','),
                            Some('}') => break,
                            _ => {
                                self.at = open;
                                return Err(self.error("unclosed '{' in path"));
                            }
                        }
                        self.at += 1;
                    }
                    self.at += 1;
                    path.push('}');
                }
                _ if self.plain_run(path) => {}
                _ => break,
            }
        }
        if path.len() == start {
            return Err(match self.peek() {
                None => self.error("expected a path"),
                Some(_) if start > 0 => self.error("empty path node"),
                Some(_) => self.error("unexpected character"),
            });
        }
        Ok(())
    }

    /// Plain or escaped characters; whether there was any.
    fn plain_run(&mut self, path: &mut String) -> bool {
        let before = self.at;
        while let Some(c) = self.peek() {
            if c == '\\' {
                match self.rest()[1..].chars().next() {
                    Some(escaped) if SYMBOLS.contains(escaped) || escaped == '=' => {
                        path.push(escaped);
                        self.at += 1 + escaped.len_utf8();
                        continue;
                    }
                    _ => break,
                }
            }
            if c.is_whitespace() || c.is_control() || SYMBOLS.contains(c) {
                break;
            }
            path.push(c);
            self.at += c.len_utf8();
        }
        self.at > before
    }
}

/// The length of `-?\d+(\.\d+)?([eE]-?\d+)?` at the front of `text`, 0 if none.
fn number_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let digits_from = |i: usize| {
        bytes[i.min(bytes.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut i = usize::from(bytes.first() == Some(&b'-'));
    let integer = digits_from(i);
    if integer == 0 {
        return 0;
    }
    i += integer;
    if bytes.get(i) == Some(&b'.') && digits_from(i + 1) > 0 {
        i += 1 + digits_from(i + 1);
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(bytes.get(i + 1) == Some(&b'-'));
        let exponent = digits_from(i + 1 + sign);
        if exponent > 0 {
            i += 1 + sign + exponent;
        }
    }
    i
}

impl fmt::Display for Expr {
    /// The expression in graphite's syntax (strings in double quotes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(path) => f.write_str(path),
            Expr::Call(call) => {
                write!(f, "{}(", call.name)?;
                let args = call.args.iter().map(|a| (None, a));
                let kwargs = call.kwargs.iter().map(|(k, a)| (Some(k), a));
                for (i, (key, arg)) in args.chain(kwargs).enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    if let Some(key) = key {
                        write!(f, "{key}=")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
            Expr::Str(s) => write!(f, "\"{s}\""),
            Expr::Int(i) => write!(f, "{i}"),
            Expr::Float(x) if x.is_infinite() => f.write_str(if *x > 0.0 { "inf" } else { "-inf" }),
            Expr::Float(x) => write!(f, "{x:?}"),
            Expr::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Expr::None => f.write_str("None"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> Expr {
        Expr::Path(p.into())
    }

    fn call(name: &str, args: Vec<Expr>) -> Expr {
        Expr::Call(Call {
            name: name.into(),
            args,
            kwargs: Vec::new(),
        })
    }

    fn err(target: &str) -> (&'static str, usize) {
        let e = parse(target).unwrap_err();
        (e.reason, e.position)
    }

    #[test]
    fn paths() {
        assert_eq!(parse("a.b.c"), Ok(path("a.b.c")));
        assert_eq!(parse("  a.b  "), Ok(path("a.b")));
        assert_eq!(parse("servers.web*.cpu[0-9]?"), Ok(path("servers.web*.cpu[0-9]?")));
        assert_eq!(parse("a.{b,c}.d"), Ok(path("a.{b,c}.d")));
        assert_eq!(parse("a.x{b,c}y{d}"), Ok(path("a.x{b,c}y{d}")));
        assert_eq!(parse("a;tag=v"), Ok(path("a;tag=v")));
        assert_eq!(
            parse("a-b:c~d$e@f#g%h&i+j/k<l>m!n^o=p"),
            Ok(path("a-b:c~d$e@f#g%h&i+j/k<l>m!n^o=p"))
        );
        assert_eq!(parse(r"a\(b\).c\,d\=e"), Ok(path("a(b).c,d=e")));
        assert_eq!(parse("palm.é.cpu"), Ok(path("palm.é.cpu")));
        assert_eq!(parse("1h"), Ok(path("1h")));
        assert_eq!(parse("true.x"), Ok(path("true.x")));
        assert_eq!(parse("sumSeries"), Ok(path("sumSeries")));
    }

    #[test]
    fn malformed_paths() {
        assert_eq!(err(""), ("empty target", 0));
        assert_eq!(err("   "), ("empty target", 3));
        assert_eq!(err("a..b"), ("empty path node", 2));
        assert_eq!(err("a."), ("expected a path", 2));
        assert_eq!(err(".a"), ("unexpected character", 0));
        assert_eq!(err("a.{b,c"), ("unclosed '{' in path", 2));
        assert_eq!(err("a.{}"), ("expected a path element in '{}'", 3));
        assert_eq!(err("a.{b,}"), ("expected a path element in '{}'", 5));
        assert_eq!(err("a.{b{c}}"), ("unclosed '{' in path", 2));
        assert_eq!(err("a b"), ("unexpected character after the expression", 2));
        assert_eq!(err("a)"), ("unbalanced ')'", 1));
        assert_eq!(err("a\\"), ("unexpected character after the expression", 1));
        assert_eq!(err("a\\x"), ("unexpected character after the expression", 1));
        assert_eq!(err("é.\u{7}"), ("empty path node", 2));
        assert_eq!(err("'a'"), ("unexpected character", 0));
        assert_eq!(err("a|b"), ("expected a function call after '|'", 2));
    }

    #[test]
    fn calls_and_arguments() {
        assert_eq!(parse("sumSeries(a.*)"), Ok(call("sumSeries", vec![path("a.*")])));
        assert_eq!(parse("f()"), Ok(call("f", vec![])));
        assert_eq!(parse("f ( ) "), Ok(call("f", vec![])));
        assert_eq!(
            parse("f(a, 1, -2, 1.5, -1e3, 2.5E-2, true, False, NONE, inf, 'x', \"y\")"),
            Ok(call(
                "f",
                vec![
                    path("a"),
                    Expr::Int(1),
                    Expr::Int(-2),
                    Expr::Float(1.5),
                    Expr::Float(-1000.0),
                    Expr::Float(0.025),
                    Expr::Bool(true),
                    Expr::Bool(false),
                    Expr::None,
                    Expr::Float(f64::INFINITY),
                    Expr::Str("x".into()),
                    Expr::Str("y".into()),
                ]
            ))
        );
        assert_eq!(
            parse("f(99999999999999999999)"),
            Ok(call("f", vec![Expr::Float(99999999999999999999.0)]))
        );
        assert_eq!(
            parse("f(1h, 1.5.2, trueish, -x)"),
            Ok(call("f", vec![path("1h"), path("1.5.2"), path("trueish"), path("-x")]))
        );
        assert_eq!(parse("f(\n\ta ,\tb\n)"), Ok(call("f", vec![path("a"), path("b")])));
    }

    #[test]
    fn grafana_alias_sub_wrapping() {
        assert_eq!(
            parse(r#"aliasSub(sumSeries(servers.*.cpu), "(^.*$)", "\1 A")"#),
            Ok(call(
                "aliasSub",
                vec![
                    call("sumSeries", vec![path("servers.*.cpu")]),
                    Expr::Str("(^.*$)".into()),
                    Expr::Str(r"\1 A".into()),
                ]
            ))
        );
        assert_eq!(
            parse("constantLine(100)"),
            Ok(call("constantLine", vec![Expr::Int(100)]))
        );
    }

    #[test]
    fn strings_keep_their_backslashes() {
        assert_eq!(parse(r#"f("a\"b")"#), Ok(call("f", vec![Expr::Str(r#"a\"b"#.into())])));
        assert_eq!(parse(r"f('it\'s')"), Ok(call("f", vec![Expr::Str(r"it\'s".into())])));
        assert_eq!(
            parse(r#"f('say "hi"')"#),
            Ok(call("f", vec![Expr::Str(r#"say "hi""#.into())]))
        );
        assert_eq!(parse(r#"f("")"#), Ok(call("f", vec![Expr::Str("".into())])));
        assert_eq!(parse("f(\"é,)\")"), Ok(call("f", vec![Expr::Str("é,)".into())])));
    }

    #[test]
    fn keyword_arguments() {
        let parsed = parse("summarize(a.b, '1h', func='max', alignToFrom = true)").unwrap();
        let Expr::Call(c) = parsed else { panic!("not a call") };
        assert_eq!(c.args, vec![path("a.b"), Expr::Str("1h".into())]);
        assert_eq!(
            c.kwargs,
            vec![
                ("func".to_string(), Expr::Str("max".into())),
                ("alignToFrom".to_string(), Expr::Bool(true))
            ]
        );
        assert_eq!(err("f(a=1, b)"), ("positional argument after a keyword argument", 7));
        assert_eq!(err("f(a=)"), ("missing argument", 4));
    }

    #[test]
    fn pipes_are_calls() {
        assert_eq!(
            parse("a.b | scale(2) |alias('x')"),
            Ok(call(
                "alias",
                vec![call("scale", vec![path("a.b"), Expr::Int(2)]), Expr::Str("x".into())]
            ))
        );
        assert_eq!(err("a.b | 'x'"), ("expected a function call after '|'", 6));
    }

    #[test]
    fn malformed_calls() {
        assert_eq!(err("f("), ("missing argument", 2));
        assert_eq!(err("f(a"), ("missing ')'", 3));
        assert_eq!(err("f(a,"), ("missing argument", 4));
        assert_eq!(err("f(a,)"), ("missing argument", 4));
        assert_eq!(err("f(,a)"), ("missing argument", 2));
        assert_eq!(err("f(a b)"), ("expected ',' or ')'", 4));
        assert_eq!(err("f(a))"), ("unbalanced ')'", 4));
        assert_eq!(err("f(a)x"), ("unexpected character after the expression", 4));
        assert_eq!(err("f('abc)"), ("unterminated string", 2));
        assert_eq!(err("f('ab\nc')"), ("unterminated string", 2));
        assert_eq!(err("f(\"a\\\")"), ("unterminated string", 2));
        assert_eq!(err("f(1 2)"), ("expected ',' or ')'", 4));
        assert_eq!(err("f('a' 'b')"), ("expected ',' or ')'", 6));
        assert_eq!(err("é(a"), ("unexpected character after the expression", 1));
    }

    #[test]
    fn hostile_nesting_is_bounded() {
        let deep = |n: usize| format!("{}a{}", "f(".repeat(n), ")".repeat(n));
        assert!(parse(&deep(MAX_DEPTH)).is_ok());
        assert_eq!(err(&deep(MAX_DEPTH + 1)).0, "functions nested too deeply");
        assert_eq!(err(&deep(100_000)).0, "functions nested too deeply");
        assert_eq!(err(&"f(".repeat(100_000)).0, "functions nested too deeply");
    }

    #[test]
    fn display_writes_graphite_syntax() {
        let text = r#"aliasSub(sumSeries(a.*,b),"x",n=1,m=-1.5,t=True,z=None)"#;
        assert_eq!(parse(text).unwrap().to_string(), text);
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text parses or gets a reason whose position is inside it.
        #[test]
        fn any_text_parses_or_has_a_reason(text in "[a-z(){},.'\"\\| =0-9*\\-é]{0,40}") {
            if let Err(e) = parse(&text) {
                prop_assert!(e.position <= text.chars().count());
            }
        }
    }
}
