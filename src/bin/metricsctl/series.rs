//! What `get` prints: series for people, as protocol lines, or as JSON.
//!
//! Each function writes one series at a time, so that the text of a large
//! `get *` is never held whole besides the points themselves.

use crate::spark::{sparkline, MAX_WIDTH};
use crate::{json, time};
use metricsd::client::Metrics;
use metricsd::protocol::response::write_point;
use metricsd::protocol::Agg;
use std::io::{self, Write};

/// For people: per series a header (key, point count, lowest, highest and
/// last value, sparkline), then one aligned line per point with its UTC
/// time, its timestamp and its value; a blank line between series.
/// `query` is what was asked for, to say so when nothing was found;
/// `buckets` the step and aggregate when the rows are buckets.
pub fn human(out: &mut impl Write, query: &str, metrics: &Metrics, buckets: Option<(i64, Agg)>) -> io::Result<()> {
    if metrics.is_empty() {
        return match query {
            "*" => writeln!(out, "no series"),
            key => writeln!(out, "{key}: no points"),
        };
    }
    for (i, (key, points)) in metrics.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        series(out, key, points, buckets)?;
    }
    Ok(())
}

fn series(out: &mut impl Write, key: &str, points: &[(i64, f64)], buckets: Option<(i64, Agg)>) -> io::Result<()> {
    let values: Vec<f64> = points.iter().map(|&(_, v)| v).collect();
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    // The client returns only keys with at least one point.
    let last = values.last().copied().unwrap_or(f64::NAN);
    let count = match buckets {
        None => self::points(points.len() as u64),
        Some((step, agg)) => format!("{} of {step}s by {}", rows(points.len(), "bucket"), agg.name()),
    };
    writeln!(
        out,
        "{key}  {count}  min {min:?}  max {max:?}  last {last:?}  {}",
        sparkline(&values, MAX_WIDTH)
    )?;
    // Widths of the columns, so that they line up; values right-aligned.
    let rows: Vec<(String, String, String)> = points
        .iter()
        .map(|&(ts, v)| (time::utc(ts), ts.to_string(), format!("{v:?}")))
        .collect();
    let (time_width, ts_width, value_width) = rows.iter().fold((0, 0, 0), |(t, s, v), row| {
        (t.max(row.0.len()), s.max(row.1.len()), v.max(row.2.len()))
    });
    for (utc, ts, value) in &rows {
        writeln!(out, "  {utc:<time_width$}  {ts:>ts_width$}  {value:>value_width$}")?;
    }
    Ok(())
}

/// `1 point`, `2 points`.
pub fn points(n: u64) -> String {
    rows(n as usize, "point")
}

/// `1 <noun>`, `2 <noun>s`.
fn rows(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        n => format!("{n} {noun}s"),
    }
}

/// The protocol's own data lines, `<key> <value> <timestamp>`, exactly as
/// the server sends them: what `metricsctl import` reads back.
pub fn raw(out: &mut impl Write, metrics: &Metrics) -> io::Result<()> {
    let mut text = Vec::new();
    for (key, points) in metrics {
        text.clear();
        for &(ts, value) in points {
            write_point(&mut text, key, value, ts);
        }
        out.write_all(&text)?;
    }
    Ok(())
}

/// One JSON object, `{"key":[[ts,value],...],...}`, keys in the server's
/// (byte) order, on one line.
pub fn json(out: &mut impl Write, metrics: &Metrics) -> io::Result<()> {
    json::write_line(out, metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(series: &[(&str, &[(i64, f64)])]) -> Metrics {
        series.iter().map(|(k, p)| (k.to_string(), p.to_vec())).collect()
    }

    fn render(f: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).expect("write to a Vec");
        String::from_utf8(out).expect("UTF-8")
    }

    fn example() -> Metrics {
        metrics(&[
            (
                "palm.cpu",
                &[(1150864247, 2.0), (1150864248, 0.5), (1150864249, -12.25)],
            ),
            ("eardrum.cpu", &[(-1, 3.0)]),
        ])
    }

    #[test]
    fn human_output_aligns_its_columns() {
        let text = render(|out| human(out, "*", &example(), None));
        assert_eq!(
            text,
            "\
eardrum.cpu  1 point  min 3.0  max 3.0  last 3.0  ▄
  1969-12-31 23:59:59Z  -1  3.0

palm.cpu  3 points  min -12.25  max 2.0  last -12.25  █▇▁
  2006-06-21 04:30:47Z  1150864247     2.0
  2006-06-21 04:30:48Z  1150864248     0.5
  2006-06-21 04:30:49Z  1150864249  -12.25
"
        );
    }

    #[test]
    fn bucket_rows_say_their_step_and_function() {
        let rows = metrics(&[("k", &[(0, 1.0), (60, 3.0)])]);
        let text = render(|out| human(out, "k", &rows, Some((60, Agg::Avg))));
        assert!(
            text.starts_with("k  2 buckets of 60s by avg  min 1.0  max 3.0  last 3.0  ▁█\n"),
            "{text}"
        );
        let one = metrics(&[("k", &[(0, 1.0)])]);
        let text = render(|out| human(out, "k", &one, Some((5, Agg::Count))));
        assert!(text.starts_with("k  1 bucket of 5s by count  "), "{text}");
    }

    #[test]
    fn human_output_says_when_nothing_was_found() {
        let empty = Metrics::new();
        assert_eq!(render(|out| human(out, "*", &empty, None)), "no series\n");
        assert_eq!(
            render(|out| human(out, "palm.cpu", &empty, None)),
            "palm.cpu: no points\n"
        );
    }

    #[test]
    fn raw_output_is_protocol_lines() {
        assert_eq!(
            render(|out| raw(out, &example())),
            "eardrum.cpu 3.0 -1\npalm.cpu 2.0 1150864247\npalm.cpu 0.5 1150864248\npalm.cpu -12.25 1150864249\n"
        );
        assert_eq!(render(|out| raw(out, &Metrics::new())), "");
    }

    #[test]
    fn json_output_is_one_object() {
        assert_eq!(
            render(|out| json(out, &example())),
            "{\"eardrum.cpu\":[[-1,3.0]],\"palm.cpu\":[[1150864247,2.0],[1150864248,0.5],[1150864249,-12.25]]}\n"
        );
        assert_eq!(render(|out| json(out, &Metrics::new())), "{}\n");
        let odd = metrics(&[(r#"a"b\c"#, &[(i64::MIN, -0.0), (i64::MAX, 1e300)])]);
        let text = render(|out| json(out, &odd));
        assert_eq!(
            text,
            "{\"a\\\"b\\\\c\":[[-9223372036854775808,-0.0],[9223372036854775807,1e300]]}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(parsed[r#"a"b\c"#][1][1].as_f64(), Some(1e300));
    }
}
