//! What the tool asks and what it accepts as an answer.
//!
//! Requests go to keys `<prefix>0` .. `<prefix><K-1>` (`bench.k0` ..
//! unless `--key-prefix` says otherwise), chosen at random. A put
//! carries a timestamp made from its request number, distinct across the
//! whole run, so puts add points instead of overwriting one. Each key is put
//! to by one connection only (while there are at least as many keys as
//! connections), whose request numbers ascend: every series gets its points
//! in time order, as metrics arrive from one source. (Random writers would
//! make most puts land a little behind the newest point: the store's
//! insert path instead of its append path.)
//!
//! A get-only run first stores the same `P` points under every key
//! (timestamps 1..=P) and then demands each answer byte for byte: the
//! encoding is fixed by the protocol, and comparing bytes keeps the check
//! far cheaper than the server's work of producing them.
//!
//! The same requests go to a metricsd server in its line protocol, or to a
//! Redis server as the commands that `redis` describes; [`Framer`] cuts
//! the answers of either. To a Graphite port (`--server graphite`) the same
//! puts go as plaintext lines `<key> <value> <timestamp>\n`, which get no
//! answer at all (the `stream` module sends them, `confirm` checks them).

use crate::redis;
use crate::resp::RespScanner;
use memchr::{memchr, memchr_iter};
use metricsd::protocol::number::{write_timestamp, write_value};
use metricsd::protocol::request::{encode_get, encode_put, encode_range};
use metricsd::protocol::response::{parse_response, write_point, Response, ResponseError};
use metricsd::protocol::{Query, Range, ResponseScanner};
use metricsd::store::mix::{Mix as RealisticMix, Series as RealisticSeries, Shape};

/// The first put timestamp by default: a recent Unix time (September
/// 2020), as the project's earlier figures used. It keeps put timestamps
/// far above the preloaded ones (1..=P).
pub const DEFAULT_TIMESTAMP_BASE: i64 = 1_600_000_000;

/// The server a run drives, and so the protocol its requests are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Metricsd,
    Redis,
    /// Any server's Graphite plaintext port: puts only, never answered.
    Graphite,
}

impl Server {
    /// `metricsd` or `redis`.
    pub fn parse(text: &str) -> Result<Server, String> {
        match text {
            "metricsd" => Ok(Server::Metricsd),
            "redis" => Ok(Server::Redis),
            "graphite" => Ok(Server::Graphite),
            _ => Err(format!("--server must be metricsd, redis or graphite, not {text:?}")),
        }
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Server::Metricsd => "metricsd",
            Server::Redis => "redis",
            Server::Graphite => "graphite",
        })
    }
}

/// Which requests a run sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    Put,
    Get,
    /// Each request is a put with this chance in percent, else a get.
    Mixed {
        put_percent: u8,
    },
    /// Puts of the realistic mix of [`metricsd::store::mix`] (of one shape,
    /// or all): `--keys` series, each with its own connection's points in
    /// time order, every 10 s at its host's phase, with jitter and gaps.
    Realistic {
        shape: Option<Shape>,
    },
    /// `range KEY FROM TO` of a window of `seconds` at a random place in
    /// the preloaded points (one a second, so the window holds `seconds`
    /// points: `range:360` costs what an hour of a 10 s series does).
    Range {
        seconds: u32,
    },
}

impl Mix {
    /// `put`, `get`, `mixed:PUT_PERCENT`, `mix`, `mix:SHAPE` or
    /// `range:SECONDS`.
    pub fn parse(text: &str) -> Result<Mix, String> {
        let wrong = || {
            format!(
                "--workload must be put, get, mixed:PUT_PERCENT (0 to 100), mix, mix:SHAPE ({}) or \
                 range:SECONDS, not {text:?}",
                Shape::ALL.map(Shape::name).join(", ")
            )
        };
        match text {
            "put" => Ok(Mix::Put),
            "get" => Ok(Mix::Get),
            "mix" => Ok(Mix::Realistic { shape: None }),
            _ => {
                if let Some(name) = text.strip_prefix("mix:") {
                    let shape = Shape::ALL.into_iter().find(|s| s.name() == name).ok_or_else(wrong)?;
                    return Ok(Mix::Realistic { shape: Some(shape) });
                }
                if let Some(seconds) = text.strip_prefix("range:") {
                    return (seconds.parse::<u32>().ok())
                        .filter(|&s| s >= 1)
                        .map(|seconds| Mix::Range { seconds })
                        .ok_or_else(wrong);
                }
                text.strip_prefix("mixed:")
                    .and_then(|p| p.parse::<u8>().ok())
                    .filter(|&p| p <= 100)
                    .map(|put_percent| Mix::Mixed { put_percent })
                    .ok_or_else(wrong)
            }
        }
    }

    /// Whether the run writes.
    pub fn has_puts(self) -> bool {
        !matches!(self, Mix::Get | Mix::Mixed { put_percent: 0 })
    }

    /// Whether the run reads, so that points must be stored before it.
    pub fn has_gets(self) -> bool {
        !matches!(self, Mix::Put | Mix::Mixed { put_percent: 100 } | Mix::Realistic { .. })
    }
}

impl std::fmt::Display for Mix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mix::Put => f.write_str("put"),
            Mix::Get => f.write_str("get"),
            Mix::Mixed { put_percent } => write!(f, "mixed:{put_percent}"),
            Mix::Realistic { shape: None } => f.write_str("mix"),
            Mix::Realistic { shape: Some(shape) } => write!(f, "mix:{}", shape.name()),
            Mix::Range { seconds } => write!(f, "range:{seconds}"),
        }
    }
}

/// Metrics a host of the realistic mix has: one cycle of its shapes.
const METRICS_PER_HOST: u64 = 20;

