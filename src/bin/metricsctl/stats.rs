//! What `stats` prints: the server's figures as a table for people, as the
//! server's lines, or as JSON.
//!
//! The server names its figures with their unit (docs/PROTOCOL.md's `stats`
//! section, `src/engine/stats.rs`): `uptime_seconds`, `bytes.in`,
//! `output.pending_bytes`, `log.last_fsync_unix`. The table reads the unit
//! from the name, so figures added later are shown well if they follow the
//! same naming; anything else is shown as the server sent it.

use crate::{json, time};
use std::io::{self, Write};

/// Figures as the client returns them: (name, value), in the server's order.
pub type Figures = [(String, String)];

/// Two aligned columns, name and value, values in readable units.
pub fn human(out: &mut impl Write, figures: &Figures) -> io::Result<()> {
    let width = figures.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
    for (name, value) in figures {
        writeln!(out, "{name:<width$}  {}", readable(name, value))?;
    }
    Ok(())
}

/// `<name> <value>` lines, as the server sends them.
pub fn raw(out: &mut impl Write, figures: &Figures) -> io::Result<()> {
    for (name, value) in figures {
        writeln!(out, "{name} {value}")?;
    }
    Ok(())
}

/// One JSON object, `{"name":value,...}`, in the server's order. Integer
/// values are JSON numbers; any other value (none today) is a string, so
/// that the object is valid whatever a server sends.
pub fn json(out: &mut impl Write, figures: &Figures) -> io::Result<()> {
    let members = figures.iter().map(|(name, value)| {
        // Written from the parsed number: `+5` or `007` parse, but are not
        // JSON.
        let value = match (value.parse::<u64>(), value.parse::<i64>()) {
            (Ok(n), _) => serde_json::Value::from(n),
            (_, Ok(n)) => serde_json::Value::from(n),
            _ => serde_json::Value::from(value.as_str()),
        };
        (name.as_str(), value)
    });
    json::write_line(out, &json::Ordered(members.collect()))
}

/// `value` in the unit its name gives: a duration for `*_seconds`, a UTC
/// time for `*_unix` (0: never), a size for names with a `bytes` word.
fn readable(name: &str, value: &str) -> String {
    let Ok(n) = value.parse::<u64>() else {
        return value.to_owned();
    };
    let words = || name.split(['.', '_']);
    if name.ends_with("_seconds") {
        time::duration(n)
    } else if name.ends_with("_unix") {
        match i64::try_from(n) {
            Ok(0) => "never".to_owned(),
            Ok(ts) => time::utc(ts),
            Err(_) => value.to_owned(),
        }
    } else if words().any(|w| w == "bytes") {
        size(n)
    } else {
        value.to_owned()
    }
}

/// Bytes in binary units with one decimal (`1.5 KiB`), or `512 B`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // f64 keeps 53 bits: exact enough for one decimal of any u64.
    let mut scaled = bytes as f64 / 1024.0;
    let mut unit = 0;
    // Moves up at 1023.95 rather than 1024, which one decimal would show
    // as `1024.0 KiB`.
    while scaled >= 1023.95 && unit < UNITS.len() - 1 {
        scaled /= 1024.0;
        unit += 1;
    }
    format!("{scaled:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("write to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn the_table_aligns_and_reads_units_from_names() {
        let figures = figures(&[
            ("uptime_seconds", "93784"),
            ("points", "3"),
            ("bytes.in", "1572864"),
            ("output.pending_bytes", "12"),
            ("log.last_fsync_unix", "1150864247"),
            ("log.last_compaction_unix", "0"),
            ("odd", "a-string"),
        ]);
        assert_eq!(
            render(|out| human(out, &figures)),
            "\
uptime_seconds            1d 02:03:04
points                    3
bytes.in                  1.5 MiB
output.pending_bytes      12 B
log.last_fsync_unix       2006-06-21 04:30:47Z
log.last_compaction_unix  never
odd                       a-string
"
        );
    }

    #[test]
    fn raw_and_json() {
        let figures = figures(&[("points", "3"), ("series", "+1"), ("x\"y", "-2"), ("version", "1.2.3")]);
        assert_eq!(
            render(|out| raw(out, &figures)),
            "points 3\nseries +1\nx\"y -2\nversion 1.2.3\n"
        );
        let text = render(|out| json(out, &figures));
        assert_eq!(
            text,
            "{\"points\":3,\"series\":1,\"x\\\"y\":-2,\"version\":\"1.2.3\"}\n"
        );
        serde_json::from_str::<serde_json::Value>(&text).expect("valid JSON");
        assert_eq!(render(|out| json(out, &[])), "{}\n");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(1024), "1.0 KiB");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(size(64 * 1024 * 1024), "64.0 MiB");
        assert_eq!(size(5 << 30), "5.0 GiB");
        assert_eq!(size(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn units_only_where_the_name_says_so() {
        assert_eq!(readable("bytes.out", "2048"), "2.0 KiB");
        assert_eq!(readable("log.bytes", "10"), "10 B");
        assert_eq!(readable("requests.bytesize", "2048"), "2048");
        assert_eq!(readable("errors.line_too_long", "5"), "5");
        assert_eq!(readable("uptime_seconds", "soon"), "soon");
        assert_eq!(readable("x_unix", "18446744073709551615"), "18446744073709551615");
    }
}
