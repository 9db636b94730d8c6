//! Flag values that metricsd, metricsctl and metricsd-bench share, read
//! with [`metricsd::config`]'s parsers. Each binary includes this file with
//! `#[path]` (it is not a binary itself: Cargo looks for `main.rs` in a
//! directory).

use lexopt::ValueExt;
use metricsd::config;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Writes `text` and a newline to stdout (`--help`, `--version`). Never
/// `println!`, which panics when stdout is closed (`--help | head -1`).
pub fn print_line(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush())
}

/// The exit status once stdout is written. A reader that went away
/// (`| head -1`) is no failure: what it wanted was printed, so the exit is
/// quiet and 0, as ripgrep's and others' are (Rust ignores SIGPIPE, which
/// would end a C tool here, with 141 in the shell's `$?`). Another error
/// is one line on stderr, prefixed with `binary`, and status 1.
pub fn printed(binary: &str, result: io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: cannot write the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The value of a duration flag (`300`, `300s`, `5m`, `1h`, `0.5`), above
/// zero.
pub fn duration(flag: &'static str, parser: &mut lexopt::Parser) -> Result<Duration, lexopt::Error> {
    let text = parser.value()?.string()?;
    config::parse_duration(flag, &text).map_err(|e| lexopt::Error::Custom(Box::new(e)))
}

/// The value of a size flag in bytes (`65536`, `512KiB`, `64MiB`).
#[allow(dead_code)] // metricsctl and metricsd-bench have no size flag.
pub fn size(flag: &'static str, parser: &mut lexopt::Parser) -> Result<u64, lexopt::Error> {
    let text = parser.value()?.string()?;
    config::parse_size(flag, &text).map_err(|e| lexopt::Error::Custom(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(args: &[&str], read: fn(&'static str, &mut lexopt::Parser) -> Result<(), lexopt::Error>) -> String {
        let mut parser = lexopt::Parser::from_args(args);
        parser.next().unwrap();
        match read("--f", &mut parser) {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn values_are_read_and_refusals_name_the_flag() {
        let d = |flag, p: &mut lexopt::Parser| duration(flag, p).map(|d| assert_eq!(d, Duration::from_secs(300)));
        let s = |flag, p: &mut lexopt::Parser| size(flag, p).map(|s| assert_eq!(s, 64 << 20));
        assert_eq!(read(&["--f", "5m"], d), "ok");
        assert_eq!(read(&["--f=300"], d), "ok");
        assert_eq!(read(&["--f", "64MiB"], s), "ok");
        assert_eq!(
            read(&["--f", "5q"], d),
            "--f takes a duration such as 300, 300s, 5m or 1h, not \"5q\""
        );
        assert_eq!(
            read(&["--f", "5q"], s),
            "--f takes a size such as 65536, 512KiB or 64MiB, not \"5q\""
        );
        assert!(read(&["--f"], d).contains("missing argument"), "{}", read(&["--f"], d));
    }
}
