//! The little JSON this tool writes, by hand: strings and finite numbers.

use std::fmt::Write;

/// Appends `text` as a JSON string, quoted and escaped (RFC 8259 §7).
///
/// Keys cannot hold control characters, but stats names come from the
/// server unchecked, so everything JSON requires is escaped. Other
/// characters, non-ASCII included, are written as they are: JSON text is
/// UTF-8.
pub fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Writing to a String cannot fail.
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a finite `value` as a JSON number that parses back to the same
/// f64: Rust's `{:?}` is the shortest such text (`0.5`, `2.0`, `-0.0`,
/// `1e300`, `1e-7`), and every form it takes for a finite number is in
/// JSON's grammar (digits before any `.`, digits after it, an exponent of
/// digits with an optional `-`). Values from a server are finite: the
/// protocol's parser refuses the rest.
pub fn number(out: &mut String, value: f64) {
    debug_assert!(value.is_finite());
    let _ = write!(out, "{value:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted(text: &str) -> String {
        let mut out = String::new();
        string(&mut out, text);
        out
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(quoted("palm.cpu"), r#""palm.cpu""#);
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("\n\r\t"), r#""\n\r\t""#);
        assert_eq!(quoted("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(quoted("ж.😀/'<>"), "\"ж.😀/'<>\"");
        assert_eq!(quoted(""), r#""""#);
    }

    #[test]
    fn strings_parse_back() {
        for text in [r#"a"b\c"#, "x\u{1}y\u{1b}z", "ж.😀", "\\\"", "tab\there"] {
            let back: String = serde_json::from_str(&quoted(text)).expect("valid JSON string");
            assert_eq!(back, text);
        }
    }

    #[test]
    fn numbers_are_valid_json_and_parse_back_bit_for_bit() {
        for value in [
            0.0,
            -0.0,
            2.0,
            0.5,
            -1.0,
            23.7,
            0.1 + 0.2,
            4_200_000.0,
            1e16,
            1e300,
            -1e300,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
        ] {
            let mut out = String::new();
            number(&mut out, value);
            let back: serde_json::Value = serde_json::from_str(&out).expect("valid JSON number");
            let back = back.as_f64().expect("a number");
            assert_eq!(back.to_bits(), value.to_bits(), "{out}");
        }
    }
}