/// The (host, metric) of each series of a realistic mix of `count` series
/// (of `shape` only, if given): host by host, a host's metrics in order.
fn mix_series(shape: Option<Shape>, count: usize) -> Vec<(u64, u64)> {
    let generator = RealisticMix { seed: 0, start: 0 };
    (0u64..)
        .flat_map(|host| (0..METRICS_PER_HOST).map(move |metric| (host, metric)))
        .filter(|&(_, metric)| shape.is_none_or(|shape| generator.shape(metric) == shape))
        .take(count)
        .collect()
}

/// One connection's share of a realistic mix: its series, sent in turn, a
/// point of each, as an agent sends all of a host's metrics every interval.
pub struct Feed {
    series: Vec<(u32, RealisticSeries)>,
    next: usize,
}

impl Feed {
    /// The next put.
    pub fn next_op(&mut self) -> Op {
        let at = self.next;
        self.next = (at + 1) % self.series.len();
        let (key, series) = &mut self.series[at];
        // A mix series is endless.
        let (timestamp, value) = series.next().unwrap_or_default();
        Op::Point {
            key: *key,
            timestamp,
            bits: value.to_bits(),
        }
    }
}

/// One request, small enough to keep for every request in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A put to key `key`; `seq` is the run-wide request number that makes
    /// its value and timestamp.
    Put {
        key: u32,
        seq: u64,
    },
    Get {
        key: u32,
    },
    /// A put of a realistic mix's point (the value as bits, so that `Op`
    /// stays `Eq`).
    Point {
        key: u32,
        timestamp: i64,
        bits: u64,
    },
    /// `range` of the window from `from` on.
    Range {
        key: u32,
        from: i64,
    },
}

/// How an answer counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// `error\n...`: counted, and the run goes on.
    Error,
}

/// The requests of a run and the answers they must get.
#[derive(Debug)]
pub struct Workload {
    mix: Mix,
    prefix: String,
    keys: Vec<String>,
    /// Connections in the run: request `seq` is sent by connection
    /// `seq % connections`.
    connections: u64,
    /// Put `seq` carries timestamp `timestamp_base + seq`.
    timestamp_base: i64,
    /// Points stored under each key before the run.
    preloaded: usize,
    expect: Expect,
}

/// What the answers must hold, in the server's protocol.
#[derive(Debug)]
enum Expect {
    /// metricsd: ` <value> <timestamp>\n` of each preloaded point, in
    /// timestamp order; a preloaded answer line is the key followed by one
    /// of these.
    Lines {
        point_tails: Vec<Vec<u8>>,
    },
    Redis(redis::Expected),
    /// A Graphite port answers nothing; what arrived is confirmed afterwards
    /// through the server's read API.
    Nothing,
}

impl Expect {
    fn new(server: Server, points: &[(f64, i64)]) -> Expect {
        match server {
            Server::Metricsd => Expect::Lines {
                point_tails: points
                    .iter()
                    .map(|&(value, t)| {
                        let mut tail = vec![b' '];
                        write_value(&mut tail, value);
                        tail.push(b' ');
                        write_timestamp(&mut tail, t);
                        tail.push(b'\n');
                        tail
                    })
                    .collect(),
            },
            Server::Redis => Expect::Redis(redis::Expected::new(points)),
            Server::Graphite => Expect::Nothing,
        }
    }
}

/// The value stored at preloaded timestamp `t`: 0.25, 0.5, 0.75, 1.0, …, so
/// answers carry values both with and without a fraction.
fn preload_value(t: i64) -> f64 {
    t as f64 / 4.0
}

/// The points preloaded under every key: (value, timestamp) for timestamps
/// 1..=`points`.
fn series(points: usize) -> Vec<(f64, i64)> {
    (1..=points as i64).map(|t| (preload_value(t), t)).collect()
}

/// `<prefix>0` .. `<prefix><count - 1>`; for a realistic mix, the prefix
/// and each series' name (`host3.counter8`).
fn key_names(mix: Mix, prefix: &str, count: usize) -> Vec<String> {
    match mix {
        Mix::Realistic { shape } => {
            let names = RealisticMix { seed: 0, start: 0 };
            (mix_series(shape, count).into_iter())
                .map(|(host, metric)| format!("{prefix}{}", names.key(host, metric)))
                .collect()
        }
        _ => (0..count).map(|i| format!("{prefix}{i}")).collect(),
    }
}

/// The key prefix unless `--key-prefix` gives another.
pub const DEFAULT_KEY_PREFIX: &str = "bench.k";

impl Workload {
    /// A workload over `keys` keys with `points` points per key stored first
    /// (when the mix has gets), sent over `connections` connections to a
    /// metricsd server, with the default key prefix and timestamps.
    pub fn new(mix: Mix, keys: u32, points: usize, connections: u64) -> Workload {
        let preloaded = if mix.has_gets() { points } else { 0 };
        Workload {
            mix,
            prefix: DEFAULT_KEY_PREFIX.to_owned(),
            keys: key_names(mix, DEFAULT_KEY_PREFIX, keys as usize),
            connections: connections.max(1),
            timestamp_base: DEFAULT_TIMESTAMP_BASE,
            preloaded,
            expect: Expect::new(Server::Metricsd, &series(preloaded)),
        }
    }

    /// The same requests to `server`, in its protocol.
    pub fn with_server(mut self, server: Server) -> Workload {
        self.expect = Expect::new(server, &series(self.preloaded));
        self
    }

    /// Keys `<prefix>0` .. instead.
    pub fn with_key_prefix(mut self, prefix: &str) -> Workload {
        self.keys = key_names(self.mix, prefix, self.keys.len());
        self.prefix = prefix.to_owned();
        self
    }

    /// Put `seq` carries timestamp `base + seq`.
    pub fn with_timestamp_base(mut self, base: i64) -> Workload {
        self.timestamp_base = base;
        self
    }

