//! JSON output of metricsctl and metricsd-bench, written by serde_json.
//! Each binary includes this file with `#[path]`, like `cli.rs`.
//!
//! Numbers are written as on the wire (`metricsd::protocol::number`):
//! the shortest text that reads back to the same f64, always with a `.` or
//! an exponent (`2.0`, `1e300`, `-0.0`), which is valid JSON for every
//! finite value. serde_json's own float text differs in form only (`1e+300`,
//! `0.00001`); this keeps the outputs byte for byte what they were.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::io;

/// serde_json's compact layout with the wire's number text.
struct WireNumbers;

impl serde_json::ser::Formatter for WireNumbers {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // serde_json hands over finite values only (it writes null for the
        // rest); the longest shortest text of an f64 is 24 bytes.
        let mut text = Vec::with_capacity(24);
        metricsd::protocol::number::write_value(&mut text, value);
        writer.write_all(&text)
    }
}

/// `value` as one line of JSON, with a final `\n`.
#[allow(dead_code)] // metricsd-bench returns its report as a string.
pub fn write_line(out: &mut impl io::Write, value: &impl Serialize) -> io::Result<()> {
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, WireNumbers);
    // `From` gives back the writer's own error, so a closed stdout is still
    // seen as one (`io::Error::other` hid its kind, BrokenPipe).
    value.serialize(&mut serializer).map_err(io::Error::from)?;
    out.write_all(b"\n")
}

/// `value` as JSON text, on one line without a final `\n`.
#[allow(dead_code)] // metricsctl writes lines only.
pub fn to_string(value: &impl Serialize) -> String {
    let mut text = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, WireNumbers);
    // Serializing into a Vec fails only for a map key that is not a string,
    // and every map here has string keys.
    value.serialize(&mut serializer).expect("JSON of string-keyed maps");
    String::from_utf8(text).expect("serde_json writes UTF-8")
}

/// A JSON object whose members keep the order given (a
/// `serde_json::Map` would sort them by name).
pub struct Ordered<K, V>(pub Vec<(K, V)>);

impl<K: Serialize, V: Serialize> Serialize for Ordered<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(value: &impl Serialize) -> String {
        let mut out = Vec::new();
        write_line(&mut out, value).expect("written to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(line(&"palm.cpu"), "\"palm.cpu\"\n");
        assert_eq!(line(&r#"a"b\c"#), "\"a\\\"b\\\\c\"\n");
        assert_eq!(line(&"\n\r\t"), "\"\\n\\r\\t\"\n");
        assert_eq!(line(&"\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"\n");
        assert_eq!(line(&"ж.😀/'<>"), "\"ж.😀/'<>\"\n");
    }

    #[test]
    fn numbers_are_the_wire_text_and_parse_back_bit_for_bit() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (2.0, "2.0"),
            (23.7, "23.7"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e16, "1e16"),
            (1e300, "1e300"),
            (1e-5, "1e-5"),
            (1e-7, "1e-7"),
            (5e-324, "5e-324"),
        ];
        for &(value, text) in cases {
            let out = to_string(&value);
            assert_eq!(out, text);
            let back: f64 = serde_json::from_str(&out).expect("valid JSON number");
            assert_eq!(back.to_bits(), value.to_bits(), "{out}");
        }
        for value in [f64::MAX, f64::MIN, f64::MIN_POSITIVE, -4.9e-324] {
            let back: f64 = serde_json::from_str(&to_string(&value)).expect("valid JSON number");
            assert_eq!(back.to_bits(), value.to_bits());
        }
    }

    #[test]
    fn ordered_objects_keep_their_order() {
        let object = Ordered(vec![("z", 1), ("a", 2), ("m", 3)]);
        assert_eq!(line(&object), "{\"z\":1,\"a\":2,\"m\":3}\n");
        assert_eq!(line(&Ordered::<&str, u8>(vec![])), "{}\n");
    }
}
