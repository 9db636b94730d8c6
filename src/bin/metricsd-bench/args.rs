//! The command line.

use crate::cli::duration;
use crate::confirm::Confirm;
use crate::driver::Limit;
use crate::workload::{Mix, Server, DEFAULT_KEY_PREFIX, DEFAULT_TIMESTAMP_BASE};
use metricsd::config::{DEFAULT_CLIENT_TIMEOUT, DEFAULT_LISTEN};
use std::time::Duration;

/// The `--help` text, with the defaults below and those of
/// `metricsd::config`.
pub fn usage() -> String {
    format!(
        "\
usage: metricsd-bench [OPTIONS]

Drives a metricsd server (or Redis, for comparison) with put and get
requests over many connections, checks every answer, and reports throughput
and latency percentiles. With --server graphite, streams the puts as Graphite
plaintext to any Graphite port and reports points a second until the server's
read API (--confirm) holds them all.

options:
  --server S            metricsd, or redis: a put is RPUSH KEY \"VALUE TS\",
                        a get is LRANGE KEY 0 -1, the preload replaces
                        each list (DEL, then RPUSH of its points), all over
                        the same connections with the same checks; or
                        graphite: each put is a line KEY VALUE TS, written
                        --pipeline lines at a time (nothing is answered)
                        [default: metricsd]
  --addr ADDR           server address [default: {DEFAULT_LISTEN}, or
                        127.0.0.1:6379 with --server redis, 127.0.0.1:2003
                        with --server graphite]
  --confirm API         with --server graphite, where the points are counted
                        and a sample of series read back: metricsd:ADDR (its
                        stats and get) or victoria:HTTPADDR (VictoriaMetrics'
                        /api/v1/query and /api/v1/export)
  --connections N       connections [default: {DEFAULT_CONNECTIONS}]
  --pipeline N          closed loop: requests each connection sends at once,
                        the next batch when all are answered; with --rate:
                        most requests unanswered per connection [default: 1]
  --requests N          requests in all [default: {DEFAULT_REQUESTS}]
  --duration DURATION   instead of --requests: send for this long (seconds
                        or a number with a unit: 0.5, 30s, 5m)
  --workload W          put, get, mixed:PUT_PERCENT, mix, mix:SHAPE or
                        range:SECONDS [default: put]
                          mix: puts of a realistic mix of K series
                          (hosts of 20 metrics: counters, integer and
                          decimal gauges, flags, floats; every 10 s from
                          --timestamp-base at a per-host phase, with
                          jitter and gaps; keys P + host3.counter8), each
                          series in time order from one connection;
                          mix:SHAPE the same of one shape only (counter,
                          int_gauge, decimal_gauge, flag, float)
                          range: 'range KEY FROM TO' of SECONDS preloaded
                          points (one a second) at a random place
  --keys K              keys bench.k0 .. bench.k<K-1>, chosen at random
                        (mix: K series) [default: {DEFAULT_KEYS}]
  --key-prefix P        keys P0 .. P<K-1> instead [default: {DEFAULT_KEY_PREFIX}]
  --points P            points stored under every key before a get or mixed
                        run; a get-only run checks each answer holds exactly
                        them (start the server afresh for it) [default: {DEFAULT_POINTS}]
  --no-preload          the points are stored already, by an earlier run
                        with the same --keys, --points and --key-prefix:
                        check the answers against them without storing
                        them again (the server's work is then all requests)
  --seed N              seed of the random key choice [default: 1]
  --timestamp-base T    put number N of the run carries timestamp T + N; a
                        later run given a higher T adds points instead of
                        replacing them [default: {DEFAULT_TIMESTAMP_BASE}]
  --rate R              open loop: R requests a second over all connections,
                        latency counted from each request's due time
                        [default: closed loop, as fast as answers come]
  --threads N           event-loop threads sharing the connections [default: 1]
  --timeout DURATION    fail when requests wait and nothing moves this long
                        [default: {timeout}]
  --allow-durable       run against a metricsd that keeps its data on disk
                        (its stats say store.durable 1): without it the
                        tool asks first and refuses, since the points it
                        writes would stay in that store
  --cleanup             at the end, delete every key the run wrote (puts
                        and preloaded points), whether or not the run
                        succeeded (metricsd only)
  --json                print one JSON object on stdout instead of the table
  -h, --help            print this help
  -V, --version         print the version

A live progress line goes to stderr once a second when it is a terminal.
Exit status: 0 done (error answers are counted, not fatal); 1 the run failed
(cannot connect, wrong or malformed answer, server closed or stalled);
2 bad command line.",
        timeout = DEFAULT_CLIENT_TIMEOUT.as_secs()
    )
}

/// redis-benchmark's default `-n`.
const DEFAULT_REQUESTS: u64 = 100_000;
/// redis-benchmark's default `-c`.
const DEFAULT_CONNECTIONS: usize = 50;
/// Enough keys that puts spread over many series, few enough to preload
/// quickly for a get run.
const DEFAULT_KEYS: u32 = 1000;
/// A short series: get answers of a few hundred bytes.
const DEFAULT_POINTS: usize = 10;
/// Redis's own default port.
const REDIS_DEFAULT_ADDR: &str = "127.0.0.1:6379";
/// Carbon's customary plaintext port.
const GRAPHITE_DEFAULT_ADDR: &str = "127.0.0.1:2003";

/// Everything a run is started with.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub server: Server,
    pub addr: String,
    pub connections: usize,
    pub pipeline: usize,
    pub limit: Limit,
    pub mix: Mix,
    pub keys: u32,
    pub key_prefix: String,
    pub points: usize,
    pub preload: bool,
    pub seed: u64,
    pub timestamp_base: i64,
    pub rate: Option<f64>,
    pub json: bool,
    pub threads: usize,
    pub timeout: Duration,
    pub allow_durable: bool,
    pub cleanup: bool,
    /// `--server graphite`: the read API that confirms arrival.
    pub confirm: Option<Confirm>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server: Server::Metricsd,
            addr: DEFAULT_LISTEN.to_owned(),
            connections: DEFAULT_CONNECTIONS,
            pipeline: 1,
            limit: Limit::Requests(DEFAULT_REQUESTS),
            mix: Mix::Put,
            keys: DEFAULT_KEYS,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            points: DEFAULT_POINTS,
            preload: true,
            seed: 1,
            timestamp_base: DEFAULT_TIMESTAMP_BASE,
            rate: None,
            json: false,
            threads: 1,
            timeout: DEFAULT_CLIENT_TIMEOUT,
            allow_durable: false,
            cleanup: false,
            confirm: None,
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Run(Options),
    Help,
    Version,
}

