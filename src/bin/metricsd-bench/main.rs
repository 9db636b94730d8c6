//! metricsd-bench: a load generator for metricsd, in the spirit of
//! redis-benchmark and rpc-perf, built on the crate's own `protocol` module.
//!
//! It opens `--connections` connections, stores the points a get run will
//! read, then drives puts and gets from one mio event loop per thread
//! (closed loop, or open loop at a fixed `--rate`), checks every answer and
//! prints throughput and latency percentiles. With `--server redis` the same
//! load goes to Redis, so that one client measures both servers. With
//! `--server graphite` the puts go as Graphite plaintext lines to any
//! Graphite port (metricsd's, VictoriaMetrics', carbon's), and the run ends
//! when the server's own read API holds them all. Modules:
//!
//! - `args`: the command line;
//! - `mode`: whether a metricsd keeps its data, asked first; `--cleanup`;
//! - `workload`: the requests and the answers they must get;
//! - `redis`: the same in Redis commands, over `resp`, the RESP2 codec;
//! - `preload`: storing the points a get run reads;
//! - `driver`: the event loops, the open-loop schedule, the checks;
//! - `stream`: the Graphite write loop, which has no answers to wait for;
//! - `confirm`: asking the server whether a Graphite stream arrived;
//! - `histogram`: log-linear latency buckets with bounded relative error;
//! - `report`: the table, the JSON object and the progress line.

mod args;
#[path = "../common/cli.rs"]
mod cli;
mod confirm;
mod driver;
mod histogram;
#[path = "../common/json.rs"]
mod json;
mod mode;
mod preload;
mod redis;
mod report;
mod resp;
mod stream;
mod threads;
mod workload;

use args::{Action, Options};
use confirm::{ConfirmError, Points, Target};
use driver::{Plan, RunError, Totals};
use metricsd::ClientError;
use mode::Mode;
use preload::PreloadError;
use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use stream::StreamError;
use workload::{Mix, Server, Workload};

/// Why a run could not be made or finished.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("{0} resolves to no address")]
    NoAddress(String),
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, io::Error),
    #[error("cannot ask {0} for its stats: {1}")]
    Stats(SocketAddr, ClientError),
    #[error(
        "the stats of {0} do not say whether it keeps its data (no store.durable figure): an older \
         metricsd, or not metricsd; give --allow-durable to run anyway"
    )]
    UnknownMode(SocketAddr),
    #[error(
        "the metricsd at {0} is durable (stats: store.durable 1): the points of this run would stay in its \
         data; run against a server started with --in-memory, or give --allow-durable (with --cleanup to \
         delete the keys written at the end)"
    )]
    Durable(SocketAddr),
    #[error("cannot delete the keys the run wrote (--cleanup): {0}")]
    Cleanup(ClientError),
    #[error("cannot store the points the run reads: {0}")]
    Preload(PreloadError),
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("cannot confirm that the points arrived: {0}")]
    Confirm(#[from] ConfirmError),
    #[error("cannot print the report: {0}")]
    Output(io::Error),
}

