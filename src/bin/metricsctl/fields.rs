//! The fields of a point, checked as the server checks them, with a message
//! for people when they are wrong. Shared by the command line and `import`.

use metricsd::protocol::is_valid_key;
use metricsd::protocol::number::{parse_timestamp, parse_value};

/// A key for `get`: `*` (every series) or a key the server stores.
pub fn get_key(text: &str) -> Result<&str, String> {
    if is_valid_key(text) {
        Ok(text)
    } else {
        Err(format!(
            "invalid key {text:?}: a key is one or more characters, none of them whitespace or control"
        ))
    }
}

/// A key for `put`: as for `get`, but not `*`.
pub fn put_key(text: &str) -> Result<&str, String> {
    if text == "*" {
        return Err("'*' is not a key to put: it means every key in get".to_owned());
    }
    get_key(text)
}

/// A key to delete: any key but `*`.
pub fn delete_key(text: &str) -> Result<&str, String> {
    if text == "*" {
        return Err("'*' is not a key to delete: delete names each key".to_owned());
    }
    get_key(text)
}

/// A finite decimal number, as the server accepts it (`23.7`, `-1`, `1e-3`).
pub fn value(text: &str) -> Result<f64, String> {
    parse_value(text.as_bytes()).map_err(|_| format!("invalid value {text:?}: not a finite decimal number"))
}

/// Whole Unix seconds, any signed 64-bit integer.
pub fn timestamp(text: &str) -> Result<i64, String> {
    parse_timestamp(text.as_bytes()).map_err(|_| format!("invalid timestamp {text:?}: not a whole number of seconds"))
}
