//! What the tool prints: the final table, the same figures as one JSON
//! object, and the live progress line.

use crate::args::Options;
use crate::driver::{Limit, Totals};
use crate::histogram::Histogram;
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
    /// Points stored under each key before the run.
    pub preloaded: usize,
    pub totals: &'a Totals,
}

/// Nanoseconds as microseconds.
fn micros(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Summary<'_> {
    /// Answers per second over the run.
    fn throughput(&self) -> f64 {
        let secs = self.totals.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.totals.requests as f64 / secs
        } else {
            0.0
        }
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
        let mut line = format!("{} on {} at {}, {} keys", o.mix, o.server, o.addr, o.keys);
        if self.preloaded > 0 {
            let _ = write!(line, " of {} points", self.preloaded);
        }
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
                let _ = write!(line, "open loop at {rate} requests/s");
            }
            None => line.push_str("closed loop"),
        }
        match o.limit {
            Limit::Requests(n) => {
                let _ = write!(line, ", {n} requests");
            }
            Limit::Duration(d) => {
                let _ = write!(line, ", {} s", d.as_secs_f64());
            }
        }
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
        out.push_str("latency (µs)");
        for (label, _, us) in self.latencies() {
            let _ = write!(out, "  {label} {us:.1}");
        }
        out.push('\n');
        out
    }

    /// The same figures as one JSON object (one line).
    pub fn json(&self) -> String {
        let o = self.options;
        let t = self.totals;
        let rate = o.rate.map_or_else(|| "null".to_owned(), |r| r.to_string());
        let (requests_limit, duration_limit) = match o.limit {
            Limit::Requests(n) => (n.to_string(), "null".to_owned()),
            Limit::Duration(d) => ("null".to_owned(), d.as_secs_f64().to_string()),
        };
        let mut out = format!(
            "{{\"server\":\"{}\",\"addr\":{},\"workload\":\"{}\",\"keys\":{},\"points\":{},\"connections\":{},\"pipeline\":{},\
             \"threads\":{},\"rate\":{rate},\"requests_limit\":{requests_limit},\"duration_limit_s\":{duration_limit},\
             \"requests\":{},\"errors\":{},\"elapsed_s\":{:.6},\"throughput_rps\":{:.1},\"latency_us\":{{",
            o.server,
            json_string(&o.addr),
            o.mix,
            o.keys,
            self.preloaded,
            o.connections,
            o.pipeline,
            o.threads,
            t.requests,
            t.errors,
            t.elapsed.as_secs_f64(),
            self.throughput()
        );
        for (n, (_, key, us)) in self.latencies().enumerate() {
            let _ = write!(out, "{}\"{key}\":{us:.3}", if n == 0 { "" } else { "," });
        }
        out.push_str("}}");
        out
    }
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

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
            preloaded: 0,
            totals: &totals,
        };
        let table = summary.table();
        assert!(table.starts_with(
            "put on metricsd at 127.0.0.1:8888, 1000 keys, 50 connections, pipeline 1, 1 thread, closed loop"
        ));
        assert!(table.contains("requests      4\n"), "{table}");
        assert!(table.contains("errors        1\n"), "{table}");
        assert!(table.contains("throughput    2000 requests/s\n"), "{table}");
        assert!(
            table.contains("p50 200.7  p90 400.0  p99 400.0  p99.9 400.0  max 400.0  mean 250.0"),
            "{table}"
        );
        assert_eq!(
            summary.json(),
            "{\"server\":\"metricsd\",\"addr\":\"127.0.0.1:8888\",\"workload\":\"put\",\"keys\":1000,\"points\":0,\"connections\":50,\
             \"pipeline\":1,\"threads\":1,\"rate\":null,\"requests_limit\":100000,\"duration_limit_s\":null,\
             \"requests\":4,\"errors\":1,\"elapsed_s\":0.002000,\"throughput_rps\":2000.0,\
             \"latency_us\":{\"p50\":200.703,\"p90\":400.000,\"p99\":400.000,\"p99_9\":400.000,\
             \"max\":400.000,\"mean\":250.000}}"
        );
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
