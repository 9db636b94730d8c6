//! Applies one request line to the engine and writes its answer. No I/O:
//! the session hands in a line, an output buffer and how much room is left.
//!
//! A `get` or `range` answer can be far larger than any output limit (a
//! series of millions of points, or `get *` of the whole store), so it is
//! written in slices: when the room runs out, the answer stops after a whole
//! line and a [`Resume`] says where to go on once the output has drained.
//! Nothing else is answered on that connection in between, so answers stay
//! in order. `get` is `range` over every timestamp: one writer serves both.
//!
//! A sliced answer is not a snapshot: puts that arrive while it is being
//! written appear in it if they sort after the point where it stopped, and
//! not otherwise. Every point appears at most once and in order, and every
//! point stored before the request and not overwritten appears. An
//! aggregate answer stops after a whole bucket and goes on with the next
//! one, so a bucket is never split over two rows.

use crate::aggregate;
use crate::engine::{Engine, EngineError};
use crate::protocol::request::{parse_line, Buckets, Query, Request, RequestError};
use crate::protocol::{response, stats};
use crate::store::Series;
use std::sync::Arc;

/// The part of a key's points an answer lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
    pub buckets: Option<Buckets>,
}

impl Window {
    /// What `get` lists: every point.
    const ALL: Window = Window {
        from: i64::MIN,
        to: i64::MAX,
        buckets: None,
    };
}

/// Where a `get` or `range` answer that ran out of room goes on: in `key`,
/// after timestamp `after` (the last point written, or the last second of
/// the last bucket written); then, for `get *` and `range *`, every key
/// above it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    pub all: bool,
    pub key: Arc<str>,
    pub after: i64,
    pub window: Window,
}

/// Answers one line (without its `\n`), adding about `room` bytes at most
/// (a whole point line may pass it). Blank lines get no answer; an invalid
/// line gets `error\nwrong command\n\n` and its cause is returned.
#[inline]
pub fn answer_line(
    line: &[u8],
    engine: &mut Engine,
    out: &mut Vec<u8>,
    room: usize,
) -> Result<Option<Resume>, RequestError> {
    match parse_line(line) {
        Ok(Some(request)) => Ok(execute(request, engine, out, room)),
        Ok(None) => Ok(None),
        Err(cause) => {
            reject(out);
            Err(cause)
        }
    }
}

/// Writes the one error answer the protocol has.
#[inline]
pub fn reject(out: &mut Vec<u8>) {
    out.extend_from_slice(response::WRONG_COMMAND);
}

/// The course protocol's words for an engine error: an `error` answer
/// whose reason starts `not stored:` for a put the log could not keep.
pub fn write_engine_error(out: &mut Vec<u8>, error: &EngineError) {
    match error {
        EngineError::NotStored(cause) => response::write_error(out, &format!("not stored: {cause}")),
        EngineError::OlderThanRetention => response::write_error(out, "not stored: older than retention"),
        EngineError::MemoryFull => response::write_error(out, "not stored: memory limit reached"),
    }
}

/// The answer to a put or a delete: `ok\n\n`, or why it was not stored.
fn write_change(out: &mut Vec<u8>, outcome: Result<(), EngineError>) {
    match outcome {
        Ok(()) => out.extend_from_slice(response::OK_EMPTY),
        Err(error) => write_engine_error(out, &error),
    }
}

/// Applies a valid request and writes its answer, or as much of it as
/// `room` allows.
pub fn execute(request: Request<'_>, engine: &mut Engine, out: &mut Vec<u8>, room: usize) -> Option<Resume> {
    match request {
        Request::Put { key, value, timestamp } => {
            write_change(out, engine.put(key, timestamp, value));
            None
        }
        Request::Delete { key } => {
            write_change(out, engine.delete(key));
            None
        }
        Request::Stats => {
            let figures = engine.stats();
            stats::write_stats(out, figures.iter().map(|(name, value)| (name.as_str(), *value)));
            None
        }
        Request::Get(Query::Key(key)) => {
            let floor = engine.horizon();
            let series = engine.get(key);
            begin_key(series, key, Window::ALL, floor, out, room)
        }
        Request::Range(range) => {
            let window = Window {
                from: range.from,
                to: range.to,
                buckets: range.buckets,
            };
            match range.query {
                Query::Key(key) => {
                    let floor = engine.horizon();
                    let series = engine.range(key);
                    begin_key(series, key, window, floor, out, room)
                }
                Query::All => {
                    engine.range_all();
                    begin_all(engine, window, out, room)
                }
            }
        }
        Request::Get(Query::All) => {
            engine.get_all();
            begin_all(engine, Window::ALL, out, room)
        }
    }
}

