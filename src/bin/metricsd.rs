//! The metricsd server executable.

use metricsd::server::{Config, Server};
use std::process::ExitCode;

const USAGE: &str = "\
usage: metricsd [OPTIONS]

A metrics server speaking the plain-text put/get protocol over TCP.

options:
  --listen ADDR              address to listen on [default: 127.0.0.1:8888]
                             (port 0 picks a free port)
  --max-line-bytes N         longest request line; longer ones are answered
                             with an error and skipped [default: 65536]
  --max-pending-output N     unsent answer bytes above which a connection's
                             requests are no longer read [default: 4194304]
  --max-connections N        connections above this are closed at once
                             [default: 10000]
  -h, --help                 print this help
  -V, --version              print the version

Logging goes to stderr; RUST_LOG (error, warn, info, debug) sets the level
[default: info].";

/// Smallest accepted `--max-line-bytes`: the shortest meaningful request is
/// `get k`, but a bound this low only makes sense in tests.
const MIN_MAX_LINE_BYTES: usize = 8;
/// Largest accepted `--max-line-bytes`: a partial line is buffered up to this
/// size per connection, so the limit multiplies by the number of connections;
/// 64 MiB is far beyond any metric line and still a bound.
const MAX_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

enum Action {
    Run(Config),
    Help,
    Version,
}

fn parse_args() -> Result<Action, lexopt::Error> {
    use lexopt::prelude::*;
    let mut config = Config::default();
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("listen") => config.listen = parser.value()?.string()?,
            Long("max-line-bytes") => {
                config.limits.max_line_bytes = in_range(
                    "--max-line-bytes",
                    parser.value()?.parse()?,
                    MIN_MAX_LINE_BYTES,
                    MAX_MAX_LINE_BYTES,
                )?
            }
            Long("max-pending-output") => {
                config.limits.max_pending_output =
                    in_range("--max-pending-output", parser.value()?.parse()?, 1, usize::MAX)?
            }
            Long("max-connections") => {
                config.max_connections = in_range("--max-connections", parser.value()?.parse()?, 1, usize::MAX)?
            }
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(Action::Run(config))
}

fn in_range(flag: &str, value: usize, min: usize, max: usize) -> Result<usize, lexopt::Error> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{flag} must be between {min} and {max}, not {value}").into())
    }
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(Action::Run(config)) => config,
        Ok(Action::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Action::Version) => {
            println!("metricsd {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("metricsd: {e} (see 'metricsd --help')");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("metricsd: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    // Printed whatever RUST_LOG says: scripts and tests read the real port here.
    eprintln!("listening on {}", server.local_addr());
    log::info!(
        "limits: max line {} bytes, max pending output {} bytes, max connections {}",
        config.limits.max_line_bytes,
        config.limits.max_pending_output,
        config.max_connections
    );
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metricsd: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}
