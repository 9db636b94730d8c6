//! Answers of the graphite-web HTTP API as bytes, the way graphite-web 1.1
//! writes them: `/render` as JSON (with `maxDataPoints` and `noNullPoints`)
//! or CSV, `/metrics/find` as its tree JSON, `/metrics/expand`.
//!
//! JSON is written as Python's `json.dumps` writes it (`", "` and `": "`
//! separators, floats as `repr`, non-ASCII escaped as `\uXXXX` unless
//! asked otherwise), strings escaped by serde_json. graphite-web writes an
//! infinite value as `1e9999` (what its `Infinity` replacement gives) and
//! NaN as `null`; so does this module.

use super::path::FoundNode;
use super::pyfmt;
use super::series::{Series, TagValue};
use super::time::format_time;

/// The options of `/render` that shape its JSON answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JsonOptions {
    /// `maxDataPoints`: consolidate (by average) series with more points.
    pub max_data_points: Option<usize>,
    /// `noNullPoints`: leave out missing points, and series left empty.
    pub no_null_points: bool,
}

/// graphite-web's `renderViewJson`:
/// `[{"target": NAME, "tags": {...}, "datapoints": [[value, ts], ...]}]`.
pub fn render_json(series: Vec<Series>, options: JsonOptions) -> String {
    let mut answer = JsonAnswer::new(series, options);
    let mut out = Vec::new();
    answer.write(&mut out, usize::MAX);
    // Only UTF-8 is written: JSON text of valid strings.
    String::from_utf8(out).unwrap_or_default()
}

/// A `/render` JSON answer written a slice at a time, so that a large one
/// need not be built whole: the series, consolidated once, and where the
/// next slice goes on. The series' values are dropped as soon as they are
/// written, so the memory held shrinks as the answer goes out.
#[derive(Debug)]
pub struct JsonAnswer {
    series: Vec<Series>,
    no_null_points: bool,
    at: JsonAt,
    /// Series written so far (each but the first starts with `, `).
    written: usize,
    /// The heap bytes `series` holds ([`Series::held_bytes`]), kept as
    /// values are freed rather than summed again on every call.
    held: usize,
}

/// Where a [`JsonAnswer`] goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JsonAt {
    /// Nothing written yet.
    Start,
    /// Before series `index` (or the closing `]` after the last).
    Series(usize),
    /// In series `series`'s datapoints, at datapoint `point`; `any`: one
    /// was written already.
    Points {
        series: usize,
        point: usize,
        any: bool,
    },
    Done,
}

impl JsonAnswer {
    /// The answer of `series`, consolidated to `options.max_data_points`.
    pub fn new(mut series: Vec<Series>, options: JsonOptions) -> JsonAnswer {
        if let Some(max) = options.max_data_points {
            consolidate_to_max_data_points(&mut series, max);
        }
        JsonAnswer {
            held: held_bytes(&series),
            series,
            no_null_points: options.no_null_points,
            at: JsonAt::Start,
            written: 0,
        }
    }

    /// The heap bytes the answer still holds: its series, less the values
    /// already written.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Appends the next part of the answer to `out`: about `room` bytes,
    /// more by at most one datapoint (or one series' name and tags), fewer
    /// only at the end. Returns whether the answer is complete.
    pub fn write(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        let limit = out.len().saturating_add(room);
        loop {
            if out.len() >= limit && self.at != JsonAt::Done {
                return false;
            }
            match self.at {
                JsonAt::Start => {
                    out.push(b'[');
                    self.at = JsonAt::Series(0);
                }
                JsonAt::Series(index) => {
                    let Some(s) = self.series.get(index) else {
                        out.push(b']');
                        self.series = Vec::new();
                        self.held = 0;
                        self.at = JsonAt::Done;
                        continue;
                    };
                    if self.no_null_points && !s.datapoints().any(|(v, _)| is_point(v)) {
                        self.at = JsonAt::Series(index + 1);
                        continue;
                    }
                    if self.written > 0 {
                        out.extend_from_slice(b", ");
                    }
                    self.written += 1;
                    write_series_head(out, s);
                    self.at = JsonAt::Points {
                        series: index,
                        point: 0,
                        any: false,
                    };
                }
                JsonAt::Points { series, point, any } => {
                    let s = &mut self.series[series];
                    let (points, mut any) = (s.datapoints().skip(point), any);
                    let mut next = point;
                    for (value, timestamp) in points {
                        if out.len() >= limit {
                            break;
                        }
                        next += 1;
                        if self.no_null_points && !is_point(value) {
                            continue;
                        }
                        if any {
                            out.extend_from_slice(b", ");
                        }
                        any = true;
                        out.push(b'[');
                        match value {
                            Some(v) => push_json_number(out, v),
                            None => out.extend_from_slice(b"null"),
                        }
                        out.extend_from_slice(b", ");
                        out.extend_from_slice(itoa::Buffer::new().format(timestamp).as_bytes());
                        out.push(b']');
                    }
                    if next < s.datapoint_count() {
                        self.at = JsonAt::Points {
                            series,
                            point: next,
                            any,
                        };
                        return false;
                    }
                    out.extend_from_slice(b"]}");
                    // Written: its values are not needed any more.
                    self.held -= s.values_bytes();
                    s.values = Vec::new();
                    self.at = JsonAt::Series(series + 1);
                }
                JsonAt::Done => return true,
            }
        }
    }
}

