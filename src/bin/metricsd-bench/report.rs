//! What the tool prints: the final table, the same figures as one JSON
//! object, and the live progress line.

use crate::args::Options;
use crate::driver::{Limit, Totals};
use crate::histogram::Histogram;
use crate::json;
use crate::mode::Mode;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::fmt::Write;
use std::time::Duration;

/// The percentiles reported: table label, JSON key, percent.
const PERCENTILES: [(&str, &str, f64); 4] = [
    ("p50", "p50", 50.0),
    ("p90", "p90", 90.0),
    ("p99", "p99", 99.0),
    ("p99.9", "p99_9", 99.9),
];

/// A finished run, as reported.
pub struct Summary<'a> {
    pub options: &'a Options,
    /// What the metricsd run against keeps (None for Redis, or a server
    /// that does not say).
    pub mode: Option<Mode>,
    /// Points stored under each key before the run.
    pub preloaded: usize,
    pub totals: &'a Totals,
    /// Keys deleted at the end (`--cleanup`).
    pub cleaned_up: Option<usize>,
}

/// Appends how the load was driven: `, C connections, pipeline P, T
/// threads, closed loop, N <unit>` (or `open loop at R <unit>/s`, `D s`).
fn write_load(line: &mut String, o: &Options, unit: &str) {
    let _ = write!(
        line,
        ", {} connections, pipeline {}, {} thread{}, ",
        o.connections,
        o.pipeline,
        o.threads,
        if o.threads == 1 { "" } else { "s" }
    );
    match o.rate {
        Some(rate) => {
            let _ = write!(line, "open loop at {rate} {unit}/s");
        }
        None => line.push_str("closed loop"),
    }
    match o.limit {
        Limit::Requests(n) => {
            let _ = write!(line, ", {n} {unit}");
        }
        Limit::Duration(d) => {
            let _ = write!(line, ", {} s", d.as_secs_f64());
        }
    }
}

/// `--requests` and `--duration` (seconds), whichever was given.
fn limits(limit: Limit) -> (Option<u64>, Option<f64>) {
    match limit {
        Limit::Requests(n) => (Some(n), None),
        Limit::Duration(d) => (None, Some(d.as_secs_f64())),
    }
}

/// A finished `--server graphite` run, as reported.
pub struct GraphiteSummary<'a> {
    pub options: &'a Options,
    pub mode: Option<Mode>,
    /// Lines sent, all of them confirmed stored.
    pub points: u64,
    /// From the first byte sent to the last handed to the kernel.
    pub sent: Duration,
    /// From the first byte sent to the server counting every point stored.
    pub stored: Duration,
    /// From the first byte sent to the read API holding every point.
    pub confirmed: Duration,
    /// Series read back and compared point by point, and their points.
    pub checked: (usize, usize),
    pub cleaned_up: Option<usize>,
}

/// `count` over `time`, or 0 for a run too short to time.
fn per_second(count: u64, time: Duration) -> f64 {
    let secs = time.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

impl GraphiteSummary<'_> {
    fn describe(&self) -> String {
        let o = self.options;
        let (kind, addr) = o.confirm.as_ref().map_or(("?", "?"), |c| (c.kind(), c.addr()));
        let mut line = format!("graphite plaintext to {}, confirmed by {kind}", o.addr);
        if let Some(mode) = self.mode {
            let _ = write!(line, " ({})", mode.name());
        }
        let _ = write!(line, " at {addr}, {} keys", o.keys);
        write_load(&mut line, o, "points");
        line
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.describe());
        let _ = writeln!(out, "points        {}", self.points);
        let _ = writeln!(
            out,
            "sent          {:.3} s ({:.0} points/s)",
            self.sent.as_secs_f64(),
            per_second(self.points, self.sent)
        );
        let _ = writeln!(
            out,
            "stored        {:.3} s ({:.0} points/s, by the server's count)",
            self.stored.as_secs_f64(),
            per_second(self.points, self.stored)
        );
        let _ = writeln!(out, "confirmed     {:.3} s (read back)", self.confirmed.as_secs_f64());
        let _ = writeln!(
            out,
            "throughput    {:.0} points/s",
            per_second(self.points, self.confirmed)
        );
        let _ = writeln!(
            out,
            "checked       {} series, {} points, each as sent",
            self.checked.0, self.checked.1
        );
        if let Some(keys) = self.cleaned_up {
            let _ = writeln!(out, "cleanup       {keys} keys deleted");
        }
        out
    }

    /// The same figures as one JSON object (one line).
    pub fn json(&self) -> String {
        json::to_string(self)
    }
}