/// Starts the answer for one key; points before `floor` are expired.
fn begin_key(
    series: Option<&Series>,
    key: &str,
    window: Window,
    floor: i64,
    out: &mut Vec<u8>,
    room: usize,
) -> Option<Resume> {
    response::begin_ok(out);
    let after = Rows::new(window, floor, out, room).key(series, key, None)?;
    Some(Resume {
        all: false,
        key: key.into(),
        after,
        window,
    })
}

/// Starts the answer for every key.
fn begin_all(engine: &Engine, window: Window, out: &mut Vec<u8>, room: usize) -> Option<Resume> {
    response::begin_ok(out);
    Rows::new(window, engine.horizon(), out, room).all(engine, None)
}

/// Goes on with an answer that ran out of room.
pub fn resume(from: Resume, engine: &Engine, out: &mut Vec<u8>, room: usize) -> Option<Resume> {
    let mut rows = Rows::new(from.window, engine.horizon(), out, room);
    if from.all {
        rows.all(engine, Some((&from.key, from.after)))
    } else {
        let after = rows.key(engine.series(&from.key), &from.key, Some(from.after))?;
        Some(Resume { after, ..from })
    }
}

/// Rows of a `get` or `range` answer going into `out` until it reaches
/// `stop_at`.
struct Rows<'a> {
    window: Window,
    /// The engine's horizon: older points are expired and never listed
    /// (a series keeps some until their whole chunk ages out).
    floor: i64,
    out: &'a mut Vec<u8>,
    stop_at: usize,
}