/// The heap bytes of `series` and of the vector that holds them.
pub fn held_bytes(series: &[Series]) -> usize {
    let slots = std::mem::size_of_val(series);
    slots + series.iter().map(Series::held_bytes).sum::<usize>()
}

/// A datapoint `noNullPoints` keeps: present and not NaN.
fn is_point(value: Option<f64>) -> bool {
    value.is_some_and(|v| !v.is_nan())
}

/// `{"target": NAME, "tags": {...}, "datapoints": [`.
fn write_series_head(out: &mut Vec<u8>, s: &Series) {
    let mut text = String::from("{\"target\": ");
    push_json_string(&mut text, &s.name, true);
    text.push_str(", \"tags\": {");
    for (i, (tag, value)) in s.tags.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        push_json_string(&mut text, tag, true);
        text.push_str(": ");
        match value {
            TagValue::Str(value) => push_json_string(&mut text, value, true),
            TagValue::Int(n) => text.push_str(&n.to_string()),
            TagValue::Float(x) => {
                let mut number = Vec::new();
                push_json_number(&mut number, *x);
                text.push_str(&String::from_utf8_lossy(&number));
            }
        }
    }
    text.push_str("}, \"datapoints\": [");
    out.extend_from_slice(text.as_bytes());
}

/// graphite-web's `maxDataPoints` handling in `renderViewJson`: a series
/// with more points than `max` over the request's time range is
/// consolidated by average into `ceil(points / max)`-point groups, its start
/// nudged so that groups line up from one refresh to the next. graphite-web
/// moves the start by the whole nudge but drops one value fewer than the
/// nudge covers; that is kept, answers match graphite-web's.
///
/// A `max` of 0, which makes graphite-web fail (a division by zero), sets
/// no limit here.
pub fn consolidate_to_max_data_points(series: &mut [Series], max: usize) {
    let Some(range) = max_data_points_range(series.iter().map(|s| (s.start, s.end, s.values.len()))) else {
        return;
    };
    for s in series {
        if let Some(c) = Consolidation::of(s.start, s.step, s.values.len(), range, max) {
            s.start = c.start;
            s.consolidate_from(c.lose, c.per_point);
        }
    }
}

/// The time range `maxDataPoints` measures series against: from the
/// earliest start to the latest end of the series given as `(start, end,
/// values)`; None when no series has a value (nothing to consolidate).
pub fn max_data_points_range(series: impl Iterator<Item = (i64, i64, usize)>) -> Option<(i64, i64)> {
    let mut range: Option<(i64, i64, bool)> = None;
    for (start, end, values) in series {
        let (lo, hi, any) = range.unwrap_or((start, end, false));
        range = Some((lo.min(start), hi.max(end), any || values > 0));
    }
    range.filter(|r| r.2).map(|(lo, hi, _)| (lo, hi))
}

/// How `maxDataPoints` consolidates one series (see
/// [`consolidate_to_max_data_points`]): the `lose` first values dropped,
/// then groups of `per_point` averaged, the first from `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consolidation {
    pub start: i64,
    pub lose: usize,
    pub per_point: usize,
}

