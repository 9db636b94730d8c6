//! Query strings and `application/x-www-form-urlencoded` bodies: `&`
//! separated `name=value` pairs, `+` a space and `%XX` a byte, as browsers
//! and Grafana encode them (and as graphite-web's Django decodes them).

/// Percent-decoding with `+` as a space: graphite-web's own.
use crate::graphite::render::unquote_plus as decode;

/// The fields of a request: the query string's, then the form body's, in
/// order. As in graphite-web (Django's `QueryDict`), a single-valued field
/// is its last value and `target` takes every value.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Adds the pairs of one query string or form body. Invalid UTF-8
    /// becomes U+FFFD; a `%` not followed by two hex digits is kept as it
    /// is, so Grafana's unencoded find queries (`query=servers.*`) and a
    /// stray `%` in a glob pass through.
    pub fn add(&mut self, encoded: &[u8]) {
        for pair in encoded.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            self.0.push((decode(name), decode(value)));
        }
    }

    /// The last value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(decode(b"a+b%20c%2C%5C1"), "a b c,\\1");
        assert_eq!(decode(b"100%"), "100%");
        assert_eq!(decode(b"%zz%4"), "%zz%4");
        assert_eq!(decode(b"%C3%A9"), "é");
        assert_eq!(decode(b"%FF"), "\u{fffd}");
        assert_eq!(decode(b"servers.{web1,db1}.*"), "servers.{web1,db1}.*");
    }

    #[test]
    fn fields_in_order_last_wins() {
        let mut fields = Fields::default();
        fields.add(b"target=a&from=-1h&&flag");
        fields.add(b"target=b&from=-2h");
        assert_eq!(fields.all("target").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(fields.get("from"), Some("-2h"));
        assert_eq!(fields.get("flag"), Some(""));
        assert_eq!(fields.get("until"), None);
    }
}
