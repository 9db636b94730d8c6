//! After a Graphite stream (`--server graphite`): waits until the server
//! holds every point sent, asking through its own read API, then checks a
//! sample of series point by point. A Graphite port never answers, so this
//! is how a run knows that its points arrived, and when.
//!
//! - `--confirm metricsd:ADDR`: the course protocol at ADDR. `stats`
//!   counts the points stored (`points`), read before the stream and polled
//!   after it until it has grown by the points sent; `get` of the sampled
//!   keys must give back exactly the points sent to them.
//! - `--confirm victoria:ADDR`: VictoriaMetrics' HTTP API at ADDR. Its
//!   Graphite ingestion names a series by the dotted path (`__name__`), so
//!   `/api/v1/query` counts the run's points with
//!   `sum(count_over_time({__name__=~"PREFIX.*"}[W]))` over the run's
//!   timestamps (`nocache=1`: its result cache would answer an old count),
//!   and `/api/v1/export` gives the sampled series back. It makes points
//!   searchable seconds after it has stored them (its in-memory parts and
//!   index entries are flushed on timers), so the time they are *stored*,
//!   its own counter `vm_rows_added_to_storage_total` on `/metrics`, is
//!   waited for and reported first.
//!
//! For metricsd a stored point is readable at once: both times are one.
//!
//! Both count the points in the run's timestamp range only (metricsd: the
//! growth of its `points`), so earlier runs at other `--timestamp-base`s do
//! not disturb a run.

use metricsd::{Client, ClientError};
use serde_json::Value;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How often the server is asked while points are on their way: fine
/// enough to time a run of a second to about 1%, rare enough that the
/// asking costs the server nothing worth counting (one `stats` or one
/// count query per interval).
const POLL_EVERY: Duration = Duration::from_millis(10);
/// VictoriaMetrics' count query reads every point of the run, and the
/// server's CPU is what a comparison measures: it is asked after 50 ms,
/// then at twice the last interval, up to once a second (about ten queries
/// for the few seconds it takes to make points searchable).
const VICTORIA_FIRST_POLL: Duration = Duration::from_millis(50);
const VICTORIA_LONGEST_POLL: Duration = Duration::from_secs(1);
/// Bytes of an unexpected HTTP answer quoted in an error.
const EXCERPT_BYTES: usize = 200;

/// The server's read API that confirms arrival.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirm {
    /// A metricsd's course-protocol address.
    Metricsd(String),
    /// A VictoriaMetrics' HTTP address.
    Victoria(String),
}

impl Confirm {
    /// `metricsd:ADDR` or `victoria:ADDR`.
    pub fn parse(text: &str) -> Result<Confirm, String> {
        match text.split_once(':') {
            Some(("metricsd", addr)) if !addr.is_empty() => Ok(Confirm::Metricsd(addr.to_owned())),
            Some(("victoria", addr)) if !addr.is_empty() => Ok(Confirm::Victoria(addr.to_owned())),
            _ => Err(format!(
                "--confirm must be metricsd:ADDR or victoria:HTTPADDR, not {text:?}"
            )),
        }
    }

    /// `metricsd` or `victoria`.
    pub fn kind(&self) -> &'static str {
        match self {
            Confirm::Metricsd(_) => "metricsd",
            Confirm::Victoria(_) => "victoria",
        }
    }

    pub fn addr(&self) -> &str {
        match self {
            Confirm::Metricsd(addr) | Confirm::Victoria(addr) => addr,
        }
    }
}

/// Why arrival could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, io::Error),
    #[error("cannot ask {0}: {1}")]
    Client(String, ClientError),
    #[error("cannot ask {0}: {1}")]
    Http(String, String),
    #[error(
        "{have} of the {sent} points sent are stored, and that has not changed for {timeout:?} \
         (lines refused by the server, or a point put twice: start it afresh or give another \
         --timestamp-base)"
    )]
    Missing { have: u64, sent: u64, timeout: Duration },
    #[error(
        "{have} points are stored where {sent} were sent (another client writing, or points already \
         held at these timestamps: start the server afresh or give another --timestamp-base)"
    )]
    Excess { have: u64, sent: u64 },
    #[error("the stats of {0} have no points figure: not metricsd?")]
    NoPoints(String),
    #[error("series {key}: {reason}")]
    Mismatch { key: String, reason: String },
}

/// The points of one series, (timestamp, value), by timestamp.
pub type Points = Vec<(i64, f64)>;