impl Consolidation {
    /// The consolidation of a series of `len` values from `start`, `step`
    /// apart, for the request's `range` and `max`; None if it keeps all.
    pub fn of(start: i64, step: i64, len: usize, range: (i64, i64), max: usize) -> Option<Consolidation> {
        match max {
            0 => None,
            // Everything averaged, and no nudge.
            1 => (len > 1).then_some(Consolidation {
                start,
                lose: 0,
                per_point: len,
            }),
            _ => {
                let points = (range.1 - range.0) as f64 / step as f64;
                if (max as f64) >= points {
                    return None;
                }
                let per_point = (points / max as f64).ceil() as i64;
                let seconds = per_point * step;
                let nudge = seconds + start.rem_euclid(step) - start.rem_euclid(seconds);
                Some(Consolidation {
                    start: start + nudge,
                    lose: usize::try_from(nudge / step - 1).unwrap_or(0).min(len),
                    per_point: per_point as usize,
                })
            }
        }
    }
}

/// A number as Python's `json.dumps` writes it, with graphite's
/// replacements: infinities as `1e9999`, NaN as `null`.
fn push_json_number(out: &mut Vec<u8>, x: f64) {
    match x {
        _ if x.is_nan() => out.extend_from_slice(b"null"),
        _ if x.is_infinite() => out.extend_from_slice(if x > 0.0 { b"1e9999" } else { b"-1e9999" }),
        _ => pyfmt::write_repr(out, x),
    }
}

/// A JSON string; with `ascii`, as `json.dumps(ensure_ascii=True)`: every
/// non-ASCII character as `\uXXXX` (UTF-16 surrogate pairs beyond U+FFFF).
fn push_json_string(out: &mut String, text: &str, ascii: bool) {
    let quoted = serde_json::to_string(text).expect("a string always serializes");
    if !ascii || quoted.is_ascii() {
        out.push_str(&quoted);
        return;
    }
    for c in quoted.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
}

/// graphite-web's `renderViewCsv`: a `name,YYYY-MM-DD HH:MM:SS,value` row
/// per point (UTC), `\r\n` after each, the value empty where missing; a
/// field with a comma, a quote or a line break is quoted (Python's `csv`
/// module, Excel dialect).
pub fn render_csv(series: &[Series]) -> String {
    let mut out = Vec::new();
    CsvAnswer::new(series.to_vec()).write(&mut out, usize::MAX);
    // Only UTF-8 is written: names, dates and numbers.
    String::from_utf8(out).unwrap_or_default()
}

/// A `/render` CSV answer written a slice at a time, as [`JsonAnswer`] is:
/// the series, and the next row (series, value) to write.
#[derive(Debug)]
pub struct CsvAnswer {
    series: Vec<Series>,
    at: (usize, usize),
    /// As [`JsonAnswer`]'s.
    held: usize,
}

impl CsvAnswer {
    pub fn new(series: Vec<Series>) -> CsvAnswer {
        CsvAnswer {
            held: held_bytes(&series),
            series,
            at: (0, 0),
        }
    }

    /// The heap bytes the answer still holds, as [`JsonAnswer::held_bytes`].
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Appends the next rows to `out`: about `room` bytes, more by at most
    /// one row. Returns whether the answer is complete.
    pub fn write(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        let limit = out.len().saturating_add(room);
        while let Some(s) = self.series.get_mut(self.at.0) {
            let name = csv_field(&s.name);
            while let Some(value) = s.values.get(self.at.1) {
                if out.len() >= limit {
                    return false;
                }
                out.extend_from_slice(name.as_bytes());
                out.push(b',');
                let timestamp = s.start + self.at.1 as i64 * s.step;
                out.extend_from_slice(format_time(timestamp, "%Y-%m-%d %H:%M:%S").as_bytes());
                out.push(b',');
                if let Some(v) = value {
                    pyfmt::write_repr(out, *v);
                }
                out.extend_from_slice(b"\r\n");
                self.at.1 += 1;
            }
            // Written: its values are not needed any more.
            self.held -= s.values_bytes();
            s.values = Vec::new();
            self.at = (self.at.0 + 1, 0);
        }
        self.series = Vec::new();
        self.held = 0;
        true
    }
}

fn csv_field(text: &str) -> String {
    match text.contains([',', '"', '\r', '\n']) {
        true => format!("\"{}\"", text.replace('"', "\"\"")),
        false => text.to_string(),
    }
}

