//! Applies one request line to the engine and writes its answer. No I/O:
//! the session hands in a line, an output buffer and how much room is left.
//!
//! A `get` answer can be far larger than any output limit (a series of
//! millions of points, or `get *` of the whole store), so it is written in
//! slices: when the room runs out, the answer stops after a whole point line
//! and a [`Resume`] says where to go on once the output has drained. Nothing
//! else is answered on that connection in between, so answers stay in order.
//!
//! A sliced answer is not a snapshot: puts that arrive while it is being
//! written appear in it if they sort after the point where it stopped, and
//! not otherwise. Every point appears at most once and in order, and every
//! point stored before the `get` and not overwritten appears.

use crate::engine::{Engine, EngineError};
use crate::protocol::request::{parse_line, Query, Request, RequestError};
use crate::protocol::{response, stats};
use crate::store::{Cursor, Point, Series};

/// Where a `get` answer that ran out of room goes on: after the point of
/// `key` at timestamp `after`.
#[derive(Debug, Clone, PartialEq)]
pub enum Resume {
    /// `get <key>`.
    Key { key: Box<str>, after: i64 },
    /// `get *`: then every key above the cursor's.
    All(Cursor),
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
        Request::Get(query) => {
            response::begin_ok(out);
            let stop_at = out.len().saturating_add(room);
            match query {
                Query::Key(key) => {
                    let series = engine.get(key);
                    write_key(series, key, None, out, stop_at).map(|after| Resume::Key { key: key.into(), after })
                }
                Query::All => {
                    engine.get_all();
                    write_all(engine, None, out, stop_at)
                }
            }
        }
    }
}

/// Goes on with an answer that ran out of room.
pub fn resume(from: Resume, engine: &Engine, out: &mut Vec<u8>, room: usize) -> Option<Resume> {
    let stop_at = out.len().saturating_add(room);
    match from {
        Resume::Key { key, after } => {
            write_key(engine.series(&key), &key, Some(after), out, stop_at).map(|after| Resume::Key { key, after })
        }
        Resume::All(cursor) => write_all(engine, Some(cursor), out, stop_at),
    }
}

/// The points of one key after `after`; ends the answer when they are all
/// written, or returns the last timestamp written when `out` reaches `stop_at`.
fn write_key(series: Option<&Series>, key: &str, after: Option<i64>, out: &mut Vec<u8>, stop_at: usize) -> Option<i64> {
    if let Some(series) = series {
        if let Some(last) = write_points(out, key, series.points_after(after), stop_at) {
            return Some(last);
        }
    }
    response::end(out);
    None
}

/// Every key's points in key order, from the point after `from` on.
fn write_all(engine: &Engine, from: Option<Cursor>, out: &mut Vec<u8>, stop_at: usize) -> Option<Resume> {
    let stopped = engine.walk(from, |key, (timestamp, value)| {
        response::write_point(out, key, value, timestamp);
        out.len() < stop_at
    });
    if stopped.is_none() {
        response::end(out);
    }
    stopped.map(Resume::All)
}

/// Writes point lines until done (None) or `out` reaches `stop_at` (the last
/// timestamp written).
#[inline]
fn write_points(out: &mut Vec<u8>, key: &str, points: impl Iterator<Item = Point>, stop_at: usize) -> Option<i64> {
    for (timestamp, value) in points {
        response::write_point(out, key, value, timestamp);
        if out.len() >= stop_at {
            return Some(timestamp);
        }
    }
    None
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
        match r {
            None => None,
            Some(Resume::Key { key, after }) => Some((key.to_string(), *after)),
            Some(Resume::All(cursor)) => Some((cursor.key.to_string(), cursor.after)),
        }
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
