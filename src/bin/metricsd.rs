//! The metricsd server executable.

#[path = "common/cli.rs"]
mod cli;

use cli::{duration, print_line, printed, size};
use metricsd::config::{
    Fsync, OnFull, DEFAULT_COMPACT_MIN_BYTES, DEFAULT_DATA_DIR, DEFAULT_FSYNC, DEFAULT_IDLE_TIMEOUT, DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_LINE_BYTES, DEFAULT_MAX_OUTPUT_MEMORY, DEFAULT_MAX_PENDING_OUTPUT,
    DEFAULT_ON_MEMORY_FULL, DEFAULT_SELF_METRICS_INTERVAL, DEFAULT_SELF_METRICS_PREFIX, GRAPHITE_CUSTOMARY_PORT,
};
use metricsd::journal;
use metricsd::protocol::is_valid_key;
use metricsd::server::{Config, Handle, SelfMetrics, Server, SHUTDOWN_GRACE};
use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// The `--help` text, with the defaults of `metricsd::config`.
fn usage() -> String {
    let off_or = |d: Option<Duration>| d.map_or("off".to_owned(), |d| format!("{}s", d.as_secs_f64()));
    format!(
        "\
usage: metricsd [OPTIONS]

A metrics server speaking the plain-text put/get protocol over TCP, and
Graphite's plaintext protocol when asked.

options:
  --listen HOST:PORT         address to listen on [default: {DEFAULT_LISTEN}]
                             (port 0 picks a free port)
  --max-line-bytes SIZE      longest request line; longer ones are answered
                             with an error and skipped [default: {DEFAULT_MAX_LINE_BYTES}]
  --max-pending-output SIZE  unsent answer bytes above which a connection's
                             requests are no longer read [default: {DEFAULT_MAX_PENDING_OUTPUT}]
  --max-output-memory SIZE   unsent answer bytes of all connections together
                             above which long answers wait (64 KiB per
                             connection always pass) [default: {DEFAULT_MAX_OUTPUT_MEMORY}]
  --max-connections N        connections above this are closed at once
                             [default: {DEFAULT_MAX_CONNECTIONS}]
  --idle-timeout DURATION    close connections that send no whole request
                             and take no answer for this long [default: {idle}]

graphite:
  --graphite-listen HOST:PORT
                             also take Graphite plaintext lines ('<path>
                             <value> [<timestamp>]') over TCP and UDP on this
                             address; agents send to port {GRAPHITE_CUSTOMARY_PORT} by default
                             [default: off]. Nothing is ever answered; bad
                             lines are skipped and counted in 'stats'. The
                             limits above apply to its connections too.
  --http-listen HOST:PORT    also serve the Graphite-compatible HTTP API
                             (for Grafana) and a page of charts on this
                             address [default: off; e.g. 127.0.0.1:8080]

storage:
  --data-dir DIR             where the log and snapshots live (created if
                             missing; one server per directory)
                             [default: {DEFAULT_DATA_DIR}]
  --in-memory                keep nothing on disk: a restart forgets all
  --fsync POLICY             when an acknowledged put is on disk:
                               always    before its ok (one fsync per loop
                                         turn covers all puts of the turn)
                               everysec  within about a second: a power loss
                                         can take the last second of puts
                               never     when the kernel writes it back
                             [default: {DEFAULT_FSYNC}]
  --repair                   start even if a data file is damaged before its
                             end, keeping what comes before the damage
  --compact-min-bytes SIZE   compact the log into a snapshot once it is this
                             large and larger than the last snapshot
                             [default: {DEFAULT_COMPACT_MIN_BYTES}]

retention and memory:
  --retention DURATION       forget points whose timestamp is older than now
                             minus this (at least 1s; puts older are refused)
                             [default: keep forever]
  --max-memory SIZE          bytes the stored points, keys and indexes may
                             take; puts beyond are refused [default: no limit]
  --on-memory-full POLICY    at --max-memory:
                               reject       refuse the put, keep all stored
                               drop-oldest  drop the oldest chunks of points
                                            (of all series) to make room
                             [default: {DEFAULT_ON_MEMORY_FULL}]

self-monitoring:
  --self-metrics-interval DURATION
                             also store the figures of the 'stats' request as
                             series, this often [default: {interval}]
  --self-metrics-prefix P    name prefix of those series [default: {DEFAULT_SELF_METRICS_PREFIX}]
  -h, --help                 print this help
  -V, --version              print the version

A DURATION is seconds or a number with a unit: 300, 0.5, 300s, 5m, 1h, 2d,
1w. A SIZE is bytes or a whole number of KiB, MiB, GiB or TiB: 65536,
512KiB, 64MiB.

SIGINT or SIGTERM stops gracefully: no new connections or requests, what
was read is answered (for up to {grace} s), the log is synced, exit status 0.
A second SIGINT or SIGTERM exits at once. SIGHUP, SIGUSR1 and SIGUSR2 are
ignored, with a warning in the log (there is no configuration to reload and
no log file to reopen).

Logging goes to stderr; RUST_LOG (error, warn, info, debug) sets the level
[default: info].",
        idle = off_or(DEFAULT_IDLE_TIMEOUT),
        interval = off_or(DEFAULT_SELF_METRICS_INTERVAL),
        grace = SHUTDOWN_GRACE.as_secs(),
    )
}

/// Smallest accepted `--max-line-bytes`: the shortest meaningful request is
/// `get k`, but a bound this low only makes sense in tests.
const MIN_MAX_LINE_BYTES: usize = 8;
/// Largest accepted `--max-line-bytes`: a partial line is buffered up to this
/// size per connection, so the limit multiplies by the number of connections;
/// 64 MiB is far beyond any metric line and still a bound.
const MAX_MAX_LINE_BYTES: usize = 64 * 1024 * 1024;

enum Action {
    // Boxed: the server's configuration is some 240 bytes, and the other
    // variants none (clippy's large_enum_variant).
    Run(Box<Config>),
    Help,
    Version,
}

fn parse_args() -> Result<Action, lexopt::Error> {
    use lexopt::prelude::*;
    let mut config = Config {
        idle_timeout: DEFAULT_IDLE_TIMEOUT,
        ..Config::default()
    };
    let mut storage = journal::Options::new(DEFAULT_DATA_DIR);
    let (mut in_memory, mut data_dir_given) = (false, false);
    let (mut self_metrics_interval, mut self_metrics_prefix) = (DEFAULT_SELF_METRICS_INTERVAL, None);
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            Long("listen") => config.listen = parser.value()?.string()?,
            Long("graphite-listen") => config.graphite_listen = Some(parser.value()?.string()?),
            Long("http-listen") => config.http_listen = Some(parser.value()?.string()?),
            Long("max-line-bytes") => {
                config.limits.max_line_bytes = in_range(
                    "--max-line-bytes",
                    size("--max-line-bytes", &mut parser)?,
                    MIN_MAX_LINE_BYTES,
                    MAX_MAX_LINE_BYTES,
                )?
            }
            Long("max-pending-output") => {
                config.limits.max_pending_output = in_range(
                    "--max-pending-output",
                    size("--max-pending-output", &mut parser)?,
                    1,
                    usize::MAX,
                )?
            }
            Long("max-output-memory") => {
                config.max_output_memory = in_range(
                    "--max-output-memory",
                    size("--max-output-memory", &mut parser)?,
                    0,
                    usize::MAX,
                )?
            }
            Long("max-connections") => {
                config.max_connections = in_range("--max-connections", parser.value()?.parse()?, 1, usize::MAX)?
            }
            Long("data-dir") => {
                storage.dir = PathBuf::from(parser.value()?);
                data_dir_given = true;
            }
            Long("in-memory") => in_memory = true,
            Long("fsync") => storage.fsync = parser.value()?.parse::<Fsync>()?,
            Long("repair") => storage.repair = true,
            Long("compact-min-bytes") => storage.compact_min_bytes = size("--compact-min-bytes", &mut parser)?,
            Long("retention") => {
                let retention = duration("--retention", &mut parser)?;
                if retention.as_secs() == 0 {
                    return Err("--retention takes at least 1s: timestamps are whole seconds".into());
                }
                config.store.retention = Some(retention);
            }
            Long("max-memory") => config.store.max_bytes = Some(size("--max-memory", &mut parser)?),
            Long("on-memory-full") => config.store.on_full = parser.value()?.parse::<OnFull>()?,
            Long("idle-timeout") => config.idle_timeout = Some(duration("--idle-timeout", &mut parser)?),
            Long("self-metrics-interval") => {
                self_metrics_interval = Some(duration("--self-metrics-interval", &mut parser)?)
            }
            Long("self-metrics-prefix") => self_metrics_prefix = Some(parser.value()?.string()?),
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            _ => return Err(arg.unexpected()),
        }
    }
    if config.store.on_full != DEFAULT_ON_MEMORY_FULL && config.store.max_bytes.is_none() {
        return Err("--on-memory-full needs --max-memory".into());
    }
    if in_memory && data_dir_given {
        return Err("--in-memory and --data-dir cannot go together".into());
    }
    // Before anything touches the data directory: a typo in --listen must
    // not leave a directory behind.
    check_listen("--listen", &config.listen, DEFAULT_LISTEN)?;
    if let Some(listen) = &config.graphite_listen {
        check_listen(
            "--graphite-listen",
            listen,
            &format!("127.0.0.1:{GRAPHITE_CUSTOMARY_PORT}"),
        )?;
    }
    if let Some(listen) = &config.http_listen {
        check_listen("--http-listen", listen, "127.0.0.1:8080")?;
    }
    if !in_memory {
        // Absolute from here on, so that every message and the start-up
        // log say where the data is whatever the working directory was.
        storage.dir = std::path::absolute(&storage.dir).map_err(|e| match storage.dir.as_os_str().is_empty() {
            true => "--data-dir takes a directory, not \"\"".to_owned(),
            false => format!("cannot make --data-dir {} absolute: {e}", storage.dir.display()),
        })?;
        config.storage = Some(storage);
    }
    config.self_metrics = match (self_metrics_interval, self_metrics_prefix) {
        (None, None) => None,
        (None, Some(_)) => return Err("--self-metrics-prefix needs --self-metrics-interval".into()),
        // The prefix starts every series' key, so it obeys the key rule.
        (Some(_), Some(prefix)) if !is_valid_key(&prefix) => {
            return Err("--self-metrics-prefix must be part of a key: no whitespace or control characters".into())
        }
        (Some(interval), prefix) => Some(SelfMetrics {
            interval,
            prefix: prefix.unwrap_or_else(|| DEFAULT_SELF_METRICS_PREFIX.to_owned()),
        }),
    };
    Ok(Action::Run(Box::new(config)))
}