/// graphite-web's `/metrics/find` answer (`format=treejson`): branches,
/// then leaves, each `{"text", "id", "allowChildren", "expandable",
/// "leaf"}`; `id` is the query up to its last `.` and the node's name. A
/// node that is both a leaf and a branch is listed once, as a branch, as
/// graphite-web lists it. With `wildcards` and more than one node, a `*`
/// node comes first. `ascii` escapes non-ASCII text (graphite-web does
/// when the request accepts `application/json` exactly).
pub fn find_json(query: &str, nodes: &[FoundNode], wildcards: bool, ascii: bool) -> String {
    let base = query
        .rsplit_once('.')
        .map_or(String::new(), |(base, _)| format!("{base}."));
    let mut out = String::from("[");
    let mut entries = Vec::new();
    if wildcards && nodes.len() > 1 {
        entries.push(("*".to_string(), format!("{base}*"), nodes.iter().any(|n| n.branch)));
    }
    let mut nodes: Vec<&FoundNode> = nodes.iter().collect();
    nodes.sort_by(|a, b| a.name().cmp(b.name()));
    nodes.dedup_by(|a, b| a.name() == b.name());
    let branches = nodes.iter().filter(|n| n.branch);
    let leaves = nodes.iter().filter(|n| !n.branch);
    for node in branches.chain(leaves) {
        entries.push((
            unquote_plus(node.name().as_bytes()),
            format!("{base}{}", node.name()),
            node.branch,
        ));
    }
    for (i, (text, id, branch)) in entries.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str("{\"text\": ");
        push_json_string(&mut out, text, ascii);
        out.push_str(", \"id\": ");
        push_json_string(&mut out, id, ascii);
        let (children, leaf) = if *branch { (1, 0) } else { (0, 1) };
        out.push_str(&format!(
            ", \"allowChildren\": {children}, \"expandable\": {children}, \"leaf\": {leaf}}}"
        ));
    }
    out.push(']');
    out
}

