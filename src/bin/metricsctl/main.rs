//! metricsctl: a command-line client of metricsd for people, built on the
//! crate's blocking [`Client`] alone (it builds without the `server`
//! feature).
//!
//! `put` stores a point and prints nothing, `get` shows series (a line of
//! figures and a sparkline, then the points with UTC times; `--raw` and
//! `--json` for programs; `--from`/`--to` for a window, `--step`/`--agg`
//! for its buckets, sent as `range`), `stats` shows the server's figures, `import`
//! stores `KEY VALUE TS` lines from stdin in pipelined batches. Modules:
//!
//! - `args`: the command line;
//! - `fields`: keys, values and timestamps checked as the server checks
//!   them, with messages for people;
//! - `series`, `stats`: what `get` and `stats` print;
//! - `import`: reading, checking and sending points in batches;
//! - `time`, `spark`: UTC dates and durations, sparklines;
//! - `json` (shared with metricsd-bench): JSON text through serde_json.
//!
//! Every failure is one line on stderr, `metricsctl: ...`; the exit status
//! is 2 for a bad command line and 1 for anything else. A closed stdout is
//! no failure (`metricsctl get '*' | head -1` exits 0, quietly).

mod args;
#[path = "../common/cli.rs"]
mod cli;
mod fields;
mod import;
#[path = "../common/json.rs"]
mod json;
mod series;
mod spark;
mod stats;
mod time;

use args::{Action, Command, Format, Options, Window};
use metricsd::{Client, ClientError};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Why a command failed, after its command line was read.
enum Failure {
    /// The connection could not be opened.
    Connect(ClientError),
    /// A request failed; `what` names it (`get palm.cpu`).
    Request {
        what: String,
        cause: ClientError,
    },
    Import(import::Failure),
    /// Writing to stdout failed.
    Output(io::Error),
}