/// A `flag` (`--listen`) as HOST:PORT with a host that resolves, or why
/// not, with an `example` of the form.
fn check_listen(flag: &str, listen: &str, example: &str) -> Result<(), String> {
    let hint = || format!("{flag} takes HOST:PORT such as {example}, not {listen:?}");
    let (host, port) = listen.rsplit_once(':').ok_or_else(hint)?;
    if host.is_empty() || port.parse::<u16>().is_err() {
        return Err(hint());
    }
    let mut addresses = listen
        .to_socket_addrs()
        .map_err(|e| format!("{flag} {listen}: cannot resolve {host}: {e}"))?;
    match addresses.next() {
        Some(_) => Ok(()),
        None => Err(format!("{flag} {listen}: {host} resolves to no address")),
    }
}

fn in_range(flag: &str, value: u64, min: usize, max: usize) -> Result<usize, lexopt::Error> {
    match usize::try_from(value) {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!("{flag} must be between {min} and {max}, not {value}").into()),
    }
}

fn main() -> ExitCode {
    let config = match parse_args() {
        Ok(Action::Run(config)) => *config,
        Ok(Action::Help) => return printed("metricsd", print_line(&usage())),
        Ok(Action::Version) => {
            return printed(
                "metricsd",
                print_line(&format!("metricsd {}", env!("CARGO_PKG_VERSION"))),
            )
        }
        Err(e) => {
            eprintln!("metricsd: {e} (see 'metricsd --help')");
            return ExitCode::from(2);
        }
    };
    init_logging();
    raise_descriptor_limit(config.max_connections);
    let server = match Server::bind(config.clone()) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("metricsd: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = stop_on_signals(server.handle()) {
        eprintln!("metricsd: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    // Printed whatever RUST_LOG says: scripts and tests read the real ports
    // here, the Graphite port first so that it is known once the line
    // protocol's is.
    if let Some(addr) = server.graphite_addr() {
        eprintln!("graphite listening on {addr} (tcp and udp)");
    }
    if let Some(http) = server.http_addr() {
        eprintln!("HTTP API and page on http://{http}/");
    }
    eprintln!("listening on {}", server.local_addr());
    log::info!(
        "limits: max line {} bytes, max pending output {} bytes, max output memory {} bytes, max connections {}",
        config.limits.max_line_bytes,
        config.limits.max_pending_output,
        config.max_output_memory,
        config.max_connections
    );
    match &config.storage {
        Some(storage) => log::info!("data in {} (fsync {})", storage.dir.display(), storage.fsync),
        None => log::info!("in memory only: nothing is kept across restarts"),
    }
    if let Some(retention) = config.store.retention {
        log::info!("retention: points older than {} s are forgotten", retention.as_secs());
    }
    if let Some(max) = config.store.max_bytes {
        log::info!("memory limit: {max} bytes, then {}", config.store.on_full);
    }
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metricsd: event loop failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The first SIGINT or SIGTERM stops the server gracefully; a second one,
/// from an operator who will not wait, exits at once.
///
/// SIGHUP, SIGUSR1 and SIGUSR2 would end the process at once by default,
/// without the graceful stop: they are caught and ignored with a warning
/// instead. SIGHUP is the daemon habit for "reload or reopen your logs", and
/// also what a closing terminal sends; metricsd has no configuration file
/// and logs to stderr, so there is nothing to do for it.
fn stop_on_signals(handle: Handle) -> std::io::Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])?;
    std::thread::Builder::new()
        .name("metricsd-signals".into())
        .spawn(move || {
            let mut stopping = false;
            for signal in signals.forever() {
                let name = signal_hook::low_level::signal_name(signal).unwrap_or("signal");
                match signal {
                    SIGHUP => log::warn!(
                        "SIGHUP ignored: there is nothing to reload (no configuration file) or reopen \
                         (logs go to stderr)"
                    ),
                    SIGUSR1 | SIGUSR2 => {
                        log::warn!("{name} ignored: metricsd gives it no meaning (SIGTERM or SIGINT stop it)")
                    }
                    _ if stopping => {
                        eprintln!("metricsd: second {name}: exiting at once");
                        std::process::exit(128 + signal);
                    }
                    _ => {
                        stopping = true;
                        log::info!("{name}: stopping gracefully (send another to exit at once)");
                        handle.shutdown();
                    }
                }
            }
        })?;
    Ok(())
}