/// A connection to the read API, with what was stored before the run.
pub struct Target {
    addr: String,
    api: Api,
    timeout: Duration,
}

enum Api {
    Metricsd { client: Client, points_before: u64 },
    Victoria { addr: SocketAddr, rows_before: u64 },
}

/// When the server held every point sent.
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    /// By its own count of stored points.
    pub stored: Instant,
    /// By its read API.
    pub readable: Instant,
}

/// VictoriaMetrics' count of points added to its storage, on `/metrics`.
const VICTORIA_STORED: &str = "vm_rows_added_to_storage_total";

impl Target {
    /// Connects and reads what the server holds before the run.
    pub fn open(confirm: &Confirm, timeout: Duration) -> Result<Target, ConfirmError> {
        let addr = confirm.addr().to_owned();
        let resolved = addr
            .to_socket_addrs()
            .and_then(|mut a| a.next().ok_or_else(|| io::Error::other("no address")))
            .map_err(|e| ConfirmError::Resolve(addr.clone(), e))?;
        let api = match confirm {
            Confirm::Metricsd(_) => {
                let mut client = Client::new(&resolved.ip().to_string(), resolved.port(), Some(timeout))
                    .map_err(|e| ConfirmError::Client(addr.clone(), e))?;
                let points_before = stored_points(&mut client, &addr)?;
                Api::Metricsd { client, points_before }
            }
            Confirm::Victoria(_) => Api::Victoria {
                addr: resolved,
                rows_before: victoria_stored(resolved, timeout).map_err(|e| ConfirmError::Http(addr.clone(), e))?,
            },
        };
        Ok(Target { addr, api, timeout })
    }

    /// Waits until the server holds `sent` points more than before (of
    /// the run's prefix, timestamps `first..=last`), and returns when it
    /// was seen. Fails when a count stops short for the timeout or goes
    /// past `sent`.
    pub fn wait_for(&mut self, sent: u64, prefix: &str, first: i64, last: i64) -> Result<Arrival, ConfirmError> {
        match self.api {
            Api::Metricsd { .. } => {
                let at = self.wait(sent, (POLL_EVERY, POLL_EVERY), |t| t.count(prefix, first, last))?;
                Ok(Arrival {
                    stored: at,
                    readable: at,
                })
            }
            Api::Victoria { addr, rows_before } => {
                let stored = self.wait(sent, (POLL_EVERY, POLL_EVERY), |t| {
                    let rows = victoria_stored(addr, t.timeout).map_err(|e| ConfirmError::Http(t.addr.clone(), e))?;
                    Ok(rows.saturating_sub(rows_before))
                })?;
                let polls = (VICTORIA_FIRST_POLL, VICTORIA_LONGEST_POLL);
                let readable = self.wait(sent, polls, |t| t.count(prefix, first, last))?;
                Ok(Arrival { stored, readable })
            }
        }
    }

    /// Asks `count` until it says `sent`: after `first`, then at twice the
    /// last interval up to `longest` (`polls`).
    fn wait(
        &mut self,
        sent: u64,
        polls: (Duration, Duration),
        mut count: impl FnMut(&mut Self) -> Result<u64, ConfirmError>,
    ) -> Result<Instant, ConfirmError> {
        let (mut every, longest) = polls;
        let mut last_seen = None;
        let mut since = Instant::now();
        loop {
            let have = count(self)?;
            let now = Instant::now();
            if have == sent {
                return Ok(now);
            }
            if have > sent {
                return Err(ConfirmError::Excess { have, sent });
            }
            if last_seen != Some(have) {
                (last_seen, since) = (Some(have), now);
            } else if now.duration_since(since) > self.timeout {
                return Err(ConfirmError::Missing {
                    have,
                    sent,
                    timeout: self.timeout,
                });
            }
            std::thread::sleep(every);
            every = (every * 2).min(longest);
        }
    }

    /// The run's points the server holds now.
    fn count(&mut self, prefix: &str, first: i64, last: i64) -> Result<u64, ConfirmError> {
        match &mut self.api {
            Api::Metricsd { client, points_before } => {
                let now = stored_points(client, &self.addr)?;
                Ok(now.saturating_sub(*points_before))
            }
            Api::Victoria { addr, .. } => {
                let query = format!(
                    "sum(count_over_time({{__name__=~{}}}[{}s]))",
                    promql_string(&format!("{}.*", regex_escape(prefix))),
                    last - first + 1
                );
                let path = format!("/api/v1/query?nocache=1&time={last}&query={}", percent_encode(&query));
                let body =
                    http_get(*addr, &path, self.timeout).map_err(|e| ConfirmError::Http(self.addr.clone(), e))?;
                victoria_count(&body).map_err(|e| ConfirmError::Http(self.addr.clone(), e))
            }
        }
    }