    /// Connection `conn`'s share of a realistic mix (the series `i` with
    /// `i % connections == conn`), its points from `--seed` and the
    /// timestamp base; None for other workloads, or when it has no series.
    pub fn feed(&self, conn: u64, seed: u64) -> Option<Feed> {
        let Mix::Realistic { shape } = self.mix else {
            return None;
        };
        let generator = RealisticMix {
            seed,
            start: self.timestamp_base,
        };
        let series: Vec<(u32, RealisticSeries)> = (mix_series(shape, self.keys.len()).into_iter().enumerate())
            .filter(|&(i, _)| i as u64 % self.connections == conn)
            // Keys are counted in u32 (the --keys limit), so each fits.
            .map(|(i, (host, metric))| (i as u32, generator.series(host, metric)))
            .collect();
        (!series.is_empty()).then_some(Feed { series, next: 0 })
    }

    /// Points stored under each key before the run.
    pub fn preloaded(&self) -> usize {
        self.preloaded
    }

    /// The keys the run writes (its puts, or the points stored before
    /// it), for `--cleanup`; none when it only reads.
    pub fn written_keys(&self) -> impl Iterator<Item = &str> + '_ {
        let writes = self.mix.has_puts() || self.preloaded > 0;
        self.keys.iter().filter(move |_| writes).map(String::as_str)
    }

    /// Every point to store before the run: (key, value, timestamp).
    pub fn preload_points(&self) -> impl Iterator<Item = (&str, f64, i64)> + '_ {
        self.keys
            .iter()
            .flat_map(move |key| (1..=self.preloaded() as i64).map(move |t| (key.as_str(), preload_value(t), t)))
    }

    /// A Redis run's preload: the keys, the points each gets and the
    /// checks of the replies; None for a metricsd run.
    pub fn redis_preload(&self) -> Option<redis::Preload<'_>> {
        match &self.expect {
            Expect::Redis(expected) => Some(redis::Preload {
                keys: &self.keys,
                points: series(self.preloaded),
                expected,
            }),
            Expect::Lines { .. } | Expect::Nothing => None,
        }
    }

    /// Cuts the answers of this run's server.
    pub fn framer(&self) -> Framer {
        match self.expect {
            // Graphite: nothing is read from its port (see `stream`).
            Expect::Lines { .. } | Expect::Nothing => Framer::Lines(ResponseScanner::new()),
            Expect::Redis(_) => Framer::Resp(RespScanner::new()),
        }
    }

    /// The request numbered `seq` in the run, with a key and kind drawn
    /// from `rng`.
    #[inline]
    pub fn next_op(&self, rng: &mut SplitMix64, seq: u64) -> Op {
        let put = match self.mix {
            // A realistic mix's puts come from each connection's Feed.
            Mix::Put | Mix::Realistic { .. } => true,
            Mix::Get => false,
            Mix::Mixed { put_percent } => rng.below(100) < u64::from(put_percent),
            Mix::Range { seconds } => {
                // Windows wholly inside the preloaded 1..=P when they fit.
                let starts = (self.preloaded as u64).saturating_sub(u64::from(seconds)) + 1;
                return Op::Range {
                    key: rng.below(self.keys.len() as u64) as u32,
                    from: 1 + rng.below(starts) as i64,
                };
            }
        };
        let keys = self.keys.len() as u64;
        let conn = seq % self.connections;
        // Keys are counted in u32 (the --keys limit), so each fits.
        if !put {
            Op::Get {
                key: rng.below(keys) as u32,
            }
        } else if keys >= self.connections {
            // One of the keys k with k % connections == conn.
            let owned = (keys - conn).div_ceil(self.connections);
            let key = conn + self.connections * rng.below(owned);
            Op::Put { key: key as u32, seq }
        } else {
            Op::Put {
                key: (conn % keys) as u32,
                seq,
            }
        }
    }

    /// The key named `key` (an index from an [`Op`]).
    pub fn key(&self, key: u32) -> &str {
        &self.keys[key as usize]
    }

    /// The value and timestamp put `seq` carries.
    pub fn put_point(&self, seq: u64) -> (f64, i64) {
        // Values cycle through 0.0, 0.5, …, 499.5: short, yet not all alike.
        (
            (seq % 1000) as f64 / 2.0,
            self.timestamp_base.saturating_add_unsigned(seq),
        )
    }

    /// Appends the request of `op`.
    #[inline]
    pub fn encode(&self, op: Op, out: &mut Vec<u8>) {
        match (op, &self.expect) {
            (Op::Put { key, seq }, Expect::Lines { .. }) => {
                let (value, timestamp) = self.put_point(seq);
                encode_put(out, &self.keys[key as usize], value, timestamp)
            }
            (Op::Get { key }, Expect::Lines { .. }) => encode_get(out, Query::Key(&self.keys[key as usize])),
            (Op::Point { key, timestamp, bits }, Expect::Lines { .. }) => {
                encode_put(out, &self.keys[key as usize], f64::from_bits(bits), timestamp)
            }
            (Op::Range { key, from }, Expect::Lines { .. }) => {
                let range = Range {
                    query: Query::Key(&self.keys[key as usize]),
                    from,
                    to: self.window_end(from),
                    buckets: None,
                };
                encode_range(out, &range);
            }
            (Op::Point { key, timestamp, bits }, Expect::Redis(_)) => {
                redis::encode_put(out, &self.keys[key as usize], f64::from_bits(bits), timestamp)
            }
            // Refused by the command line: Redis has no range.
            (Op::Range { key, .. }, Expect::Redis(_)) => redis::encode_get(out, &self.keys[key as usize]),
            (Op::Put { key, seq }, Expect::Redis(_)) => {
                let (value, timestamp) = self.put_point(seq);
                redis::encode_put(out, &self.keys[key as usize], value, timestamp)
            }
            (Op::Get { key }, Expect::Redis(_)) => redis::encode_get(out, &self.keys[key as usize]),
            (Op::Put { key, seq }, Expect::Nothing) => {
                let (value, timestamp) = self.put_point(seq);
                encode_plaintext(out, &self.keys[key as usize], value, timestamp)
            }
            (Op::Point { key, timestamp, bits }, Expect::Nothing) => {
                encode_plaintext(out, &self.keys[key as usize], f64::from_bits(bits), timestamp)
            }
            // A Graphite port cannot be read: the command line refuses
            // reads with --server graphite, so none is ever made.
            (Op::Get { .. } | Op::Range { .. }, Expect::Nothing) => {}
        }
    }

    /// Every point of a put-only run whose connection `i` sent
    /// `sent[i]` puts, as (key, value, timestamp), in no particular order:
    /// the run's ops drawn again from the same seeds, for checking what a
    /// server stored.
    pub fn replay_puts<'a>(&'a self, seed: u64, sent: &'a [u64]) -> impl Iterator<Item = (u32, f64, i64)> + 'a {
        let connections = self.connections;
        sent.iter().enumerate().flat_map(move |(index, &count)| {
            let mut rng = SplitMix64::new(seed, index as u64);
            (0..count).filter_map(move |n| match self.next_op(&mut rng, n * connections + index as u64) {
                Op::Put { key, seq } => {
                    let (value, timestamp) = self.put_point(seq);
                    Some((key, value, timestamp))
                }
                Op::Point { key, timestamp, bits } => Some((key, f64::from_bits(bits), timestamp)),
                Op::Get { .. } | Op::Range { .. } => None,
            })
        })
    }

    /// The request of `op`, readable and on one line, for messages.
    pub fn describe(&self, op: Op) -> String {
        match (op, &self.expect) {
            (_, Expect::Lines { .. } | Expect::Nothing) => {
                let mut line = Vec::new();
                self.encode(op, &mut line);
                line.pop();
                String::from_utf8_lossy(&line).into_owned()
            }
            (Op::Put { key, seq }, Expect::Redis(_)) => {
                let (value, timestamp) = self.put_point(seq);
                redis::describe_put(&self.keys[key as usize], value, timestamp)
            }
            (Op::Point { key, timestamp, bits }, Expect::Redis(_)) => {
                redis::describe_put(&self.keys[key as usize], f64::from_bits(bits), timestamp)
            }
            (Op::Get { key } | Op::Range { key, .. }, Expect::Redis(_)) => {
                redis::describe_get(&self.keys[key as usize])
            }
        }
    }

    /// The last timestamp of the range window from `from`.
    fn window_end(&self, from: i64) -> i64 {
        match self.mix {
            Mix::Range { seconds } => from + i64::from(seconds) - 1,
            _ => from,
        }
    }

    /// Judges one whole answer (as cut by [`Framer::next`]) to `op`.
    /// `Err` says why the answer is wrong: the run must stop.
    pub fn check(&self, op: Op, answer: &[u8]) -> Result<Verdict, String> {
        let point_tails = match &self.expect {
            Expect::Lines { point_tails } => point_tails,
            Expect::Nothing => return Err("an answer from a Graphite port, which never answers".to_owned()),
            Expect::Redis(expected) => {
                return match op {
                    Op::Put { .. } | Op::Point { .. } => expected.check_put(answer),
                    Op::Get { .. } | Op::Range { .. } => expected.check_get(answer, self.mix == Mix::Get),
                }
            }
        };
        let body = match parse_response(answer).map_err(|e| e.to_string())? {
            Response::Error { .. } => return Ok(Verdict::Error),
            Response::Ok { body } => body,
        };
        match op {
            Op::Put { .. } | Op::Point { .. } if body.is_empty() => Ok(Verdict::Ok),
            Op::Put { .. } | Op::Point { .. } => Err(ResponseError::UnexpectedData.to_string()),
            Op::Get { key } => {
                let key = &self.keys[key as usize];
                match self.mix {
                    Mix::Get => self.check_preloaded(point_tails, key, body),
                    _ => self.check_grown(key, body),
                }
                .map(|()| Verdict::Ok)
            }
            Op::Range { key, from } => {
                // The preloaded points of the window: timestamps from..=to
                // are tails from - 1 .. to, clipped to what was stored.
                let (first, last) = (from as usize - 1, (self.window_end(from) as usize).min(self.preloaded));
                let key = &self.keys[key as usize];
                self.check_preloaded(&point_tails[first..last], key, body)
                    .map(|()| Verdict::Ok)
            }
        }
    }

    /// A get-only run: the answer is exactly the preloaded points of `key`.
    fn check_preloaded(&self, point_tails: &[Vec<u8>], key: &str, body: &[u8]) -> Result<(), String> {
        let mut rest = body;
        for tail in point_tails {
            match rest
                .strip_prefix(key.as_bytes())
                .and_then(|r| r.strip_prefix(tail.as_slice()))
            {
                Some(r) => rest = r,
                None => return Err(self.explain_mismatch(point_tails, key, body)),
            }
        }
        if rest.is_empty() {
            Ok(())
        } else {
            Err(self.explain_mismatch(point_tails, key, body))
        }
    }

    /// Says how a get-only answer differs from the preloaded points.
    fn explain_mismatch(&self, point_tails: &[Vec<u8>], key: &str, body: &[u8]) -> String {
        let lines = memchr_iter(b'\n', body).count();
        if lines != point_tails.len() {
            return format!(
                "{lines} points where {} were stored (a server that already held {}* points, \
                 say from an earlier put run, answers so: start it afresh)",
                point_tails.len(),
                self.prefix
            );
        }
        let mut expected = Vec::new();
        for (n, (line, tail)) in body.split_inclusive(|&b| b == b'\n').zip(point_tails).enumerate() {
            expected.clear();
            expected.extend_from_slice(key.as_bytes());
            expected.extend_from_slice(tail);
            if line != expected.as_slice() {
                return format!(
                    "point {} is {:?} where {:?} was stored",
                    n + 1,
                    String::from_utf8_lossy(line),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
        // Unreachable for an answer that failed the check; say so rather than panic.
        "the answer differs from the stored points".to_owned()
    }

    /// A run that puts while it gets: the answer holds at least the
    /// preloaded points, all of `key`. (Parsing every value would make the
    /// tool, not the server, the bottleneck as series grow.)
    fn check_grown(&self, key: &str, body: &[u8]) -> Result<(), String> {
        let mut lines = 0;
        let mut rest = body;
        while !rest.is_empty() {
            let end = memchr(b'\n', rest).map_or(rest.len(), |i| i + 1);
            let line = &rest[..end];
            if !(line.starts_with(key.as_bytes()) && line.get(key.len()) == Some(&b' ')) {
                return Err(format!(
                    "a data line of another key: {:?}",
                    String::from_utf8_lossy(line)
                ));
            }
            lines += 1;
            rest = &rest[end..];
        }
        if lines < self.preloaded() {
            return Err(format!(
                "{lines} points where at least {} were stored",
                self.preloaded()
            ));
        }
        Ok(())
    }
}

/// Appends the Graphite plaintext line `<key> <value> <timestamp>\n`: the
/// course protocol's data line, byte for byte, whose numbers carbon reads
/// alike.
pub fn encode_plaintext(out: &mut Vec<u8>, key: &str, value: f64, timestamp: i64) {
    write_point(out, key, value, timestamp)
}

/// Cuts a connection's input into whole answers, in its server's protocol.
#[derive(Debug)]
pub enum Framer {
    Lines(ResponseScanner),
    Resp(RespScanner),
}

impl Framer {
    /// The length of the first whole answer at the front of `buf`, or None
    /// while more bytes are needed, or why `buf` cannot begin an answer.
    /// Called as [`ResponseScanner::check`] is.
    #[inline]
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<usize>, String> {
        match self {
            Framer::Lines(scanner) => match scanner.check(buf) {
                Some(len) => Ok(Some(len)),
                None if plausible_start(buf) => Ok(None),
                None => Err(ResponseError::UnknownStatus.to_string()),
            },
            Framer::Resp(scanner) => scanner.check(buf).map_err(|e| e.to_string()),
        }
    }
}

/// Whether `partial`, the start of an answer still incomplete, can become a
/// valid one: its status line must be `ok` or `error`. Lets garbage stop the
/// run at once instead of after the stall timeout.
fn plausible_start(partial: &[u8]) -> bool {
    [&b"ok\n"[..], b"error\n"]
        .iter()
        .any(|status| status.starts_with(&partial[..partial.len().min(status.len())]))
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a fast, statistically sound
/// generator that seeds well from consecutive numbers, so each connection
/// gets its own reproducible stream from `--seed` and its index.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = SplitMix64(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next();
        rng
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` by multiply-and-shift (Lemire): no division, and
    /// a bias of at most n / 2^64.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metricsd::protocol::response::{begin_ok, end, OK_EMPTY, WRONG_COMMAND};
    use metricsd::protocol::{parse_line, Request};

    /// The answer a correct server gives to `get key` after the preload.
    fn preloaded_answer(w: &Workload, key: &str) -> Vec<u8> {
        let mut out = Vec::new();
        begin_ok(&mut out);
        for (k, value, t) in w.preload_points().filter(|p| p.0 == key) {
            write_point(&mut out, k, value, t);
        }
        end(&mut out);
        out
    }

    #[test]
    fn workload_names() {
        assert_eq!(Mix::parse("put"), Ok(Mix::Put));
        assert_eq!(Mix::parse("get"), Ok(Mix::Get));
        assert_eq!(Mix::parse("mixed:30"), Ok(Mix::Mixed { put_percent: 30 }));
        assert_eq!(Mix::parse("mixed:30").unwrap().to_string(), "mixed:30");
        for bad in ["", "PUT", "mixed", "mixed:", "mixed:101", "mixed:-1", "mixed:x"] {
            assert!(Mix::parse(bad).is_err(), "{bad}");
        }
        assert!(!Mix::Mixed { put_percent: 100 }.has_gets());
        assert!(Mix::Mixed { put_percent: 99 }.has_gets());
    }

    #[test]
    fn realistic_and_range_workload_names() {
        assert_eq!(Mix::parse("mix"), Ok(Mix::Realistic { shape: None }));
        for shape in Shape::ALL {
            let name = format!("mix:{}", shape.name());
            assert_eq!(Mix::parse(&name), Ok(Mix::Realistic { shape: Some(shape) }));
            assert_eq!(Mix::parse(&name).unwrap().to_string(), name);
        }
        assert_eq!(Mix::parse("range:360"), Ok(Mix::Range { seconds: 360 }));
        assert_eq!(Mix::Range { seconds: 360 }.to_string(), "range:360");
        for bad in [
            "mix:",
            "mix:Counter",
            "range",
            "range:",
            "range:0",
            "range:-1",
            "range:1.5",
        ] {
            assert!(Mix::parse(bad).is_err(), "{bad}");
        }
        assert!(!Mix::Realistic { shape: None }.has_gets());
        assert!(Mix::Range { seconds: 1 }.has_gets());
    }

    #[test]
    fn a_realistic_mix_puts_each_series_in_order_from_one_connection() {
        let (keys, connections) = (45u32, 4u64);
        let w = Workload::new(Mix::Realistic { shape: None }, keys, 0, connections).with_key_prefix("mix.");
        let mut last: std::collections::HashMap<String, (u64, i64)> = Default::default();
        for conn in 0..connections {
            let mut feed = w.feed(conn, 7).expect("series for every connection");
            for _ in 0..500 {
                let op = feed.next_op();
                let mut line = Vec::new();
                w.encode(op, &mut line);
                assert_eq!(line.pop(), Some(b'\n'));
                let Ok(Some(Request::Put { key, timestamp, value })) = parse_line(&line) else {
                    panic!("{op:?} encoded as {:?}", String::from_utf8_lossy(&line));
                };
                let Op::Point { bits, .. } = op else { panic!("{op:?}") };
                assert_eq!(value.to_bits(), bits, "the value's text reads back exactly");
                assert!(key.starts_with("mix.host"), "{key}");
                if let Some(&(owner, before)) = last.get(key) {
                    assert_eq!(owner, conn, "{key} from two connections");
                    assert!(before < timestamp, "{key} out of order");
                }
                last.insert(key.to_owned(), (conn, timestamp));
            }
        }
        assert_eq!(last.len(), keys as usize);
        // One shape only.
        let w = Workload::new(
            Mix::Realistic {
                shape: Some(Shape::Flag),
            },
            10,
            0,
            1,
        );
        let mut feed = w.feed(0, 1).unwrap();
        for _ in 0..20 {
            let Op::Point { key, .. } = feed.next_op() else {
                panic!()
            };
            assert!(w.keys[key as usize].contains(".flag"), "{}", w.keys[key as usize]);
        }
        assert!(Workload::new(Mix::Put, 10, 0, 1).feed(0, 1).is_none());
    }

    #[test]
    fn range_requests_ask_a_window_of_the_preload_and_demand_exactly_it() {
        let w = Workload::new(Mix::Range { seconds: 5 }, 3, 12, 1);
        let mut rng = SplitMix64::new(1, 0);
        let mut froms = std::collections::BTreeSet::new();
        for seq in 0..300 {
            let op = w.next_op(&mut rng, seq);
            let Op::Range { key, from } = op else { panic!("{op:?}") };
            froms.insert(from);
            let mut line = Vec::new();
            w.encode(op, &mut line);
            assert_eq!(line.pop(), Some(b'\n'));
            match parse_line(&line) {
                Ok(Some(Request::Range(r))) => assert_eq!(
                    (r.query, r.from, r.to, r.buckets),
                    (Query::Key(&w.keys[key as usize]), from, from + 4, None)
                ),
                other => panic!("{other:?}"),
            }
            // The answer a correct server gives: the window's points.
            let name = &w.keys[key as usize];
            let mut answer = Vec::new();
            begin_ok(&mut answer);
            for (k, value, t) in w
                .preload_points()
                .filter(|p| p.0 == name && (from..from + 5).contains(&p.2))
            {
                write_point(&mut answer, k, value, t);
            }
            end(&mut answer);
            assert_eq!(w.check(op, &answer), Ok(Verdict::Ok));
            // One point short, or the whole series: wrong.
            assert!(w.check(op, &preloaded_answer(&w, name)).is_err());
        }
        assert_eq!(froms, (1..=8).collect(), "every window inside 1..=12");
        // A window longer than the series: all of it.
        let w = Workload::new(Mix::Range { seconds: 50 }, 1, 12, 1);
        let op = w.next_op(&mut SplitMix64::new(1, 0), 0);
        assert_eq!(op, Op::Range { key: 0, from: 1 });
        assert_eq!(w.check(op, &preloaded_answer(&w, "bench.k0")), Ok(Verdict::Ok));
    }

    #[test]
    fn requests_parse_as_the_server_parses_them() {
        let w = Workload::new(Mix::Mixed { put_percent: 50 }, 10, 3, 1);
        let mut rng = SplitMix64::new(1, 0);
        let (mut puts, mut gets) = (0, 0);
        for seq in 0..200 {
            let op = w.next_op(&mut rng, seq);
            let mut line = Vec::new();
            w.encode(op, &mut line);
            assert_eq!(line.pop(), Some(b'\n'));
            match (op, parse_line(&line)) {
                (Op::Put { key, .. }, Ok(Some(Request::Put { key: k, timestamp, .. }))) => {
                    assert_eq!(k, format!("bench.k{key}"));
                    assert_eq!(timestamp, DEFAULT_TIMESTAMP_BASE + seq as i64);
                    puts += 1;
                }
                (Op::Get { key }, Ok(Some(Request::Get(Query::Key(k))))) => {
                    assert_eq!(k, format!("bench.k{key}"));
                    gets += 1;
                }
                (op, parsed) => panic!("{op:?} encoded as {parsed:?}"),
            }
        }
        // 50% each way; SplitMix64 is not that lopsided.
        assert!(puts > 60 && gets > 60, "{puts} puts, {gets} gets");
    }

    #[test]
    fn each_key_is_put_by_one_connection() {
        let w = Workload::new(Mix::Put, 10, 0, 3);
        let mut rng = SplitMix64::new(1, 0);
        let mut writer = [None; 10];
        for seq in 0..300 {
            let Op::Put { key, .. } = w.next_op(&mut rng, seq) else {
                panic!("a put run")
            };
            let conn = seq % 3;
            assert_eq!(*writer[key as usize].get_or_insert(conn), conn, "key {key}");
        }
        // Connection 0 owns keys 0, 3, 6, 9; 1 owns 1, 4, 7; 2 owns 2, 5, 8.
        assert!(writer.iter().all(Option::is_some), "every key is put: {writer:?}");
        // Fewer keys than connections: connection i puts to key i % keys.
        let few = Workload::new(Mix::Put, 2, 0, 5);
        let keys: Vec<_> = (0..5).map(|seq| few.next_op(&mut rng, seq)).collect();
        let expected: Vec<_> = [0, 1, 0, 1, 0]
            .iter()
            .zip(0..)
            .map(|(&key, seq)| Op::Put { key, seq })
            .collect();
        assert_eq!(keys, expected);
    }

    #[test]
    fn preload_covers_every_key() {
        let w = Workload::new(Mix::Get, 3, 2, 1);
        let points: Vec<_> = w.preload_points().collect();
        assert_eq!(
            points,
            [
                ("bench.k0", 0.25, 1),
                ("bench.k0", 0.5, 2),
                ("bench.k1", 0.25, 1),
                ("bench.k1", 0.5, 2),
                ("bench.k2", 0.25, 1),
                ("bench.k2", 0.5, 2)
            ]
        );
        assert_eq!(Workload::new(Mix::Put, 3, 2, 1).preload_points().count(), 0);
    }

    #[test]
    fn put_answers() {
        let w = Workload::new(Mix::Put, 1, 0, 1);
        let put = Op::Put { key: 0, seq: 0 };
        assert_eq!(w.check(put, OK_EMPTY), Ok(Verdict::Ok));
        assert_eq!(w.check(put, WRONG_COMMAND), Ok(Verdict::Error));
        assert!(w
            .check(put, b"ok\nbench.k0 1.0 1\n\n")
            .unwrap_err()
            .contains("data lines"));
        assert!(w.check(put, b"OK\n\n").unwrap_err().contains("status"));
    }

    #[test]
    fn get_answers_must_be_the_preloaded_points() {
        let w = Workload::new(Mix::Get, 2, 5, 1);
        let get = Op::Get { key: 1 };
        let good = preloaded_answer(&w, "bench.k1");
        assert_eq!(w.check(get, &good), Ok(Verdict::Ok));
        assert_eq!(w.check(get, WRONG_COMMAND), Ok(Verdict::Error));
        // Another key's points, a missing point, an extra point, a changed value.
        let other = preloaded_answer(&w, "bench.k0");
        assert!(w
            .check(get, &other)
            .unwrap_err()
            .contains("point 1 is \"bench.k0 0.25 1\\n\""));
        let text = String::from_utf8(good).unwrap();
        let missing = text.replace("bench.k1 0.5 2\n", "");
        assert!(w
            .check(get, missing.as_bytes())
            .unwrap_err()
            .starts_with("4 points where 5"));
        let extra = text.replace("\n\n", "\nbench.k1 1.0 1600000000\n\n");
        assert!(w.check(get, extra.as_bytes()).unwrap_err().contains("start it afresh"));
        let changed = text.replace("bench.k1 0.75 3", "bench.k1 0.70 3");
        assert_eq!(
            w.check(get, changed.as_bytes()),
            Err("point 3 is \"bench.k1 0.70 3\\n\" where \"bench.k1 0.75 3\\n\" was stored".into())
        );
        // With nothing preloaded, only `ok\n\n` is right.
        let empty = Workload::new(Mix::Get, 1, 0, 1);
        assert_eq!(empty.check(Op::Get { key: 0 }, OK_EMPTY), Ok(Verdict::Ok));
        assert!(empty.check(Op::Get { key: 0 }, b"ok\nbench.k0 1.0 1\n\n").is_err());
    }

    #[test]
    fn mixed_get_answers_need_their_key_and_the_preloaded_count() {
        let w = Workload::new(Mix::Mixed { put_percent: 10 }, 2, 2, 1);
        let get = Op::Get { key: 0 };
        assert_eq!(w.check(get, &preloaded_answer(&w, "bench.k0")), Ok(Verdict::Ok));
        assert_eq!(
            w.check(get, b"ok\nbench.k0 1.0 1\nbench.k0 2.0 2\nbench.k0 3.0 1600000000\n\n"),
            Ok(Verdict::Ok)
        );
        assert!(w
            .check(get, b"ok\nbench.k0 1.0 1\n\n")
            .unwrap_err()
            .contains("at least 2"));
        assert!(w.check(get, b"ok\nbench.k0 1.0 1\nbench.k00 1.0 2\n\n").is_err());
        assert!(w.check(get, b"ok\nbench.k0 1.0 1\nbench.k1 1.0 2\n\n").is_err());
    }

    #[test]
    fn prefix_and_timestamp_base_shape_the_requests() {
        let w = Workload::new(Mix::Put, 3, 0, 1)
            .with_key_prefix("x.")
            .with_timestamp_base(-5);
        let op = Op::Put { key: 2, seq: 7 };
        assert_eq!(w.describe(op), "put x.2 3.5 2");
        assert_eq!(w.describe(Op::Get { key: 0 }), "get x.0");
    }

    #[test]
    fn redis_requests_and_answers() {
        let w = Workload::new(Mix::Get, 2, 2, 1).with_server(Server::Redis);
        let mut out = Vec::new();
        w.encode(Op::Put { key: 1, seq: 3 }, &mut out);
        w.encode(Op::Get { key: 1 }, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "*3\r\n$5\r\nRPUSH\r\n$8\r\nbench.k1\r\n$14\r\n1.5 1600000003\r\n\
             *4\r\n$6\r\nLRANGE\r\n$8\r\nbench.k1\r\n$1\r\n0\r\n$2\r\n-1\r\n"
        );
        assert_eq!(
            w.describe(Op::Put { key: 1, seq: 3 }),
            "RPUSH bench.k1 \"1.5 1600000003\""
        );
        assert_eq!(w.describe(Op::Get { key: 0 }), "LRANGE bench.k0 0 -1");
        let get = Op::Get { key: 0 };
        assert_eq!(w.check(get, b"*2\r\n$6\r\n0.25 1\r\n$5\r\n0.5 2\r\n"), Ok(Verdict::Ok));
        assert_eq!(w.check(get, b"-ERR x\r\n"), Ok(Verdict::Error));
        assert!(w.check(get, OK_EMPTY).is_err());
        assert_eq!(w.check(Op::Put { key: 0, seq: 0 }, b":3\r\n"), Ok(Verdict::Ok));
        // A mixed run accepts lists that grew.
        let mixed = Workload::new(Mix::Mixed { put_percent: 50 }, 2, 1, 1).with_server(Server::Redis);
        assert_eq!(
            mixed.check(get, b"*2\r\n$6\r\n0.25 1\r\n$3\r\n1 9\r\n"),
            Ok(Verdict::Ok)
        );
        let preload = mixed.redis_preload().expect("a Redis run");
        assert_eq!((preload.keys.len(), preload.points), (2, vec![(0.25, 1)]));
        assert!(Workload::new(Mix::Get, 2, 2, 1).redis_preload().is_none());
    }

    #[test]
    fn framers_cut_answers_and_refuse_what_no_answer_begins_with() {
        let mut lines = Workload::new(Mix::Put, 1, 0, 1).framer();
        assert_eq!(lines.next(b"ok\n\nok"), Ok(Some(4)));
        assert_eq!(lines.next(b"ok"), Ok(None));
        assert!(lines.next(b"+OK\r\n").unwrap_err().contains("status"));
        let mut resp = Workload::new(Mix::Put, 1, 0, 1).with_server(Server::Redis).framer();
        assert_eq!(resp.next(b":1\r\n:2"), Ok(Some(4)));
        assert_eq!(resp.next(b":2"), Ok(None));
        assert!(resp.next(b"ok\n\n").unwrap_err().contains("type byte"));
        assert_eq!(Server::parse("redis"), Ok(Server::Redis));
        assert_eq!(Server::Metricsd.to_string(), "metricsd");
    }

    #[test]
    fn plausible_starts() {
        for ok in [
            &b""[..],
            b"o",
            b"ok",
            b"ok\n",
            b"ok\nbench",
            b"e",
            b"error",
            b"error\nwrong",
        ] {
            assert!(plausible_start(ok), "{ok:?}");
        }
        for bad in [&b"x"[..], b"okay", b"ok \n", b"HTTP/1.1", b"err\n", b"errors\n"] {
            assert!(!plausible_start(bad), "{bad:?}");
        }
    }

    #[test]
    fn plaintext_lines_parse_as_a_graphite_server_parses_them() {
        use metricsd::graphite::plaintext::{parse_line, Timestamp};
        let w = Workload::new(Mix::Put, 7, 0, 3)
            .with_key_prefix("agent.x")
            .with_timestamp_base(-2)
            .with_server(Server::Graphite);
        let mut rng = SplitMix64::new(1, 0);
        let mut out = Vec::new();
        for seq in 0..3000 {
            let op = w.next_op(&mut rng, seq);
            let Op::Put { key, .. } = op else { panic!("a put run") };
            out.clear();
            w.encode(op, &mut out);
            assert_eq!(out.pop(), Some(b'\n'));
            assert!(!out.contains(&b'\n'));
            let metric = parse_line(&out).expect("a valid line").expect("a point");
            let (value, timestamp) = w.put_point(seq);
            assert_eq!(metric.key, format!("agent.x{key}"));
            assert_eq!(metric.value.to_bits(), value.to_bits());
            // Timestamp -1 would mean "now": the base puts seq 1 there.
            let expected = if timestamp == -1 {
                Timestamp::Now
            } else {
                Timestamp::At(timestamp)
            };
            assert_eq!(metric.timestamp, expected);
            assert_eq!(w.describe(op), String::from_utf8(out.clone()).unwrap());
        }
        let mut line = Vec::new();
        encode_plaintext(&mut line, "a.b", 0.5, 1600000000);
        assert_eq!(line, b"a.b 0.5 1600000000\n");
        assert!(w
            .check(Op::Put { key: 0, seq: 0 }, OK_EMPTY)
            .unwrap_err()
            .contains("never answers"));
        // Nothing to send for a get, which the command line refuses anyway.
        line.clear();
        w.encode(Op::Get { key: 0 }, &mut line);
        assert!(line.is_empty());
    }

    #[test]
    fn replay_gives_back_every_put_of_the_run() {
        let w = Workload::new(Mix::Put, 5, 0, 3).with_server(Server::Graphite);
        // Connection i sends sent[i] puts, drawn from its own stream.
        let sent = [4u64, 3, 0];
        let mut made = Vec::new();
        for (index, &count) in sent.iter().enumerate() {
            let mut rng = SplitMix64::new(9, index as u64);
            for n in 0..count {
                let Op::Put { key, seq } = w.next_op(&mut rng, n * 3 + index as u64) else {
                    panic!("a put run")
                };
                let (value, timestamp) = w.put_point(seq);
                made.push((key, value.to_bits(), timestamp));
            }
        }
        let mut replayed: Vec<_> = w.replay_puts(9, &sent).map(|(k, v, t)| (k, v.to_bits(), t)).collect();
        made.sort_unstable();
        replayed.sort_unstable();
        assert_eq!(replayed, made);
        assert_eq!(replayed.len(), 7);
        // Another seed draws other keys.
        let other: Vec<_> = w.replay_puts(10, &sent).map(|(k, _, _)| k).collect();
        assert_ne!(other, w.replay_puts(9, &sent).map(|(k, _, _)| k).collect::<Vec<_>>());
    }

    #[test]
    fn below_stays_in_range_and_streams_differ() {
        let mut rng = SplitMix64::new(7, 0);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[rng.below(10) as usize] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_ne!(SplitMix64::new(7, 0).next(), SplitMix64::new(7, 1).next());
        assert_eq!(SplitMix64::new(7, 1).next(), SplitMix64::new(7, 1).next());
    }
}