/// Descriptors the server needs besides one per connection: stdio, the
/// listener, the poll and its waker, the spare for shedding, the data files,
/// the lock, the signal pipe, and slack for a compaction's files.
const DESCRIPTORS_BESIDES_CONNECTIONS: u64 = 64;

/// Raises the soft RLIMIT_NOFILE to what `max_connections` needs (as far as
/// the hard limit allows): distributions start processes at a soft limit of
/// 1024, far below the 10,000 connections the server holds by default.
fn raise_descriptor_limit(max_connections: usize) {
    let wanted = max_connections as u64 + DESCRIPTORS_BESIDES_CONNECTIONS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        log::warn!("cannot read the descriptor limit: {}", std::io::Error::last_os_error());
        return;
    }
    let target = wanted.min(limit.rlim_max);
    if limit.rlim_cur < target {
        let raised = libc::rlimit {
            rlim_cur: target,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct we own and pass by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            log::info!("descriptor limit raised from {} to {target}", limit.rlim_cur);
            limit.rlim_cur = target;
        } else {
            log::warn!("cannot raise the descriptor limit: {}", std::io::Error::last_os_error());
        }
    }
    if limit.rlim_cur < wanted {
        log::warn!(
            "the descriptor limit ({}) is below what --max-connections {max_connections} needs ({wanted}): \
             connections beyond about {} are closed at once (raise the hard limit, e.g. ulimit -Hn)",
            limit.rlim_cur,
            limit.rlim_cur.saturating_sub(DESCRIPTORS_BESIDES_CONNECTIONS)
        );
    }
}

/// Log lines as env_logger's humantime format wrote them
/// (`[2026-12-02T17:40:00Z INFO  metricsd::server] ...`), the time written
/// by our own UTC formatter: env_logger's `humantime` feature brings two
/// crates (jiff, jiff-core) to the runtime tree for this one field.
fn init_logging() {
    use metricsd::clock::unix_now;
    use metricsd::graphite::time::format_time;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|out, record| {
            writeln!(
                out,
                "[{} {:<5} {}] {}",
                format_time(unix_now(), "%Y-%m-%dT%H:%M:%SZ"),
                record.level(),
                record.target(),
                record.args()
            )
        })
        .init();
}