impl Serialize for GraphiteSummary<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.options;
        let (requests_limit, duration_limit) = limits(o.limit);
        let mut map = serializer.serialize_map(Some(21))?;
        map.serialize_entry("server", &o.server.to_string())?;
        map.serialize_entry("confirm", &o.confirm.as_ref().map(|c| c.kind()))?;
        map.serialize_entry("confirm_addr", &o.confirm.as_ref().map(|c| c.addr()))?;
        map.serialize_entry("server_mode", &self.mode.map(Mode::name))?;
        map.serialize_entry("addr", &o.addr)?;
        map.serialize_entry("keys", &o.keys)?;
        map.serialize_entry("connections", &o.connections)?;
        map.serialize_entry("pipeline", &o.pipeline)?;
        map.serialize_entry("threads", &o.threads)?;
        map.serialize_entry("rate", &o.rate)?;
        map.serialize_entry("requests_limit", &requests_limit)?;
        map.serialize_entry("duration_limit_s", &duration_limit)?;
        map.serialize_entry("points", &self.points)?;
        map.serialize_entry("sent_s", &rounded(self.sent.as_secs_f64(), 6))?;
        map.serialize_entry("stored_s", &rounded(self.stored.as_secs_f64(), 6))?;
        map.serialize_entry("stored_pps", &rounded(per_second(self.points, self.stored), 1))?;
        map.serialize_entry("confirmed_s", &rounded(self.confirmed.as_secs_f64(), 6))?;
        map.serialize_entry("throughput_pps", &rounded(per_second(self.points, self.confirmed), 1))?;
        map.serialize_entry("checked_series", &self.checked.0)?;
        map.serialize_entry("checked_points", &self.checked.1)?;
        map.serialize_entry("cleaned_up_keys", &self.cleaned_up)?;
        map.end()
    }
}

/// Nanoseconds as microseconds.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Summary<'_> {
    /// Answers per second over the run.
    fn throughput(&self) -> f64 {
        per_second(self.totals.requests, self.totals.elapsed)
    }

    /// The latency figures: (table label, JSON key, microseconds).
    fn latencies(&self) -> impl Iterator<Item = (&'static str, &'static str, f64)> + '_ {
        let latency = &self.totals.latency;
        PERCENTILES
            .iter()
            .map(|&(label, key, p)| (label, key, micros(latency.percentile(p))))
            .chain([
                ("max", "max", micros(latency.max())),
                ("mean", "mean", latency.mean() / 1000.0),
            ])
    }

    /// One line saying what was run.
    fn describe(&self) -> String {
        let o = self.options;
        let mut line = format!("{} on {}", o.mix, o.server);
        if let Some(mode) = self.mode {
            let _ = write!(line, " ({})", mode.name());
        }
        let _ = write!(line, " at {}, {} keys", o.addr, o.keys);
        if self.preloaded > 0 {
            let _ = write!(line, " of {} points", self.preloaded);
        }
        write_load(&mut line, o, "requests");
        line
    }

    /// The table printed at the end of a run.
    pub fn table(&self) -> String {
        let t = self.totals;
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.describe());
        let _ = writeln!(out, "requests      {}", t.requests);
        let _ = writeln!(out, "errors        {}", t.errors);
        let _ = writeln!(out, "elapsed       {:.3} s", t.elapsed.as_secs_f64());
        let _ = writeln!(out, "throughput    {:.0} requests/s", self.throughput());
        if let Some(keys) = self.cleaned_up {
            let _ = writeln!(out, "cleanup       {keys} keys deleted");
        }
        out.push_str("latency (µs)");
        for (label, _, us) in self.latencies() {
            let _ = write!(out, "  {label} {us:.1}");
        }
        out.push('\n');
        out
    }

    /// The same figures as one JSON object (one line).
    pub fn json(&self) -> String {
        json::to_string(self)
    }
}