/// Python's `unquote_plus`, which graphite-web applies to a node's name
/// for `text` (and which decodes HTML forms and query strings): `+` is a
/// space and `%XX` a byte (invalid UTF-8 replaced); a `%` without two hex
/// digits stays as it is.
pub fn unquote_plus(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// graphite-web's `/metrics/expand` answer: `{"results": [paths]}`, sorted
/// and distinct.
pub fn expand_json(paths: &[String]) -> String {
    let mut sorted: Vec<&String> = paths.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut out = String::from("{\"results\": [");
    for (i, path) in sorted.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        push_json_string(&mut out, path, true);
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, start: i64, step: i64, values: Vec<Option<f64>>) -> Series {
        Series::new(name, start, step, values)
    }

    #[test]
    fn json_as_graphite_web_writes_it() {
        let mut a = series("a.b", 1000, 60, vec![Some(1.0), None, Some(2.5)]);
        a.tags.set("scale", TagValue::Float(2.0));
        a.tags.set("absolute", TagValue::Int(1));
        let out = render_json(vec![a], JsonOptions::default());
        assert_eq!(
            out,
            r#"[{"target": "a.b", "tags": {"name": "a.b", "scale": 2.0, "absolute": 1}, "datapoints": [[1.0, 1000], [null, 1060], [2.5, 1120]]}]"#
        );
        assert_eq!(render_json(vec![], JsonOptions::default()), "[]");
    }

    #[test]
    fn json_escapes_and_special_numbers() {
        let s = series(
            "é\"\\\n😀",
            0,
            1,
            vec![Some(f64::INFINITY), Some(f64::NEG_INFINITY), Some(f64::NAN), Some(1e16)],
        );
        assert_eq!(
            render_json(vec![s], JsonOptions::default()),
            r#"[{"target": "\u00e9\"\\\n\ud83d\ude00", "tags": {"name": "\u00e9\"\\\n\ud83d\ude00"}, "datapoints": [[1e9999, 0], [-1e9999, 1], [null, 2], [1e+16, 3]]}]"#
        );
    }

    #[test]
    fn json_in_slices_of_any_room_is_the_whole_answer() {
        let make = || {
            vec![
                series("a", 0, 10, vec![None, Some(1.5), None, Some(-2.0)]),
                series("empty", 0, 10, vec![None, None]),
                series("b", 0, 10, (0..40).map(|v| Some(v as f64 / 3.0)).collect()),
            ]
        };
        for no_null_points in [false, true] {
            let options = JsonOptions {
                no_null_points,
                ..JsonOptions::default()
            };
            let whole = render_json(make(), options);
            for room in 1..whole.len() + 2 {
                let mut answer = JsonAnswer::new(make(), options);
                let mut out = Vec::new();
                let mut slices = 0;
                loop {
                    let before = out.len();
                    let done = answer.write(&mut out, room);
                    // At most one datapoint (or a series' head) past the room.
                    assert!(out.len() - before < room + 70, "room {room}");
                    slices += 1;
                    if done {
                        break;
                    }
                    assert!(out.len() > before, "no progress at room {room}");
                }
                assert_eq!(String::from_utf8(out).unwrap(), whole, "room {room}");
                assert!(slices > 1 || room >= whole.len(), "room {room}: one slice");
            }
        }
    }

    #[test]
    fn csv_in_slices_of_any_room_is_the_whole_answer() {
        let make = || {
            vec![
                series("a,b", 0, 60, vec![Some(1.0), None, Some(2.5)]),
                series("c", 60, 60, vec![None, Some(-1.0)]),
            ]
        };
        let whole = render_csv(&make());
        for room in 1..whole.len() + 2 {
            let mut answer = CsvAnswer::new(make());
            let mut out = Vec::new();
            while !answer.write(&mut out, room) {}
            assert_eq!(String::from_utf8(out).unwrap(), whole, "room {room}");
        }
        // A room of one row's bytes: a row a slice.
        let mut answer = CsvAnswer::new(make());
        let mut slices = vec![Vec::new()];
        while !answer.write(slices.last_mut().unwrap(), 1) {
            slices.push(Vec::new());
        }
        let rows: Vec<usize> = slices
            .iter()
            .map(|s| s.iter().filter(|&&b| b == b'\n').count())
            .collect();
        assert_eq!(rows, [1, 1, 1, 1, 1]);
    }

    #[test]
    fn no_null_points_drops_points_and_empty_series() {
        let a = series("a", 0, 10, vec![None, Some(1.0), None]);
        let b = series("b", 0, 10, vec![None, None]);
        let options = JsonOptions {
            no_null_points: true,
            ..JsonOptions::default()
        };
        assert_eq!(
            render_json(vec![a, b], options),
            r#"[{"target": "a", "tags": {"name": "a"}, "datapoints": [[1.0, 10]]}]"#
        );
    }

    #[test]
    fn json_lists_points_through_end() {
        // constantLine: three points at start, middle and end.
        let mut line = series("100.0", 1000, 300, vec![Some(100.0); 3]);
        line.end = 1600;
        let out = render_json(vec![line], JsonOptions::default());
        assert!(
            out.ends_with(r#""datapoints": [[100.0, 1000], [100.0, 1300], [100.0, 1600]]}]"#),
            "{out}"
        );
    }

    #[test]
    fn max_data_points_consolidates_as_graphite_web() {
        // 12 points of 10 s from 1005 over a 120 s range, at most 4: groups
        // of 3 (30 s), start nudged from 1005 to 1005 + 30 + 5 - 15 = 1025,
        // one value dropped (nudge / step - 1 = 1).
        let values: Vec<Option<f64>> = (1..=12).map(|v| Some(v as f64)).collect();
        let mut s = vec![series("a", 1005, 10, values)];
        consolidate_to_max_data_points(&mut s, 4);
        assert_eq!((s[0].start, s[0].step), (1025, 30));
        assert_eq!(s[0].values, vec![Some(3.0), Some(6.0), Some(9.0), Some(11.5)]);
        let points: Vec<_> = s[0].datapoints().collect();
        // Timestamps run from the nudged start through the end (1125).
        let expected = vec![
            (Some(3.0), 1025),
            (Some(6.0), 1055),
            (Some(9.0), 1085),
            (Some(11.5), 1115),
        ];
        assert_eq!(points, expected);
        // Few enough points: unchanged.
        let mut few = vec![series("a", 1000, 10, vec![Some(1.0), Some(2.0)])];
        consolidate_to_max_data_points(&mut few, 4);
        assert_eq!((few[0].start, few[0].step, few[0].values.len()), (1000, 10, 2));
        // One point: everything averaged.
        let mut all = vec![series("a", 1000, 10, vec![Some(1.0), None, Some(5.0)])];
        consolidate_to_max_data_points(&mut all, 1);
        assert_eq!((all[0].step, all[0].values.clone()), (30, vec![Some(3.0)]));
        // Nothing to do for empty series.
        let mut empty = vec![series("a", 1000, 10, vec![])];
        consolidate_to_max_data_points(&mut empty, 1);
        assert_eq!(empty[0].step, 10);
    }

    #[test]
    fn max_data_points_in_json() {
        let values: Vec<Option<f64>> = (0..6).map(|v| Some(v as f64)).collect();
        let options = JsonOptions {
            max_data_points: Some(3),
            ..JsonOptions::default()
        };
        let out = render_json(vec![series("a", 0, 10, values)], options);
        // Range 60 s, 6 points, at most 3: pairs; nudge 20 + 0 - 0 drops one.
        assert_eq!(
            out,
            r#"[{"target": "a", "tags": {"name": "a"}, "datapoints": [[1.5, 20], [3.5, 40], [5.0, 60]]}]"#
        );
    }

    #[test]
    fn csv_as_pythons_csv_module_writes_it() {
        let a = series("a.b", 86399, 1, vec![Some(1.0), None]);
        let b = series("sumSeries(a,b)", 0, 60, vec![Some(0.5)]);
        let c = series("say \"hi\"", 0, 60, vec![Some(-2.0)]);
        assert_eq!(
            render_csv(&[a, b, c]),
            "a.b,1970-01-01 23:59:59,1.0\r\na.b,1970-01-02 00:00:00,\r\n\"sumSeries(a,b)\",1970-01-01 00:00:00,0.5\r\n\"say \"\"hi\"\"\",1970-01-01 00:00:00,-2.0\r\n"
        );
        assert_eq!(render_csv(&[]), "");
    }

    /// The nodes `pattern` finds among `keys`.
    fn found(pattern: &str, keys: &[&str]) -> Vec<FoundNode> {
        crate::graphite::path::PathPattern::parse(pattern)
            .unwrap()
            .find(keys.iter().copied())
    }

    #[test]
    fn find_answers_branches_then_leaves() {
        // a.b is a leaf and a branch.
        let nodes = found("a.*", &["a.z", "a.b", "a.b.x", "a.c.y"]);
        assert_eq!(
            find_json("a.*", &nodes, false, true),
            concat!(
                r#"[{"text": "b", "id": "a.b", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "c", "id": "a.c", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "z", "id": "a.z", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
            )
        );
        assert_eq!(find_json("*", &[], false, true), "[]");
        let top = found("*", &["x"]);
        assert_eq!(
            find_json("*", &top, false, true),
            r#"[{"text": "x", "id": "x", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
        );
    }

    #[test]
    fn find_ids_keep_the_query_prefix_and_wildcards_add_a_star() {
        let nodes = found("s.*.cpu", &["s.web1.cpu", "s.web2.cpu"]);
        let out = find_json("s.*.cpu", &nodes, true, true);
        assert_eq!(
            out,
            concat!(
                r#"[{"text": "*", "id": "s.*.*", "allowChildren": 0, "expandable": 0, "leaf": 1}, "#,
                r#"{"text": "cpu", "id": "s.*.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
            )
        );
    }

    #[test]
    fn find_text_is_unquoted_and_escaped_on_request() {
        let nodes = found("a.*", &["a.x+y%41%zz%4", "a.é"]);
        assert_eq!(
            find_json("a.*", &nodes, false, true),
            concat!(
                r#"[{"text": "x yA%zz%4", "id": "a.x+y%41%zz%4", "allowChildren": 0, "expandable": 0, "leaf": 1}, "#,
                r#"{"text": "\u00e9", "id": "a.\u00e9", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
            )
        );
        assert!(find_json("a.*", &nodes, false, false).contains(r#""id": "a.é""#));
    }

    #[test]
    fn expand_is_sorted_and_distinct() {
        let paths = ["b".to_string(), "a.x".to_string(), "b".to_string()];
        assert_eq!(expand_json(&paths), r#"{"results": ["a.x", "b"]}"#);
        assert_eq!(expand_json(&[]), r#"{"results": []}"#);
    }
}
