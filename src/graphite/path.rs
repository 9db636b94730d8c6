//! graphite-web's path expressions: which keys a target such as
//! `servers.{web,db}[0-9].cpu.*` names, and the nodes `/metrics/find` lists.
//!
//! The semantics are those of graphite-web's standard finder
//! (`finders/standard.py`): backslashes are dropped, the expression is split
//! at every `.` into nodes, each node is brace-expanded (`expand_braces`,
//! innermost-leftmost `{…}` first, so braces nest) and each variant is
//! matched against one node of the key with Python's `fnmatch`: `*` any run
//! of characters, `?` one character, `[abc]`, `[a-z]`, `[!x]` one character of
//! (or not of) a set, an unclosed `[` a literal. Matching is case-sensitive
//! (`fnmatch` on POSIX). A key matches when it has as many nodes as the
//! expression and every node matches.
//!
//! A tagged expression (`name;tag=value…`) names one tagged series: it
//! matches the key it canonicalizes to, as graphite-web looks tagged paths up
//! directly instead of globbing them. graphite-web's recursive `**` is not
//! supported: it matches like `*`, within one node.

use super::plaintext::canonical_key;

/// The most variants brace expansion may make of one node. graphite-web has
/// no bound, but `{a,b}{a,b}…` doubles with every pair of braces, so a
/// hostile target of a few hundred bytes could ask for 2^100 variants. 1024
/// is far beyond what dashboards write (Grafana's multi-value variables
/// make one `{…}` with one entry per chosen value).
pub const MAX_VARIANTS: usize = 1024;

/// Why a path expression is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Brace expansion makes more than [`MAX_VARIANTS`] variants of a node.
    #[error("too many brace alternatives in a path node")]
    TooManyVariants,
    /// A tagged expression that is not a valid tagged key.
    #[error("invalid tagged path: {0}")]
    InvalidTaggedPath(super::plaintext::PlaintextError),
}

/// A parsed path expression.
#[derive(Debug, Clone, PartialEq)]
pub struct PathPattern {
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    /// One pattern per node.
    Nodes(Vec<NodePattern>),
    /// A tagged series, by its canonical key.
    Tagged(String),
}

/// One node: the key's node matches if any variant matches.
#[derive(Debug, Clone, PartialEq)]
struct NodePattern {
    variants: Vec<Glob>,
}