/// Reads the options from `parser`.
pub fn parse(mut parser: lexopt::Parser) -> Result<Action, lexopt::Error> {
    use lexopt::prelude::*;
    let mut o = Options::default();
    let (mut requests, mut run_for, mut addr) = (None, None, None);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("server") => o.server = Server::parse(&parser.value()?.string()?)?,
            Long("addr") => addr = Some(parser.value()?.string()?),
            Long("connections") => o.connections = at_least_one("--connections", parser.value()?.parse()?)?,
            Long("pipeline") => o.pipeline = at_least_one("--pipeline", parser.value()?.parse()?)?,
            Long("requests") => requests = Some(at_least_one("--requests", parser.value()?.parse()?)?),
            Long("duration") => run_for = Some(duration("--duration", &mut parser)?),
            Long("workload") => o.mix = Mix::parse(&parser.value()?.string()?)?,
            Long("keys") => o.keys = at_least_one("--keys", parser.value()?.parse()?)?,
            Long("key-prefix") => o.key_prefix = key_prefix(parser.value()?.string()?)?,
            Long("points") => o.points = parser.value()?.parse()?,
            Long("no-preload") => o.preload = false,
            Long("seed") => o.seed = parser.value()?.parse()?,
            Long("timestamp-base") => o.timestamp_base = parser.value()?.parse()?,
            Long("rate") => o.rate = Some(positive("--rate", parser.value()?.parse()?)?),
            Long("json") => o.json = true,
            Long("allow-durable") => o.allow_durable = true,
            Long("cleanup") => o.cleanup = true,
            Long("confirm") => o.confirm = Some(Confirm::parse(&parser.value()?.string()?)?),
            Long("threads") => o.threads = at_least_one("--threads", parser.value()?.parse()?)?,
            Long("timeout") => o.timeout = duration("--timeout", &mut parser)?,
            Short('h') | Long("help") => return Ok(Action::Help),
            Short('V') | Long("version") => return Ok(Action::Version),
            _ => return Err(arg.unexpected()),
        }
    }
    o.addr = match (addr, o.server) {
        (Some(addr), _) => addr,
        (None, Server::Metricsd) => o.addr,
        (None, Server::Redis) => REDIS_DEFAULT_ADDR.to_owned(),
        (None, Server::Graphite) => GRAPHITE_DEFAULT_ADDR.to_owned(),
    };
    o.limit = match (requests, run_for) {
        (Some(_), Some(_)) => return Err("give --requests or --duration, not both".into()),
        (Some(n), None) => Limit::Requests(n),
        (None, Some(d)) => Limit::Duration(d),
        (None, None) => Limit::Requests(DEFAULT_REQUESTS),
    };
    let metricsd_behind = match (o.server, &o.confirm) {
        (Server::Metricsd, _) | (Server::Graphite, Some(Confirm::Metricsd(_))) => true,
        (Server::Redis, _) | (Server::Graphite, _) => false,
    };
    if !metricsd_behind && (o.allow_durable || o.cleanup) {
        return Err(
            "--allow-durable and --cleanup are for --server metricsd (or graphite with --confirm metricsd:ADDR)".into(),
        );
    }
    match (o.server, &o.confirm) {
        (Server::Graphite, None) => {
            return Err("--server graphite needs --confirm metricsd:ADDR or victoria:HTTPADDR".into())
        }
        (Server::Graphite, Some(_)) if o.mix != Mix::Put => {
            return Err("--server graphite sends --workload put only (a Graphite port cannot be read)".into())
        }
        (Server::Metricsd | Server::Redis, Some(_)) => return Err("--confirm is for --server graphite".into()),
        _ => {}
    }
    if matches!(o.mix, Mix::Realistic { .. }) && (o.keys as usize) < o.connections {
        // A connection without series would have nothing to send.
        return Err(format!(
            "--workload {} needs --keys ({}) at least --connections ({})",
            o.mix, o.keys, o.connections
        )
        .into());
    }
    if matches!(o.mix, Mix::Range { .. }) && o.server == Server::Redis {
        return Err("--workload range needs --server metricsd: Redis has no range".into());
    }
    if o.threads > o.connections {
        return Err(format!(
            "--threads ({}) must not exceed --connections ({})",
            o.threads, o.connections
        )
        .into());
    }
    Ok(Action::Run(o))
}