fn main() -> ExitCode {
    // An empty variable counts as unset, as shells make it easy to leave one.
    let env_addr = std::env::var_os(args::ADDR_VARIABLE).filter(|v| !v.is_empty());
    let options = match args::parse(lexopt::Parser::from_env(), env_addr) {
        Ok(Action::Run(options)) => options,
        Ok(Action::Help) => return cli::printed("metricsctl", cli::print_line(&args::usage())),
        Ok(Action::Version) => {
            let version = format!("metricsctl {}", env!("CARGO_PKG_VERSION"));
            return cli::printed("metricsctl", cli::print_line(&version));
        }
        Err(e) => {
            eprintln!("metricsctl: {e} (see 'metricsctl --help')");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Output(e)) => cli::printed("metricsctl", Err(e)),
        Err(failure) => {
            eprintln!("metricsctl: {}", message(&failure, &options));
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), Failure> {
    let mut client =
        Client::new(&options.addr.host, options.addr.port, Some(options.timeout)).map_err(Failure::Connect)?;
    let request = |what: String| move |cause| Failure::Request { what, cause };
    match &options.command {
        Command::Put { key, value, timestamp } => {
            if let Some(warning) = timestamp.and_then(fields::milliseconds_warning) {
                eprintln!("metricsctl: {warning}; stored as given");
            }
            client
                .put(key, *value, *timestamp)
                .map_err(request(format!("put {key}")))
        }
        Command::Get { key, format, window } => {
            let metrics = match window {
                None => client.get(key).map_err(request(format!("get {key}")))?,
                Some(Window {
                    from,
                    to,
                    buckets: None,
                }) => client
                    .range(key, *from, *to)
                    .map_err(request(format!("range {key} {from} {to}")))?,
                Some(Window {
                    from,
                    to,
                    buckets: Some((step, agg)),
                }) => client
                    .range_agg(key, *from, *to, *step, *agg)
                    .map_err(request(format!("range {key} {from} {to} {step} {}", agg.name())))?,
            };
            print(|out| match format {
                Format::Human => series::human(out, key, &metrics, window.and_then(|w| w.buckets)),
                Format::Raw => series::raw(out, &metrics),
                Format::Json => series::json(out, &metrics),
            })
            .map_err(Failure::Output)?;
            if let Some(note) = fields::wildcard_note(key).filter(|_| metrics.is_empty()) {
                eprintln!("metricsctl: {note}");
            }
            Ok(())
        }
        Command::Delete { keys } => keys
            .iter()
            .try_for_each(|key| client.delete(key).map_err(request(format!("delete {key}")))),
        Command::Stats { format } => {
            let figures = client.stats().map_err(request("stats".to_owned()))?;
            print(|out| match format {
                Format::Human => stats::human(out, &figures),
                Format::Raw => stats::raw(out, &figures),
                Format::Json => stats::json(out, &figures),
            })
            .map_err(Failure::Output)
        }
        Command::Import => {
            let stdin = io::stdin();
            if stdin.is_terminal() {
                eprintln!("reading points from the terminal, one 'KEY VALUE TS' a line; end with Ctrl-D");
            }
            let start = Instant::now();
            let points = import::import(&mut client, stdin.lock()).map_err(Failure::Import)?;
            eprintln!("{}", import::summary(points, start.elapsed()));
            Ok(())
        }
    }
}

/// Runs `write` on a buffered stdout and flushes it. Never `println!`,
/// which panics when stdout is closed.
fn print(write: impl FnOnce(&mut BufWriter<io::StdoutLock<'static>>) -> io::Result<()>) -> io::Result<()> {
    let mut out = BufWriter::new(io::stdout().lock());
    write(&mut out).and_then(|()| out.flush())
}

/// The one line that says what went wrong.
fn message(failure: &Failure, options: &Options) -> String {
    let addr = &options.addr.text;
    let client = |cause: &ClientError| describe(cause, options.timeout);
    match failure {
        Failure::Connect(cause) => client(cause),
        Failure::Request { what, cause } => format!("{addr}: {what}: {}", client(cause)),
        Failure::Output(e) => format!("cannot write the output: {}", plain(e)),
        Failure::Import(import::Failure { stop, stored }) => {
            let before = series::points(*stored);
            match stop {
                import::Stop::BadLine { line, cause } => {
                    format!("line {line}: {cause}; stopped there, after storing the {before} before it")
                }
                import::Stop::Input { line, cause } => format!(
                    "cannot read line {line} of the input: {}; stopped there, after storing the {before} before it",
                    plain(cause)
                ),
                import::Stop::Store { first, last, cause } => format!(
                    "{addr}: storing lines {first}-{last}: {}; stopped there: the {before} before line {first} \
                     are stored, those of lines {first}-{last} may be in part",
                    client(cause)
                ),
            }
        }
    }
}

/// A client error for people: I/O errors without their OS error number,
/// timeouts with the limit that was hit.
fn describe(cause: &ClientError, timeout: Duration) -> String {
    let timed_out = || format!("timed out after {timeout:?} (see --timeout)");
    match cause {
        ClientError::Connect { addr, source } if source.kind() == io::ErrorKind::TimedOut => {
            format!("cannot connect to {addr}: {}", timed_out())
        }
        ClientError::Connect { addr, source } => format!("cannot connect to {addr}: {}", plain(source)),
        ClientError::Io(e) => plain(e),
        ClientError::Timeout => timed_out(),
        other => other.to_string(),
    }
}

/// An I/O error's text without std's ` (os error N)` suffix: `Connection
/// refused` says it all to a person.
fn plain(e: &io::Error) -> String {
    let text = e.to_string();
    match (e.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_owned(),
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_lose_their_os_error_number() {
        let refused = io::Error::from_raw_os_error(111);
        assert!(refused.to_string().ends_with("(os error 111)"), "{refused}");
        assert!(!plain(&refused).contains("os error"), "{}", plain(&refused));
        let custom = io::Error::other("disk on fire (os error 5)");
        assert_eq!(plain(&custom), "disk on fire (os error 5)");
    }

    #[test]
    fn timeouts_name_their_limit() {
        assert_eq!(
            describe(&ClientError::Timeout, Duration::from_millis(1500)),
            "timed out after 1.5s (see --timeout)"
        );
        assert_eq!(
            describe(&ClientError::Closed, Duration::from_secs(1)),
            "connection closed by the server"
        );
        let connect = |kind: io::ErrorKind| ClientError::Connect {
            addr: "h:1".to_owned(),
            source: kind.into(),
        };
        assert_eq!(
            describe(&connect(io::ErrorKind::TimedOut), Duration::from_secs(2)),
            "cannot connect to h:1: timed out after 2s (see --timeout)"
        );
        assert_eq!(
            describe(&connect(io::ErrorKind::ConnectionRefused), Duration::from_secs(2)),
            "cannot connect to h:1: connection refused"
        );
    }
}