/// One brace-free `fnmatch` pattern.
#[derive(Debug, Clone, PartialEq)]
struct Glob {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Char(char),
    /// `?`
    One,
    /// `*`
    Star,
    /// `[…]`: inclusive ranges (a single character is a range of one).
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl PathPattern {
    /// Parses a path expression.
    pub fn parse(expression: &str) -> Result<PathPattern, PatternError> {
        if expression.contains(';') {
            let key = canonical_key(expression.as_bytes()).map_err(PatternError::InvalidTaggedPath)?;
            return Ok(PathPattern {
                kind: Kind::Tagged(key.into_owned()),
            });
        }
        let clean = expression.replace('\\', "");
        let nodes = clean
            .split('.')
            .map(|node| {
                let variants = expand_braces(node)?;
                Ok(NodePattern {
                    variants: variants.iter().map(|v| Glob::parse(v)).collect(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PathPattern {
            kind: Kind::Nodes(nodes),
        })
    }

    /// The one key this expression names, if it has no wildcard: a store
    /// can look it up instead of scanning.
    pub fn exact_key(&self) -> Option<String> {
        match &self.kind {
            Kind::Tagged(key) => Some(key.clone()),
            Kind::Nodes(nodes) => {
                let mut key = String::new();
                for (i, node) in nodes.iter().enumerate() {
                    let [glob] = node.variants.as_slice() else {
                        return None;
                    };
                    if i > 0 {
                        key.push('.');
                    }
                    for token in &glob.tokens {
                        match token {
                            Token::Char(c) => key.push(*c),
                            _ => return None,
                        }
                    }
                }
                Some(key)
            }
        }
    }

    /// Whether `key` is named by this expression.
    pub fn matches(&self, key: &str) -> bool {
        match &self.kind {
            Kind::Tagged(tagged) => tagged == key,
            Kind::Nodes(nodes) => {
                let mut parts = key.split('.');
                nodes
                    .iter()
                    .all(|node| parts.next().is_some_and(|part| node.matches(part)))
                    && parts.next().is_none()
            }
        }
    }

    /// The nodes `/metrics/find` lists for this expression among `keys`:
    /// every distinct path of as many nodes as the expression that matches
    /// it and starts some key. It is a leaf if it is a key, a branch if it is
    /// the beginning of a longer key; it can be both. Sorted by path.
    ///
    /// Tagged keys (with a `;`) are not listed: graphite-web keeps them out
    /// of the tree (under `_tagged`) and finds them by their tags.
    pub fn find<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Vec<FoundNode> {
        let Kind::Nodes(nodes) = &self.kind else {
            return Vec::new();
        };
        let mut found: std::collections::BTreeMap<&str, FoundNode> = std::collections::BTreeMap::new();
        for key in keys.into_iter().filter(|key| !key.contains(';')) {
            let mut end = 0;
            let mut parts = key.split('.');
            let all_match = nodes.iter().enumerate().all(|(i, node)| {
                let Some(part) = parts.next() else { return false };
                end += part.len() + usize::from(i > 0);
                node.matches(part)
            });
            if !all_match {
                continue;
            }
            let path = &key[..end];
            let leaf = end == key.len();
            let entry = found.entry(path).or_insert_with(|| FoundNode {
                path: path.to_string(),
                leaf: false,
                branch: false,
            });
            entry.leaf |= leaf;
            entry.branch |= !leaf;
        }
        found.into_values().collect()
    }
}

/// A node listed by [`PathPattern::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundNode {
    /// The whole path, `servers.web1`.
    pub path: String,
    /// A series is stored under this path.
    pub leaf: bool,
    /// Series are stored below this path.
    pub branch: bool,
}

impl FoundNode {
    /// The last node of the path, `web1` (graphite's `text`).
    pub fn name(&self) -> &str {
        self.path.rsplit('.').next().unwrap_or(&self.path)
    }
}

impl NodePattern {
    fn matches(&self, part: &str) -> bool {
        self.variants.iter().any(|glob| glob.matches(part))
    }
}

/// graphite-web's `expand_braces`: the leftmost `{…}` holding no brace is
/// replaced by each of its comma-separated alternatives, recursively;
/// duplicates are dropped. Unbalanced braces stay literal characters.
fn expand_braces(node: &str) -> Result<Vec<String>, PatternError> {
    let mut done: Vec<String> = Vec::new();
    let mut pending = vec![node.to_string()];
    while let Some(text) = pending.pop() {
        match innermost_braces(&text) {
            None => {
                if !done.contains(&text) {
                    if done.len() == MAX_VARIANTS {
                        return Err(PatternError::TooManyVariants);
                    }
                    done.push(text);
                }
            }
            Some((open, close)) => {
                for alternative in text[open + 1..close].split(',') {
                    if pending.len() > MAX_VARIANTS {
                        return Err(PatternError::TooManyVariants);
                    }
                    pending.push(format!("{}{}{}", &text[..open], alternative, &text[close + 1..]));
                }
            }
        }
    }
    Ok(done)
}

/// The byte positions of the leftmost `{` whose next brace is a `}`: what the
/// regular expression `\{[^{}]*\}` finds first.
fn innermost_braces(text: &str) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, b) in text.bytes().enumerate() {
        match (b, open) {
            (b'{', _) => open = Some(i),
            (b'}', Some(start)) => return Some((start, i)),
            _ => {}
        }
    }
    None
}

impl Glob {
    /// Python's `fnmatch.translate`, as tokens.
    fn parse(pattern: &str) -> Glob {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let token = match chars[i] {
                '*' => Token::Star,
                '?' => Token::One,
                '[' => match parse_set(&chars[i + 1..]) {
                    Some((token, used)) => {
                        i += used;
                        token
                    }
                    None => Token::Char('['),
                },
                c => Token::Char(c),
            };
            // Runs of `*` are one `*`; this keeps matching linear in them.
            if !(token == Token::Star && tokens.last() == Some(&Token::Star)) {
                tokens.push(token);
            }
            i += 1;
        }
        Glob { tokens }
    }

    /// Wildcard matching with one backtrack point (the last `*`): O(pattern ×
    /// text) in the worst case, no recursion.
    fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(token) if token.matches_char(text[t]) => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((star_p, star_t)) => {
                        p = star_p + 1;
                        t = star_t + 1;
                        star = Some((star_p, star_t + 1));
                    }
                    None => return false,
                },
            }
        }
        self.tokens[p..].iter().all(|token| *token == Token::Star)
    }
}