fn at_least_one<T: PartialOrd + From<u8> + std::fmt::Display>(flag: &str, value: T) -> Result<T, lexopt::Error> {
    if value >= T::from(1) {
        Ok(value)
    } else {
        Err(format!("{flag} must be at least 1, not {value}").into())
    }
}

/// A prefix that keeps every key one metricsd stores (no whitespace or
/// control characters). Not empty: the bare numbers would be easy to take
/// for someone else's keys.
fn key_prefix(prefix: String) -> Result<String, lexopt::Error> {
    if metricsd::protocol::is_valid_key(&prefix) {
        Ok(prefix)
    } else {
        Err(format!("--key-prefix must be a key without whitespace or control characters, not {prefix:?}").into())
    }
}

/// A positive, finite number.
fn positive(flag: &str, value: f64) -> Result<f64, lexopt::Error> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(format!("{flag} must be a positive number, not {value}").into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str]) -> Result<Action, String> {
        parse(lexopt::Parser::from_args(args)).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults() {
        assert_eq!(parse_args(&[]), Ok(Action::Run(Options::default())));
        assert_eq!(Options::default().addr, "127.0.0.1:8888");
    }

    #[test]
    fn every_flag() {
        let got = parse_args(&[
            "--server",
            "redis",
            "--addr=10.0.0.1:1",
            "--connections",
            "8",
            "--pipeline",
            "16",
            "--duration",
            "2.5",
            "--workload",
            "mixed:20",
            "--keys",
            "5",
            "--key-prefix",
            "x.",
            "--points",
            "0",
            "--no-preload",
            "--seed",
            "9",
            "--timestamp-base",
            "-7",
            "--rate",
            "1000",
            "--json",
            "--threads",
            "2",
            "--timeout",
            "3",
        ]);
        let expected = Options {
            server: Server::Redis,
            addr: "10.0.0.1:1".into(),
            connections: 8,
            pipeline: 16,
            limit: Limit::Duration(Duration::from_millis(2500)),
            mix: Mix::Mixed { put_percent: 20 },
            keys: 5,
            key_prefix: "x.".into(),
            points: 0,
            preload: false,
            seed: 9,
            timestamp_base: -7,
            rate: Some(1000.0),
            json: true,
            threads: 2,
            timeout: Duration::from_secs(3),
            allow_durable: false,
            cleanup: false,
            confirm: None,
        };
        assert_eq!(got, Ok(Action::Run(expected)));
        assert_eq!(parse_args(&["-V"]), Ok(Action::Version));
        // Redis's port unless --addr says otherwise, wherever it comes.
        let Ok(Action::Run(redis)) = parse_args(&["--server", "redis"]) else {
            panic!("a run")
        };
        assert_eq!(redis.addr, "127.0.0.1:6379");
        let Ok(Action::Run(redis)) = parse_args(&["--addr", "127.0.0.1:9", "--server", "redis"]) else {
            panic!("a run")
        };
        assert_eq!(redis.addr, "127.0.0.1:9");
        assert_eq!(parse_args(&["--help"]), Ok(Action::Help));
        let Ok(Action::Run(careful)) = parse_args(&["--allow-durable", "--cleanup"]) else {
            panic!("a run")
        };
        assert!(careful.allow_durable && careful.cleanup);
        let Ok(Action::Run(graphite)) = parse_args(&["--server", "graphite", "--confirm", "victoria:127.0.0.1:8428"])
        else {
            panic!("a run")
        };
        assert_eq!(graphite.addr, "127.0.0.1:2003");
        assert_eq!(graphite.confirm, Some(Confirm::Victoria("127.0.0.1:8428".into())));
        let Ok(Action::Run(graphite)) = parse_args(&[
            "--server=graphite",
            "--confirm=metricsd:127.0.0.1:1",
            "--cleanup",
            "--allow-durable",
        ]) else {
            panic!("a run")
        };
        assert!(graphite.cleanup && graphite.allow_durable);
    }

    #[test]
    fn bad_values_are_refused() {
        for (args, says) in [
            (&["--requests", "5", "--duration", "1"][..], "not both"),
            (&["--connections", "0"], "at least 1"),
            (&["--pipeline", "x"], "invalid digit"),
            (&["--duration", "-1"], "--duration takes a duration such as"),
            (&["--duration", "0"], "--duration takes a duration above zero"),
            (&["--timeout", "1y"], "--timeout takes a duration such as"),
            (&["--rate", "0"], "positive"),
            (&["--rate", "inf"], "positive"),
            (&["--workload", "delete"], "put, get, mixed"),
            (&["--workload", "mix:gauge"], "mix:SHAPE"),
            (&["--workload", "range:0"], "range:SECONDS"),
            (
                &["--workload", "mix", "--keys", "3", "--connections", "4"],
                "at least --connections",
            ),
            (&["--workload", "range:60", "--server", "redis"], "Redis has no range"),
            (&["--server", "memcached"], "metricsd, redis or graphite"),
            (&["--server", "graphite"], "needs --confirm"),
            (
                &["--server", "graphite", "--confirm", "x:1"],
                "metricsd:ADDR or victoria",
            ),
            (
                &["--server", "graphite", "--confirm", "metricsd:a:1", "--workload", "get"],
                "--workload put only",
            ),
            (&["--confirm", "metricsd:a:1"], "for --server graphite"),
            (
                &["--server", "graphite", "--confirm", "victoria:a:1", "--cleanup"],
                "for --server metricsd",
            ),
            (&["--key-prefix", ""], "--key-prefix"),
            (&["--key-prefix", "a b"], "--key-prefix"),
            (&["--timestamp-base", "1.5"], "invalid digit"),
            (&["--threads", "3", "--connections", "2"], "must not exceed"),
            (&["--server", "redis", "--cleanup"], "for --server metricsd"),
            (&["--allow-durable", "--server", "redis"], "for --server metricsd"),
            (&["--bogus"], "--bogus"),
        ] {
            let err = parse_args(args).unwrap_err();
            assert!(err.contains(says), "{args:?}: {err}");
        }
    }
}