impl<'a> Rows<'a> {
    fn new(window: Window, floor: i64, out: &'a mut Vec<u8>, room: usize) -> Rows<'a> {
        let stop_at = out.len().saturating_add(room);
        Rows {
            window,
            floor,
            out,
            stop_at,
        }
    }

    /// The rows of one key after `after`; ends the answer when they are
    /// all written, or returns where to go on.
    fn key(&mut self, series: Option<&Series>, key: &str, after: Option<i64>) -> Option<i64> {
        if let Some(after) = series.and_then(|series| self.series(series, key, after)) {
            return Some(after);
        }
        response::end(self.out);
        None
    }

    /// Every key's rows in key order, from the key of `from` on (after its
    /// timestamp there).
    fn all(&mut self, engine: &Engine, from: Option<(&Arc<str>, i64)>) -> Option<Resume> {
        for (key, series) in engine.series_from(from.map(|(key, _)| &**key)) {
            let after = from.filter(|(at, _)| *at == key).map(|(_, after)| after);
            if let Some(after) = self.series(series, key, after) {
                return Some(Resume {
                    all: true,
                    key: Arc::clone(key),
                    after,
                    window: self.window,
                });
            }
        }
        response::end(self.out);
        None
    }

    /// The rows of `series` in the window after timestamp `after` (all of
    /// them for None): its points, or one row per non-empty bucket (the
    /// bucket's start and its aggregate). Returns None when done, or where
    /// to go on once the output reaches `stop_at`.
    #[inline]
    fn series(&mut self, series: &Series, key: &str, after: Option<i64>) -> Option<i64> {
        let Window { from, to, buckets } = self.window;
        let from = match after {
            None => from,
            Some(after) if after >= to => return None,
            // after < to <= i64::MAX: no overflow.
            Some(after) => after + 1,
        };
        let from = from.max(self.floor);
        let out = &mut *self.out;
        match buckets {
            None => {
                // Run by run: a decoded chunk is formatted straight from
                // its buffer.
                let stop_at = self.stop_at;
                let mut stopped = None;
                series.range_runs(from, to, |points| {
                    for &(timestamp, value) in points {
                        response::write_point(out, key, value, timestamp);
                        if out.len() >= stop_at {
                            stopped = Some(timestamp);
                            return false;
                        }
                    }
                    true
                });
                return stopped;
            }
            Some(Buckets { step, agg }) => {
                let points = series.range(from, to);
                for bucket in aggregate::buckets(points, step, agg) {
                    response::write_point(out, key, bucket.value, bucket.start);
                    if out.len() >= self.stop_at {
                        // The next bucket starts after this one's last
                        // second; a bucket may reach past the window.
                        return Some(bucket.end.min(to));
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    fn answer_all(store: &mut Engine, lines: &[&str]) -> String {
        let mut out = Vec::new();
        for line in lines {
            assert_eq!(
                answer_line(line.as_bytes(), store, &mut out, usize::MAX).unwrap_or(None),
                None
            );
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_assignment_example() {
        let mut store = Engine::in_memory(Store::new());
        let puts = answer_all(
            &mut store,
            &[
                "put palm.cpu 0.5 1150864247",
                "put palm.cpu 2.0 1150864248",
                "put palm.cpu 0.5 1150864248",
                "put eardrum.cpu 3 1150864250",
                "put eardrum.cpu 4 1150864251",
                "put eardrum.memory 4200000 1503320872",
            ],
        );
        assert_eq!(puts, "ok\n\n".repeat(6));
        assert_eq!(
            answer_all(&mut store, &["get palm.cpu"]),
            "ok\npalm.cpu 0.5 1150864247\npalm.cpu 0.5 1150864248\n\n"
        );
        assert_eq!(
            answer_all(&mut store, &["get *"]),
            "ok\neardrum.cpu 3.0 1150864250\neardrum.cpu 4.0 1150864251\neardrum.memory 4200000.0 1503320872\n\
             palm.cpu 0.5 1150864247\npalm.cpu 0.5 1150864248\n\n"
        );
        assert_eq!(answer_all(&mut store, &["get nothing.here"]), "ok\n\n");
        assert_eq!(answer_all(&mut store, &["", "  \r"]), "");
        assert_eq!(
            answer_all(&mut store, &["put palm.cpu abc 1", "get palm.cpu x"]),
            "error\nwrong command\n\n".repeat(2)
        );
    }
}

#[cfg(test)]
mod slicing {
    use super::*;
    use crate::store::Store;

    /// Answers `line` in slices of `room` bytes, with `between` run on the
    /// store after each slice; returns the whole answer.
    fn sliced(store: &mut Engine, line: &str, room: usize, mut between: impl FnMut(&mut Store)) -> String {
        let mut out = Vec::new();
        let mut next = answer_line(line.as_bytes(), store, &mut out, room).unwrap();
        let mut slices = 1;
        while let Some(from) = next {
            between(store.store_mut());
            let before = out.len();
            next = resume(from, store, &mut out, room);
            // A slice never passes its room by more than one point line.
            assert!(out.len() - before < room + 64, "slice of {} bytes", out.len() - before);
            slices += 1;
        }
        assert!(slices > 1 || room == usize::MAX);
        String::from_utf8(out).unwrap()
    }

    fn filled() -> Engine {
        let mut store = Store::new();
        for t in 0..500 {
            for key in ["a", "b.long.key.name", "c"] {
                store.put(key, t * 2, t as f64 + 0.5);
            }
        }
        Engine::in_memory(store)
    }

    #[test]
    fn puts_during_a_sliced_answer() {
        let mut store = filled();
        let mut round = 0;
        let got = sliced(&mut store, "get *", 2000, |store| {
            round += 1;
            // Before every cursor: never shown. After it: shown once, in order.
            store.put("a", -round, 0.0);
            store.put("c", 10_000 + round, 1.0);
            store.put("zz.new", round, 2.0);
            // Overwrite a point of "a" that was shown already, or not yet.
            store.put("a", 0, 99.0);
        });
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], "ok");
        assert!(got.ends_with("\n\n"));
        let points: Vec<(&str, i64)> = lines[1..]
            .iter()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f[0], f[2].parse().unwrap())
            })
            .collect();
        // Sorted by key, then timestamp, each at most once.
        assert!(points.windows(2).all(|w| w[0] < w[1]), "order");
        // Every point stored before the get is there.
        for t in 0..500 {
            for key in ["a", "b.long.key.name", "c"] {
                assert!(points.contains(&(key, t * 2)), "{key} {t}");
            }
        }
        // "a" was written first, so its earlier points came too late.
        assert!(!points.iter().any(|&(k, t)| k == "a" && t < 0));
        // Later keys' new points after the cursor are there.
        assert!(points.iter().any(|&(k, t)| k == "c" && t > 10_000));
        assert!(points.iter().any(|&(k, _)| k == "zz.new"));
    }
}

#[cfg(test)]
mod model_based {
    //! Sliced answers against an exact model of the documented semantics,
    //! with random stores, random rooms and random puts between slices.
    use super::*;
    use crate::store::Store;
    use crate::test_support::XorShift;
    use std::collections::BTreeMap;

    type Model = BTreeMap<String, BTreeMap<i64, f64>>;

    /// Keys with shared prefixes, non-ASCII, and longer than small rooms.
    fn keys() -> Vec<String> {
        let mut k: Vec<String> = [
            "a",
            "a.b",
            "a.b.c",
            "a.",
            "ab",
            "A",
            "b",
            "k\u{0436}",
            "zz",
            "a.bb",
            "~",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        k.push("L".repeat(300));
        k.push(format!("{}x", "L".repeat(300)));
        k
    }

    fn timestamp(rng: &mut XorShift) -> i64 {
        match rng.below(10) {
            0 => [i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1, 0, -1][rng.below(6) as usize],
            1 => rng.next() as i64,
            2..=5 => rng.below(2000) as i64 - 1000,
            _ => rng.below(700) as i64,
        }
    }

    fn value(rng: &mut XorShift) -> f64 {
        [0.5, 1.0, -3.25, 1e300, 1e-7, 4200000.0, 123.456][rng.below(7) as usize]
    }

    fn pick<'a>(rng: &mut XorShift, keys: &'a [String]) -> &'a str {
        &keys[rng.below(keys.len() as u64) as usize]
    }

    fn put(store: &mut Engine, model: &mut Model, key: &str, rng: &mut XorShift) {
        let (t, v) = (timestamp(rng), value(rng));
        store.store_mut().put(key, t, v);
        model.entry(key.to_string()).or_default().insert(t, v);
    }

    /// What one slice must write: the model's points strictly after the
    /// cursor, until the output reaches `stop_at`, then the new cursor; or
    /// all of them and the final `\n`.
    fn expected_slice(
        model: &Model,
        only: Option<&str>,
        cursor: Option<(String, i64)>,
        mut len: usize,
        stop_at: usize,
    ) -> (Vec<u8>, Option<(String, i64)>) {
        let mut out = Vec::new();
        for (k, series) in model.iter().filter(|(k, _)| only.is_none_or(|o| o == k.as_str())) {
            for (&t, &v) in series {
                if cursor
                    .as_ref()
                    .is_some_and(|(ck, ct)| (k.as_bytes(), t) <= (ck.as_bytes(), *ct))
                {
                    continue;
                }
                let before = out.len();
                response::write_point(&mut out, k, v, t);
                len += out.len() - before;
                if len >= stop_at {
                    return (out, Some((k.clone(), t)));
                }
            }
        }
        out.push(b'\n');
        (out, None)
    }

    fn cursor_of(r: &Option<Resume>) -> Option<(String, i64)> {
        r.as_ref().map(|r| (r.key.to_string(), r.after))
    }

    #[test]
    fn random_slices_with_random_puts_between_match_the_model() {
        let keys = keys();
        for seed in 1..200u64 {
            let mut rng = XorShift::seeded(seed);
            let mut store = Engine::in_memory(Store::new());
            let mut model = Model::new();
            for _ in 0..rng.below(3000) {
                let key = pick(&mut rng, &keys);
                put(&mut store, &mut model, key, &mut rng);
            }
            let only = (rng.below(2) == 0).then(|| pick(&mut rng, &keys).to_string());
            let request = format!("get {}", only.as_deref().unwrap_or("*"));
            let room = match rng.below(4) {
                0 => 1 + rng.below(5) as usize,
                1 => 1 + rng.below(400) as usize,
                2 => 1 + rng.below(20_000) as usize,
                _ => usize::MAX,
            };
            let puts_between = rng.below(3);
            let mut out = b"earlier answers".to_vec();
            let mut want = out.clone();
            want.extend_from_slice(b"ok\n");
            let (slice, mut cursor) = expected_slice(
                &model,
                only.as_deref(),
                None,
                want.len(),
                want.len().saturating_add(room),
            );
            want.extend_from_slice(&slice);
            let mut next = answer_line(request.as_bytes(), &mut store, &mut out, room).unwrap();
            assert!(out == want, "seed {seed}: first slice (room {room})");
            assert_eq!(cursor_of(&next), cursor, "seed {seed}");
            let mut slices = 0;
            while let Some(from) = next {
                slices += 1;
                assert!(slices < 1_000_000);
                for _ in 0..puts_between {
                    // New keys too, before and after the cursor in sort order.
                    let key = if rng.below(4) == 0 {
                        format!("{}{}", pick(&mut rng, &keys), rng.below(5))
                    } else {
                        pick(&mut rng, &keys).to_string()
                    };
                    put(&mut store, &mut model, &key, &mut rng);
                }
                let room = if rng.below(3) == 0 {
                    1 + rng.below(300) as usize
                } else {
                    room
                };
                let (slice, c) = expected_slice(
                    &model,
                    only.as_deref(),
                    cursor,
                    out.len(),
                    out.len().saturating_add(room),
                );
                want.extend_from_slice(&slice);
                cursor = c;
                next = resume(from, &store, &mut out, room);
                assert!(out == want, "seed {seed}: slice {slices} (room {room})");
                assert_eq!(cursor_of(&next), cursor, "seed {seed}");
            }
            assert!(out.ends_with(b"\n\n"));
        }
    }

    #[test]
    fn sliced_without_puts_is_byte_exact_for_every_small_room() {
        let keys = keys();
        let mut rng = XorShift::seeded(99);
        let mut store = Engine::in_memory(Store::new());
        let mut model = Model::new();
        for _ in 0..600 {
            let key = pick(&mut rng, &keys);
            put(&mut store, &mut model, key, &mut rng);
        }
        let requests = std::iter::once("get *".to_string()).chain(keys.iter().map(|k| format!("get {k}")));
        for request in requests {
            let mut whole = Vec::new();
            assert!(answer_line(request.as_bytes(), &mut store, &mut whole, usize::MAX)
                .unwrap()
                .is_none());
            for room in (1..=40).chain([299, 300, 301, 302, 310, 320, 1000, 4095, 4096, 4097]) {
                let mut out = Vec::new();
                let mut next = answer_line(request.as_bytes(), &mut store, &mut out, room).unwrap();
                while let Some(from) = next {
                    next = resume(from, &store, &mut out, room);
                }
                assert!(out == whole, "{request} room {room}");
            }
        }
    }
}

#[cfg(test)]
mod range_model {
    //! `range` answers, whole and in slices of any size, against a plain
    //! model: a sorted map, filtered and grouped in i128 arithmetic.
    use super::*;
    use crate::protocol::Agg;
    use crate::store::Store;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    type Model = BTreeMap<String, BTreeMap<i64, f64>>;

    /// The rows the contract promises, as the answer's bytes.
    fn model_answer(model: &Model, key: Option<&str>, from: i64, to: i64, buckets: Option<(i64, Agg)>) -> Vec<u8> {
        let mut out = b"ok\n".to_vec();
        for (k, series) in model.iter().filter(|(k, _)| key.is_none_or(|key| key == k.as_str())) {
            let points: Vec<(i64, f64)> = series.range(from..=to).map(|(&t, &v)| (t, v)).collect();
            let Some((step, agg)) = buckets else {
                for (t, v) in points {
                    response::write_point(&mut out, k, v, t);
                }
                continue;
            };
            // Group by the mathematical bucket start, floor(t / step) * step.
            let mut groups: BTreeMap<i128, Vec<f64>> = BTreeMap::new();
            for (t, v) in points {
                let start = (t as i128).div_euclid(step as i128) * step as i128;
                groups.entry(start).or_default().push(v);
            }
            for (start, values) in groups {
                let value = match agg {
                    Agg::Avg => values.iter().sum::<f64>() / values.len() as f64,
                    Agg::Sum => values[1..].iter().fold(values[0], |a, b| a + b),
                    Agg::Min => values.iter().copied().fold(values[0], |a, b| if b < a { b } else { a }),
                    Agg::Max => values.iter().copied().fold(values[0], |a, b| if b > a { b } else { a }),
                    Agg::Count => values.len() as f64,
                    Agg::Last => values[values.len() - 1],
                };
                let label = start.max(i64::MIN as i128) as i64;
                response::write_point(&mut out, k, value, label);
            }
        }
        out.push(b'\n');
        out
    }

    fn timestamp() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -40i64..40,
            1 => prop::sample::select(vec![i64::MIN, i64::MIN + 1, i64::MIN + 7, i64::MAX, i64::MAX - 1, -1, 0]),
            1 => any::<i64>(),
        ]
    }