impl Token {
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Char(x) => *x == c,
            Token::One => true,
            Token::Star => false,
            Token::Set { negated, ranges } => ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated,
        }
    }
}

/// A set after its `[`, as `fnmatch` reads it: a leading `!` negates, a `]`
/// right after `[` or `[!` is a member, `a-z` is a range (a reversed range is
/// empty), a `-` first or last is a member. Returns the token and how many
/// characters it used after the `[`, or None if no `]` closes it.
fn parse_set(chars: &[char]) -> Option<(Token, usize)> {
    let negated = chars.first() == Some(&'!');
    let start = usize::from(negated);
    let mut j = start;
    if chars.get(j) == Some(&']') {
        j += 1;
    }
    let close = j + chars[j.min(chars.len())..].iter().position(|&c| c == ']')?;
    let members = &chars[start..close];
    let mut ranges = Vec::new();
    let mut k = 0;
    while k < members.len() {
        if k + 2 < members.len() && members[k + 1] == '-' {
            ranges.push((members[k], members[k + 2]));
            k += 3;
        } else {
            ranges.push((members[k], members[k]));
            k += 1;
        }
    }
    Some((Token::Set { negated, ranges }, close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, key: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(key)
    }

    #[test]
    fn literal_nodes() {
        assert!(matches("a.b.c", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b.C"));
        assert!(matches("a..b", "a..b"));
        assert!(!matches("a..b", "a.b"));
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }

    #[test]
    fn star_and_question_mark_stay_in_their_node() {
        assert!(matches("a.*", "a.b"));
        assert!(matches("a.*", "a."));
        assert!(!matches("a.*", "a.b.c"));
        assert!(matches("*.*", "x.y"));
        assert!(matches("a.b*", "a.b"));
        assert!(matches("a.*b*", "a.xxbyy"));
        assert!(!matches("a.*b*", "a.xxyy"));
        assert!(matches("a.*x*y*z", "a.axbyczz"));
        assert!(matches("a.**", "a.b"));
        assert!(!matches("a.**", "a.b.c"));
        assert!(matches("a.?", "a.b"));
        assert!(!matches("a.?", "a.bc"));
        assert!(!matches("a.?", "a."));
        assert!(matches("a.?", "a.é"));
        assert!(matches("?.*.c", "a.b.c"));
    }

    #[test]
    fn sets_as_fnmatch_reads_them() {
        assert!(matches("web[0-9]", "web7"));
        assert!(!matches("web[0-9]", "webx"));
        assert!(matches("web[abc]", "webb"));
        assert!(!matches("web[abc]", "webd"));
        assert!(matches("web[!abc]", "webd"));
        assert!(!matches("web[!abc]", "weba"));
        // `]` first is a member; `-` first or last is a member.
        assert!(matches("x[]a]", "x]"));
        assert!(matches("x[!]]", "xa"));
        assert!(!matches("x[!]]", "x]"));
        assert!(matches("x[-a]", "x-"));
        assert!(matches("x[a-]", "x-"));
        // `^` is not a negation in fnmatch.
        assert!(matches("x[^a]", "x^"));
        assert!(matches("x[^a]", "xa"));
        // A reversed range is empty.
        assert!(!matches("x[z-a]", "xm"));
        assert!(matches("x[!z-a]", "xm"));
        // An unclosed `[` is a literal.
        assert!(matches("x[ab", "x[ab"));
        assert!(matches("x[", "x["));
        assert!(matches("x[!", "x[!"));
        assert!(matches("x[]", "x[]"));
        // Sets stay within a node: the `.` splits first.
        assert!(matches("x[a.b]", "x[a.b]"));
    }

    #[test]
    fn braces_expand_per_node_and_nest() {
        assert!(matches("a.{b,c}.d", "a.b.d"));
        assert!(matches("a.{b,c}.d", "a.c.d"));
        assert!(!matches("a.{b,c}.d", "a.e.d"));
        assert!(matches("a.x{b,c}y", "a.xcy"));
        assert!(matches("a.{b,{c,d}e}", "a.de"));
        assert!(matches("a.{b,{c,d}e}", "a.b"));
        assert!(!matches("a.{b,{c,d}e}", "a.d"));
        assert!(matches("{a,b}{c,d}", "bd"));
        assert!(matches("a{}b", "ab"));
        assert!(matches("a{,x}b", "ab"));
        assert!(matches("a.{b*,c?}", "a.bzz"));
        // Unbalanced braces are literal.
        assert!(matches("a{b", "a{b"));
        assert!(matches("a}b", "a}b"));
        assert!(matches("a}{b,c}", "a}c"));
        // A `.` inside braces splits the node first, as graphite-web does.
        assert!(matches("{a.b,c}", "{a.b,c}"));
        assert!(!matches("{a.b,c}", "a.b"));
    }

    #[test]
    fn backslashes_are_dropped() {
        assert!(matches(r"a\(b\)", "a(b)"));
        assert!(matches(r"a\.b", "a.b"));
    }

    #[test]
    fn brace_bombs_are_refused() {
        let bomb = "{a,b}".repeat(11);
        assert_eq!(PathPattern::parse(&bomb), Err(PatternError::TooManyVariants));
        let fine = "{a,b}".repeat(10);
        assert!(PathPattern::parse(&fine).unwrap().matches(&"ab".repeat(5)));
        let wide = |n: usize| format!("{{{}}}", (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(","));
        assert!(PathPattern::parse(&wide(MAX_VARIANTS)).unwrap().matches("1023"));
        assert_eq!(
            PathPattern::parse(&wide(MAX_VARIANTS + 1)),
            Err(PatternError::TooManyVariants)
        );
    }

    #[test]
    fn tagged_paths_match_their_canonical_key() {
        assert!(matches("cpu;host=a;dc=x", "cpu;dc=x;host=a"));
        assert!(!matches("cpu;host=a", "cpu;host=b"));
        assert!(!matches("cpu;host=*", "cpu;host=a"));
        assert!(matches!(
            PathPattern::parse("cpu;host"),
            Err(PatternError::InvalidTaggedPath(_))
        ));
    }

    #[test]
    fn exact_keys() {
        let exact = |p: &str| PathPattern::parse(p).unwrap().exact_key();
        assert_eq!(exact("a.b.c"), Some("a.b.c".into()));
        assert_eq!(exact(r"a\(1\)"), Some("a(1)".into()));
        assert_eq!(exact("a.{b}"), Some("a.b".into()));
        assert_eq!(exact("b;z=1;a=2"), Some("b;a=2;z=1".into()));
        for p in ["a.*", "a.?", "a.[bc]", "a.{b,c}"] {
            assert_eq!(exact(p), None, "{p}");
        }
    }

    fn node(path: &str, leaf: bool, branch: bool) -> FoundNode {
        FoundNode {
            path: path.into(),
            leaf,
            branch,
        }
    }

    #[test]
    fn find_lists_distinct_nodes_with_leaf_and_branch() {
        let keys = [
            "a.b", "a.b.c", "a.d.e", "a.d.f", "a.g", "x.y", "a", "cpu;a=1", "a.h;t=v",
        ];
        let find = |p: &str| PathPattern::parse(p).unwrap().find(keys.iter().copied());
        assert_eq!(
            find("a.*"),
            vec![
                node("a.b", true, true),
                node("a.d", false, true),
                node("a.g", true, false)
            ]
        );
        assert_eq!(find("*"), vec![node("a", true, true), node("x", false, true)]);
        assert_eq!(
            find("a.d.*"),
            vec![node("a.d.e", true, false), node("a.d.f", true, false)]
        );
        assert_eq!(find("a.{b,g}"), vec![node("a.b", true, true), node("a.g", true, false)]);
        assert_eq!(find("a.z"), vec![]);
        assert_eq!(find("cpu;a=1"), vec![]);
        assert_eq!(node("a.d.e", true, false).name(), "e");
        assert_eq!(node("a", true, false).name(), "a");
    }

    use proptest::prelude::*;

    proptest! {
        /// Any pattern parses (or is refused) and matches without a panic;
        /// a pattern without special characters matches exactly itself.
        #[test]
        fn any_pattern_matches_without_panic(pattern in "[ab.*?\\[\\]!{},\\\\-]{0,16}", key in "[ab.\\[]{0,8}") {
            if let Ok(p) = PathPattern::parse(&pattern) {
                p.matches(&key);
                p.find([key.as_str()]);
            }
        }

        #[test]
        fn literal_patterns_match_themselves(key in "[a-z0-9_.-]{0,12}", other in "[a-z0-9_.-]{0,12}") {
            let p = PathPattern::parse(&key).unwrap();
            prop_assert!(p.matches(&key));
            prop_assert_eq!(p.matches(&other), key == other);
            prop_assert_eq!(p.exact_key(), Some(key));
        }
    }
}