fn main() -> ExitCode {
    let options = match args::parse(lexopt::Parser::from_env()) {
        Ok(Action::Run(options)) => options,
        Ok(Action::Help) => return cli::printed("metricsd-bench", cli::print_line(&args::usage())),
        Ok(Action::Version) => {
            let version = format!("metricsd-bench {}", env!("CARGO_PKG_VERSION"));
            return cli::printed("metricsd-bench", cli::print_line(&version));
        }
        Err(e) => {
            eprintln!("metricsd-bench: {e} (see 'metricsd-bench --help')");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metricsd-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &Options) -> Result<(), Failure> {
    let addr = resolve(&options.addr)?;
    // The metricsd that stores the points, if any: the server itself, or
    // the one behind a Graphite port.
    let metricsd = match (options.server, &options.confirm) {
        (Server::Metricsd, _) => Some(addr),
        (Server::Graphite, Some(confirm::Confirm::Metricsd(confirm_addr))) => Some(resolve(confirm_addr)?),
        _ => None,
    };
    // Asked before anything is written: a durable server keeps it.
    let mode = match metricsd {
        Some(at) => {
            let mode = mode::ask(at, options.timeout).map_err(|e| Failure::Stats(at, e))?;
            match mode {
                _ if options.allow_durable => {}
                Some(Mode::InMemory) => {}
                Some(Mode::Durable) => return Err(Failure::Durable(at)),
                None => return Err(Failure::UnknownMode(at)),
            }
            mode
        }
        None => None,
    };
    if options.server == Server::Graphite {
        return run_graphite(options, addr, metricsd, mode);
    }
    let workload = Workload::new(options.mix, options.keys, options.points, options.connections as u64)
        .with_key_prefix(&options.key_prefix)
        .with_timestamp_base(options.timestamp_base)
        .with_server(options.server);
    let outcome = measure(options, addr, &workload);
    let cleaned_up = match options.cleanup {
        true => Some(mode::clean_up(addr, workload.written_keys(), options.timeout).map_err(Failure::Cleanup)),
        false => None,
    };
    let totals = outcome?;
    let cleaned_up = cleaned_up.transpose()?;
    let summary = report::Summary {
        options,
        mode,
        preloaded: workload.preloaded(),
        totals: &totals,
        cleaned_up,
    };
    let text = if options.json {
        summary.json() + "\n"
    } else {
        summary.table()
    };
    io::stdout().write_all(text.as_bytes()).map_err(Failure::Output)
}

/// Series read back point by point after a Graphite stream: the first, the
/// middle and the last key, which different connections put.
const SAMPLED_KEYS: usize = 3;

/// `--server graphite`: streams the puts, waits until the read API holds
/// them all, reads a sample of series back, and reports.
fn run_graphite(
    options: &Options,
    addr: SocketAddr,
    metricsd: Option<SocketAddr>,
    mode: Option<Mode>,
) -> Result<(), Failure> {
    let workload = Workload::new(Mix::Put, options.keys, 0, options.connections as u64)
        .with_key_prefix(&options.key_prefix)
        .with_timestamp_base(options.timestamp_base)
        .with_server(Server::Graphite);
    let confirm = options
        .confirm
        .as_ref()
        .expect("the command line requires --confirm with --server graphite");
    let outcome = stream_and_confirm(options, addr, &workload, confirm);
    let cleaned_up = match (options.cleanup, metricsd) {
        (true, Some(at)) => {
            Some(mode::clean_up(at, workload.written_keys(), options.timeout).map_err(Failure::Cleanup))
        }
        _ => None,
    };
    let Streamed {
        points,
        sent,
        stored,
        confirmed,
        checked,
    } = outcome?;
    let summary = report::GraphiteSummary {
        options,
        mode,
        points,
        sent,
        stored,
        confirmed,
        checked,
        cleaned_up: cleaned_up.transpose()?,
    };
    let text = match options.json {
        true => summary.json() + "\n",
        false => summary.table(),
    };
    io::stdout().write_all(text.as_bytes()).map_err(Failure::Output)
}

/// What a Graphite run measured: see [`report::GraphiteSummary`].
struct Streamed {
    points: u64,
    sent: Duration,
    stored: Duration,
    confirmed: Duration,
    checked: (usize, usize),
}

fn stream_and_confirm(
    options: &Options,
    addr: SocketAddr,
    workload: &Workload,
    confirm: &confirm::Confirm,
) -> Result<Streamed, Failure> {
    let mut target = Target::open(confirm, options.timeout)?;
    let streams = connect(addr, options.connections, options.timeout)?;
    let start = Instant::now();
    let streamed = stream::run(&plan(options), workload, streams, start)?;
    let points: u64 = streamed.sent.iter().sum();
    let (first, last) = timestamp_range(workload, &streamed.sent);
    let arrival = target.wait_for(points, &options.key_prefix, first, last)?;
    let keys = options.keys as usize;
    let mut sampled: Vec<u32> = [0, keys / 2, keys - 1].iter().map(|&k| k as u32).collect();
    sampled.dedup();
    debug_assert!(sampled.len() <= SAMPLED_KEYS);
    let mut expected: BTreeMap<u32, Points> = sampled.iter().map(|&k| (k, Points::new())).collect();
    for (key, value, timestamp) in workload.replay_puts(options.seed, &streamed.sent) {
        if let Some(series) = expected.get_mut(&key) {
            series.push((timestamp, value));
        }
    }
    let mut checked_points = 0;
    for (key, mut series) in expected {
        series.sort_by_key(|&(t, _)| t);
        target.check_series(workload.key(key), &series, first, last)?;
        checked_points += series.len();
    }
    Ok(Streamed {
        points,
        sent: streamed.last_write - start,
        stored: arrival.stored - start,
        confirmed: arrival.readable - start,
        checked: (sampled.len(), checked_points),
    })
}

/// The first and last timestamp a put of the run can carry.
fn timestamp_range(workload: &Workload, sent: &[u64]) -> (i64, i64) {
    let lines = sent.iter().max().copied().unwrap_or(0) * sent.len() as u64;
    let (_, first) = workload.put_point(0);
    let (_, last) = workload.put_point(lines.max(1) - 1);
    (first, last)
}

fn plan(options: &Options) -> Plan {
    Plan {
        threads: options.threads,
        pipeline: options.pipeline,
        limit: options.limit,
        rate: options.rate,
        timeout: options.timeout,
        seed: options.seed,
    }
}

/// Connects, stores what the run reads, and runs it.
fn measure(options: &Options, addr: SocketAddr, workload: &Workload) -> Result<Totals, Failure> {
    let streams = connect(addr, options.connections, options.timeout)?;
    let interactive = io::stderr().is_terminal();
    if options.preload {
        preload::preload(addr, workload, options.timeout, interactive).map_err(Failure::Preload)?;
    }
    let plan = plan(options);
    let mut last = (Duration::ZERO, 0);
    let result = driver::run(&plan, workload, streams, interactive, |elapsed, requests, latency| {
        let rate = (requests - last.1) as f64 / (elapsed - last.0).as_secs_f64().max(f64::MIN_POSITIVE);
        last = (elapsed, requests);
        eprint!("\r{}\x1b[K", report::progress_line(elapsed, rate, latency));
    });
    if interactive {
        // Clear the progress line, whatever comes next.
        eprint!("\r\x1b[K");
    }
    Ok(result?)
}

/// The first address `--addr` names.
fn resolve(addr: &str) -> Result<SocketAddr, Failure> {
    addr.to_socket_addrs()
        .map_err(|e| Failure::Resolve(addr.to_owned(), e))?
        .next()
        .ok_or_else(|| Failure::NoAddress(addr.to_owned()))
}

/// Opens every connection before the run starts, so that connecting is
/// not measured and a refused one stops the tool at once.
fn connect(addr: SocketAddr, connections: usize, timeout: Duration) -> Result<Vec<TcpStream>, Failure> {
    (0..connections)
        .map(|_| {
            let stream = TcpStream::connect_timeout(&addr, timeout)?;
            // Requests go out in whole batches; Nagle would only hold back
            // the tail of one.
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            Ok(stream)
        })
        .collect::<io::Result<_>>()
        .map_err(|e| Failure::Connect(addr, e))
}