    /// Checks that series `key` holds exactly `expected` in the run's
    /// timestamps `first..=last`.
    pub fn check_series(&mut self, key: &str, expected: &Points, first: i64, last: i64) -> Result<(), ConfirmError> {
        let got = match &mut self.api {
            Api::Metricsd { client, .. } => {
                let all = client
                    .get(key)
                    .map_err(|e| ConfirmError::Client(self.addr.clone(), e))?;
                all.get(key)
                    .map(|points| {
                        points
                            .iter()
                            .copied()
                            .filter(|&(t, _)| (first..=last).contains(&t))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Api::Victoria { addr, .. } => {
                let selector = format!("{{__name__={}}}", promql_string(key));
                let path = format!(
                    "/api/v1/export?start={first}&end={last}&match[]={}",
                    percent_encode(&selector)
                );
                let body =
                    http_get(*addr, &path, self.timeout).map_err(|e| ConfirmError::Http(self.addr.clone(), e))?;
                victoria_export(&body).map_err(|e| ConfirmError::Http(self.addr.clone(), e))?
            }
        };
        compare_series(expected, &got).map_err(|reason| ConfirmError::Mismatch {
            key: key.to_owned(),
            reason,
        })
    }
}

/// The `points` figure of the `stats` of the metricsd at `addr`.
fn stored_points(client: &mut Client, addr: &str) -> Result<u64, ConfirmError> {
    let figures = client.stats().map_err(|e| ConfirmError::Client(addr.to_owned(), e))?;
    figures
        .iter()
        .find(|(name, _)| name == "points")
        .and_then(|(_, value)| value.parse().ok())
        .ok_or_else(|| ConfirmError::NoPoints(addr.to_owned()))
}

/// How `got` differs from `expected`, if it does.
pub fn compare_series(expected: &Points, got: &Points) -> Result<(), String> {
    if got.len() > expected.len() {
        return Err(format!(
            "{} points where {} were sent (it held points at these timestamps before the run: \
             start it afresh or give another --timestamp-base)",
            got.len(),
            expected.len()
        ));
    }
    if got.len() < expected.len() {
        return Err(format!("{} points where {} were sent", got.len(), expected.len()));
    }
    match expected.iter().zip(got).position(|(e, g)| e != g) {
        Some(i) => Err(format!(
            "point {} is {:?} where {:?} was sent",
            i + 1,
            got[i],
            expected[i]
        )),
        None => Ok(()),
    }
}

/// VictoriaMetrics' count of the points it has stored.
fn victoria_stored(addr: SocketAddr, timeout: Duration) -> Result<u64, String> {
    let body = http_get(addr, "/metrics", timeout)?;
    metric_value(&body, VICTORIA_STORED)
        .ok_or_else(|| format!("no {VICTORIA_STORED} on /metrics: not VictoriaMetrics?"))
}

/// The value of the unlabelled metric `name` in Prometheus' text format.
fn metric_value(body: &[u8], name: &str) -> Option<u64> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(' ')?;
        value.trim().parse::<f64>().ok().filter(|v| *v >= 0.0).map(|v| v as u64)
    })
}

/// The count from an instant query's answer: one sample, or none when no
/// point matched.
fn victoria_count(body: &[u8]) -> Result<u64, String> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e}): {}", excerpt(body)))?;
    let result = answer["data"]["result"]
        .as_array()
        .ok_or_else(|| format!("no data.result: {}", excerpt(body)))?;
    match result.first() {
        None => Ok(0),
        Some(sample) => sample["value"][1]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.fract() == 0.0 && *v >= 0.0)
            .map(|v| v as u64)
            .ok_or_else(|| format!("a count that is not a number: {}", excerpt(body))),
    }
}