    fn step() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => 1i64..12,
            1 => prop::sample::select(vec![60, 1 << 40, i64::MAX / 2, i64::MAX - 1, i64::MAX]),
            1 => 1..=i64::MAX,
        ]
    }

    fn value() -> impl Strategy<Value = f64> {
        // Sums of these stay finite; overflow is tested in `aggregate`.
        prop::sample::select(vec![0.5, -0.0, 0.0, 1.0, -3.25, 1e300, -1e300, 1e-7, 4200000.0, 0.1])
    }

    const KEYS: [&str; 4] = ["a", "a.b", "b", "k\u{0436}"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn range_answers_match_the_model_whole_and_sliced(
            points in prop::collection::vec((prop::sample::select(&KEYS[..]), timestamp(), value()), 0..120),
            key in prop::option::weighted(0.6, prop::sample::select(&KEYS[..])),
            bounds in (timestamp(), timestamp()),
            buckets in prop::option::of((step(), prop::sample::select(&Agg::ALL[..]))),
            room in 1usize..200,
        ) {
            let mut store = Store::new();
            let mut model = Model::new();
            for &(k, t, v) in &points {
                store.put(k, t, v);
                model.entry(k.to_owned()).or_default().insert(t, v);
            }
            let mut engine = Engine::in_memory(store);
            let (from, to) = (bounds.0.min(bounds.1), bounds.0.max(bounds.1));
            let mut line = format!("range {} {from} {to}", key.unwrap_or("*"));
            if let Some((step, agg)) = buckets {
                line += &format!(" {step} {}", agg.name());
            }
            let want = model_answer(&model, key, from, to, buckets);

            let mut whole = Vec::new();
            let next = answer_line(line.as_bytes(), &mut engine, &mut whole, usize::MAX);
            prop_assert_eq!(next, Ok(None));
            prop_assert_eq!(String::from_utf8_lossy(&whole), String::from_utf8_lossy(&want), "{}", line);

            let mut sliced = Vec::new();
            let mut next = answer_line(line.as_bytes(), &mut engine, &mut sliced, room).unwrap();
            let mut slices = 0;
            while let Some(from) = next {
                slices += 1;
                prop_assert!(slices <= want.len(), "an answer that never ends");
                let before = sliced.len();
                next = resume(from, &engine, &mut sliced, room);
                // A slice stops after the row that reaches its room.
                prop_assert!(sliced.len() - before < room + 64);
            }
            prop_assert_eq!(String::from_utf8_lossy(&sliced), String::from_utf8_lossy(&want), "{} room {}", line, room);
        }
    }

    #[test]
    fn get_is_range_over_every_timestamp() {
        let mut store = Store::new();
        for t in [i64::MIN, -5, 0, 7, i64::MAX] {
            store.put("k", t, t as f64);
            store.put("j", t, 1.0);
        }
        let mut engine = Engine::in_memory(store);
        for (get, range) in [("get k", "range k"), ("get *", "range *")] {
            let answer = |engine: &mut Engine, line: &str| {
                let mut out = Vec::new();
                answer_line(line.as_bytes(), engine, &mut out, usize::MAX).unwrap();
                out
            };
            let all = format!("{range} {} {}", i64::MIN, i64::MAX);
            assert_eq!(answer(&mut engine, get), answer(&mut engine, &all));
        }
        let figures = engine.figures();
        let count = |name: &str| figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!((count("requests.get"), count("requests.range")), (Some(2), Some(2)));
    }

    #[test]
    fn buckets_start_on_multiples_of_the_step_even_before_the_window() {
        let mut store = Store::new();
        for t in 95..=130 {
            store.put("k", t, 1.0);
        }
        let mut engine = Engine::in_memory(store);
        let mut out = Vec::new();
        answer_line(b"range k 98 125 10 count", &mut engine, &mut out, usize::MAX).unwrap();
        // 98 and 99 are in the bucket of 90, which starts before the window.
        assert_eq!(out, b"ok\nk 2.0 90\nk 10.0 100\nk 10.0 110\nk 6.0 120\n\n");
    }
}
