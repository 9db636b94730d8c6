//! The fields of a point, checked as the server checks them, with a message
//! for people when they are wrong. Shared by the command line and `import`.

use crate::time;
use metricsd::protocol::number::{parse_timestamp, parse_value};
use metricsd::protocol::{is_valid_key, Agg};

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

/// Above this a timestamp is taken for milliseconds: 10^11 seconds is the
/// year 5138, while 10^11 milliseconds is 1973, so a millisecond clock has
/// read more than this ever since and no plausible time in seconds does.
const MILLISECONDS_ABOVE: i64 = 100_000_000_000;

/// Why `ts` looks like milliseconds, when it does: what it is as seconds,
/// which the server takes, and what it would be read as milliseconds.
pub fn milliseconds_warning(ts: i64) -> Option<String> {
    (ts > MILLISECONDS_ABOVE).then(|| {
        format!(
            "warning: timestamp {ts} looks like milliseconds, but timestamps are seconds: it is {}, \
             where {} would be {}",
            time::utc(ts),
            ts / 1000,
            time::utc(ts / 1000)
        )
    })
}

/// The one line that tells a `get` of `key` that found nothing that only
/// a bare `*` is a wildcard, when `key` holds a `*` that was perhaps meant
/// as one (`raw.*`).
pub fn wildcard_note(key: &str) -> Option<String> {
    (key != "*" && key.contains('*'))
        .then(|| format!("note: only a bare '*' is a wildcard; {key:?} was looked up as one key, which has no points"))
}

/// An aggregate function by its name on the wire.
pub fn agg(text: &str) -> Result<Agg, String> {
    Agg::from_name(text.as_bytes())
        .ok_or_else(|| format!("invalid aggregate {text:?}: one of avg, min, max, sum, count or last"))
}
