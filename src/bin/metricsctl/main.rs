//! metricsctl: a command-line client of metricsd for people, built on the
//! crate's blocking [`Client`] alone (it builds without the `server`
//! feature).
//!
//! `put` stores a point and prints nothing, `get` shows series (a line of
//! figures and a sparkline, then the points with UTC times; `--raw` and
//! `--json` for programs), `stats` shows the server's figures, `import`
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
//! is 2 for a bad command line and 1 for anything else.

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

use args::{Action, Command, Format, Options};
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
        Ok(Action::Help) => {
            println!("{}", args::usage());
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!("metricsctl {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("metricsctl: {e} (see 'metricsctl --help')");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`metricsctl get '*' | head`): what it
        // wanted was printed, so there is nothing to report (as ripgrep
        // and others do; Rust ignores SIGPIPE, which would end a C tool
        // silently here).
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
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
        Command::Put { key, value, timestamp } => client
            .put(key, *value, *timestamp)
            .map_err(request(format!("put {key}"))),
        Command::Get { key, format } => {
            let metrics = client.get(key).map_err(request(format!("get {key}")))?;
            print(|out| match format {
                Format::Human => series::human(out, key, &metrics),
                Format::Raw => series::raw(out, &metrics),
                Format::Json => series::json(out, &metrics),
            })
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

/// Runs `write` on a buffered stdout and flushes it.
fn print(write: impl FnOnce(&mut BufWriter<io::StdoutLock<'static>>) -> io::Result<()>) -> Result<(), Failure> {
    let mut out = BufWriter::new(io::stdout().lock());
    write(&mut out).and_then(|()| out.flush()).map_err(Failure::Output)
}

/// The one line that says what went wrong.
fn message(failure: &Failure, options: &Options) -> String {
    let addr = &options.addr.text;
    let client = |cause: &ClientError| describe(cause, options.timeout);
    match failure {
        Failure::Connect(cause) => format!("cannot connect to {addr}: {}", client(cause)),
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
    match cause {
        ClientError::Io(e) => plain(e),
        ClientError::Timeout => format!("timed out after {timeout:?} (see --timeout)"),
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
    }
}