/// The report's members in a fixed order (a `serde_json::Map` would sort
/// them). Times are rounded to what their unit shows: microseconds of the
/// run, tenths of a request a second, nanoseconds of latency.
impl Serialize for Summary<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let o = self.options;
        let t = self.totals;
        let (requests_limit, duration_limit) = limits(o.limit);
        let latency: Vec<_> = self.latencies().map(|(_, key, us)| (key, rounded(us, 3))).collect();
        let mut map = serializer.serialize_map(Some(19))?;
        map.serialize_entry("server", &o.server.to_string())?;
        map.serialize_entry("server_mode", &self.mode.map(Mode::name))?;
        map.serialize_entry("addr", &o.addr)?;
        map.serialize_entry("workload", &o.mix.to_string())?;
        map.serialize_entry("keys", &o.keys)?;
        map.serialize_entry("points", &self.preloaded)?;
        map.serialize_entry("connections", &o.connections)?;
        map.serialize_entry("pipeline", &o.pipeline)?;
        map.serialize_entry("threads", &o.threads)?;
        map.serialize_entry("rate", &o.rate)?;
        map.serialize_entry("requests_limit", &requests_limit)?;
        map.serialize_entry("duration_limit_s", &duration_limit)?;
        map.serialize_entry("requests", &t.requests)?;
        map.serialize_entry("errors", &t.errors)?;
        map.serialize_entry("elapsed_s", &rounded(t.elapsed.as_secs_f64(), 6))?;
        map.serialize_entry("throughput_rps", &rounded(self.throughput(), 1))?;
        map.serialize_entry("latency_us", &json::Ordered(latency))?;
        map.serialize_entry("cleaned_up_keys", &self.cleaned_up)?;
        map.end()
    }
}

/// `value` to `decimals` places: the f64 nearest to the decimal that
/// `{:.decimals$}` prints.
fn rounded(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// The live line: time since the start, the rate over the last interval,
/// and the latency percentiles of the whole run so far.
pub fn progress_line(elapsed: Duration, rate: f64, latency: &Histogram) -> String {
    format!(
        "{:>6.1} s  {:>9.0} requests/s  p50 {:.1} µs  p99 {:.1} µs",
        elapsed.as_secs_f64(),
        rate,
        micros(latency.percentile(50.0)),
        micros(latency.percentile(99.0))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals() -> Totals {
        let mut latency = Histogram::new();
        for us in [100u64, 200, 300, 400] {
            latency.record(us * 1000);
        }
        Totals {
            requests: 4,
            errors: 1,
            elapsed: Duration::from_millis(2),
            latency,
        }
    }

    #[test]
    fn table_and_json_carry_the_same_figures() {
        let options = Options::default();
        let totals = totals();
        let summary = Summary {
            options: &options,
            mode: Some(Mode::InMemory),
            preloaded: 0,
            totals: &totals,
            cleaned_up: Some(1000),
        };
        let table = summary.table();
        assert!(table.starts_with(
            "put on metricsd (in-memory) at 127.0.0.1:8888, 1000 keys, 50 connections, pipeline 1, 1 thread, closed loop"
        ));
        assert!(table.contains("cleanup       1000 keys deleted\n"), "{table}");
        assert!(table.contains("requests      4\n"), "{table}");
        assert!(table.contains("errors        1\n"), "{table}");
        assert!(table.contains("throughput    2000 requests/s\n"), "{table}");
        assert!(
            table.contains("p50 200.7  p90 400.0  p99 400.0  p99.9 400.0  max 400.0  mean 250.0"),
            "{table}"
        );
        assert_eq!(
            summary.json(),
            "{\"server\":\"metricsd\",\"server_mode\":\"in-memory\",\"addr\":\"127.0.0.1:8888\",\"workload\":\"put\",\"keys\":1000,\"points\":0,\"connections\":50,\
             \"pipeline\":1,\"threads\":1,\"rate\":null,\"requests_limit\":100000,\"duration_limit_s\":null,\
             \"requests\":4,\"errors\":1,\"elapsed_s\":0.002,\"throughput_rps\":2000.0,\
             \"latency_us\":{\"p50\":200.703,\"p90\":400.0,\"p99\":400.0,\"p99_9\":400.0,\
             \"max\":400.0,\"mean\":250.0},\"cleaned_up_keys\":1000}"
        );
    }

    #[test]
    fn json_of_an_open_loop_timed_run_with_an_odd_address() {
        let options = Options {
            addr: "h\"\\\n:1".to_owned(),
            limit: Limit::Duration(Duration::from_millis(2500)),
            rate: Some(1000.0),
            ..Options::default()
        };
        let totals = totals();
        let summary = Summary {
            options: &options,
            mode: None,
            preloaded: 10,
            totals: &totals,
            cleaned_up: None,
        };
        let json: serde_json::Value = serde_json::from_str(&summary.json()).expect("valid JSON");
        assert_eq!(json["addr"], "h\"\\\n:1");
        assert_eq!(json["rate"], 1000.0);
        assert_eq!(json["requests_limit"], serde_json::Value::Null);
        assert_eq!(json["duration_limit_s"], 2.5);
        assert_eq!(json["points"], 10);
        assert_eq!(json["server_mode"], serde_json::Value::Null);
        assert_eq!(json["cleaned_up_keys"], serde_json::Value::Null);
    }
}
