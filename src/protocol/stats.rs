//! The answer to `stats`: `ok`, one `<name> <value>` line per figure, and
//! the empty line. Names are dotted and lower case, without spaces, so a
//! client splits each line at its one space.

use std::io::Write;

/// Writes the `stats` answer listing `figures` in the order given.
pub fn write_stats<'a>(out: &mut Vec<u8>, figures: impl IntoIterator<Item = (&'a str, u64)>) {
    out.extend_from_slice(b"ok\n");
    for (name, value) in figures {
        debug_assert!(!name.is_empty() && !name.contains([' ', '\n']));
        // Writing to a Vec cannot fail.
        let _ = writeln!(out, "{name} {value}");
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_figure_between_ok_and_the_empty_line() {
        let mut out = Vec::new();
        write_stats(&mut out, [("points", 3), ("log.bytes", u64::MAX)]);
        assert_eq!(out, b"ok\npoints 3\nlog.bytes 18446744073709551615\n\n");
        let mut none = Vec::new();
        write_stats(&mut none, []);
        assert_eq!(none, b"ok\n\n");
    }
}