/// The points of `/api/v1/export` (JSON lines, one per series, timestamps
/// in milliseconds), in seconds, by timestamp.
fn victoria_export(body: &[u8]) -> Result<Points, String> {
    let mut points = Points::new();
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let series: Value = serde_json::from_slice(line).map_err(|e| format!("not JSON ({e}): {}", excerpt(line)))?;
        let (Some(values), Some(stamps)) = (series["values"].as_array(), series["timestamps"].as_array()) else {
            return Err(format!("no values and timestamps: {}", excerpt(line)));
        };
        for (value, stamp) in values.iter().zip(stamps) {
            match (value.as_f64(), stamp.as_i64()) {
                (Some(v), Some(ms)) => points.push((ms.div_euclid(1000), v)),
                _ => return Err(format!("a point that is not numbers: {}", excerpt(line))),
            }
        }
    }
    points.sort_by_key(|&(t, _)| t);
    Ok(points)
}

/// `text` as a double-quoted PromQL string.
fn promql_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// `text` as a regular expression that matches it literally.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// `text` for a URL's query string: every byte but RFC 3986's unreserved
/// ones as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for &b in text.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    encoded
}

/// The body of a `200` answer to `GET path`. HTTP/1.0, so that the answer
/// is neither chunked nor kept alive: its body is what comes before the
/// server closes.
fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("cannot set a timeout: {e}"))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| format!("cannot send: {e}"))?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| format!("no answer: {e}"))?;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP answer: {}", excerpt(&answer)))?;
    let status = answer.split(|&b| b == b' ').nth(1).unwrap_or_default();
    if status != b"200" {
        return Err(format!("GET {path}: {}", excerpt(&answer)));
    }
    Ok(answer.split_off(split + 4))
}

fn excerpt(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_BYTES)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirm_addresses() {
        assert_eq!(
            Confirm::parse("metricsd:127.0.0.1:8888"),
            Ok(Confirm::Metricsd("127.0.0.1:8888".into()))
        );
        let victoria = Confirm::parse("victoria:localhost:8428").unwrap();
        assert_eq!((victoria.kind(), victoria.addr()), ("victoria", "localhost:8428"));
        for bad in ["", "metricsd", "metricsd:", "redis:1:2", "127.0.0.1:8888"] {
            assert!(Confirm::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn query_text_is_quoted_escaped_and_encoded() {
        assert_eq!(regex_escape("bench.k"), "bench\\.k");
        assert_eq!(promql_string(&format!("{}.*", regex_escape("a.b"))), "\"a\\\\.b.*\"");
        assert_eq!(promql_string("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(
            percent_encode("a.b-c_d~{x=\"1\"} é"),
            "a.b-c_d~%7Bx%3D%221%22%7D%20%C3%A9"
        );
    }

    #[test]
    fn victoria_answers() {
        let count =
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1796227018,"5"]}]}}"#;
        assert_eq!(victoria_count(count), Ok(5));
        let none = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(victoria_count(none), Ok(0));
        assert!(victoria_count(b"<html>").is_err());
        assert!(victoria_count(br#"{"data":{"result":[{"value":[1,"x"]}]}}"#).is_err());
        let export = b"{\"metric\":{\"__name__\":\"bench.k0\"},\"values\":[1.5,0],\"timestamps\":[1796226920000,1796226918000]}\n";
        assert_eq!(victoria_export(export), Ok(vec![(1796226918, 0.0), (1796226920, 1.5)]));
        assert_eq!(victoria_export(b""), Ok(vec![]));
        assert!(victoria_export(b"{\"metric\":{}}\n").is_err());
        let metrics = b"# HELP x\nvm_rows_added_to_storage_total_x 9\nvm_rows_added_to_storage_total 5\nvm_rows 1\n";
        assert_eq!(metric_value(metrics, VICTORIA_STORED), Some(5));
        assert_eq!(metric_value(b"vm_rows 1\n", VICTORIA_STORED), None);
    }

    #[test]
    fn series_comparison_names_the_first_difference() {
        let sent = vec![(1, 0.5), (2, 1.0)];
        assert_eq!(compare_series(&sent, &sent.clone()), Ok(()));
        assert_eq!(
            compare_series(&sent, &vec![(1, 0.5)]),
            Err("1 points where 2 were sent".into())
        );
        assert!(compare_series(&sent, &vec![(0, 1.0), (1, 0.5), (2, 1.0)])
            .unwrap_err()
            .contains("3 points where 2 were sent (it held points"));
        assert_eq!(
            compare_series(&sent, &vec![(1, 0.5), (2, 1.5)]),
            Err("point 2 is (2, 1.5) where (2, 1.0) was sent".into())
        );
    }
}
