//! Microbenchmarks of the store: inserting points in and out of order,
//! writing the answer to `get *` over a million points, and over a million
//! series while new series arrive (per point); and `range` of one hour of a
//! 30-day series against `get` of all of it (per answer).
//! `cargo bench --bench store`, or `cargo bench --bench store -- range`.
//!
//! The course session's answer writer is private, so `get *` is measured
//! the way it writes, from public parts: [`Store::walk`] a slice at a time and
//! `response::write_point`.

mod common;
#[path = "../src/test_support.rs"]
mod test_support;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use metricsd::protocol::response::{begin_ok, end, write_point};
use metricsd::store::Store;
use std::hint::black_box;
use test_support::XorShift;

/// Points per insert run: 400 chunks of one series, 1.6 MB of points.
const INSERT_POINTS: usize = 100_000;
/// `get *` over KEYS × POINTS_PER_KEY = one million points (about 28 MB
/// of answer).
const KEYS: usize = 1000;
const POINTS_PER_KEY: usize = 1000;
/// `get *` over a million series of one point each (about 30 MB of answer).
const WIDE_KEYS: usize = 1_000_000;
/// A 30-day series at a 10 s interval: 30 × 8640 = 259,200 points.
const MONTH_POINTS: i64 = 30 * 24 * 360;
const INTERVAL: i64 = 10;
/// The window of `range`: one hour, 360 points.
const HOUR: i64 = 3600;

/// The answer bytes a connection writes per loop turn: the server's
/// `ANSWER_SLICE_BYTES` (private to its connection module).
const SLICE_BYTES: usize = 256 * 1024;

/// `n` timestamps in ascending order.
fn ascending(n: usize) -> Vec<i64> {
    (0..n as i64).map(|t| 1_700_000_000 + t).collect()
}

/// The same timestamps in a random order (Fisher–Yates, fixed seed).
fn shuffled(n: usize) -> Vec<i64> {
    let mut ts = ascending(n);
    let mut rng = XorShift::seeded(42);
    for i in (1..n).rev() {
        ts.swap(i, rng.below(i as u64 + 1) as usize);
    }
    ts
}

fn inserts(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_put");
    group.throughput(Throughput::Elements(INSERT_POINTS as u64));
    for (name, timestamps) in [
        ("in order", ascending(INSERT_POINTS)),
        ("random order", shuffled(INSERT_POINTS)),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                Store::new,
                |mut store| {
                    for &t in &timestamps {
                        store.put("host7.cpu.user", t, 0.5);
                    }
                    store
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// A `get *` answer as the session writes it: [`Store::walk`] in slices of
/// [`SLICE_BYTES`], resumed from the cursor, with `between` run on the store
/// after each slice (the puts of other clients between loop turns). The
/// output is handed off (here: cleared) after each slice, as a connection's
/// output drains.
fn answer_all(store: &mut Store, out: &mut Vec<u8>, mut between: impl FnMut(&mut Store)) {
    out.clear();
    begin_ok(out);
    let mut cursor = None;
    loop {
        cursor = store.walk(cursor, |key, (timestamp, value)| {
            write_point(out, key, value, timestamp);
            out.len() < SLICE_BYTES
        });
        if cursor.is_none() {
            break;
        }
        black_box(&out);
        out.clear();
        between(store);
    }
    end(out);
    black_box(&out);
}

fn get_all(c: &mut Criterion) {
    let mut group = c.benchmark_group("get_all");
    // Each iteration takes tens of milliseconds: ten samples of one
    // iteration count each (flat) fit the 3 s measurement.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut out = Vec::with_capacity(SLICE_BYTES + 4096);

    let mut store = Store::new();
    for k in 0..KEYS {
        let key = format!("host{k}.cpu.user");
        for t in 0..POINTS_PER_KEY as i64 {
            store.put(&key, 1_700_000_000 + t, t as f64 * 0.37);
        }
    }
    group.throughput(Throughput::Elements((KEYS * POINTS_PER_KEY) as u64));
    group.bench_function("1M points", |b| b.iter(|| answer_all(&mut store, &mut out, |_| {})));

    // A million series of one point each, and another client creating a
    // series between every two slices (short-lived series: containers,
    // request ids). Each new key sorts into the middle of the walk.
    let mut store = Store::new();
    let mut rng = XorShift::seeded(7);
    for _ in 0..WIDE_KEYS {
        store.put(&format!("pod{:016x}.mem", rng.next()), 1_700_000_000, 0.5);
    }
    group.throughput(Throughput::Elements(WIDE_KEYS as u64));
    group.bench_function("1M series", |b| b.iter(|| answer_all(&mut store, &mut out, |_| {})));
    group.bench_function("1M series, a new series between slices", |b| {
        b.iter(|| {
            answer_all(&mut store, &mut out, |store| {
                store.put(&format!("pod{:016x}.mem", rng.next()), 1_700_000_000, 0.5);
            })
        })
    });
    group.finish();
}

/// The answer to `range <key> <from> <to>` (or `get <key>`) as the session
/// writes it, from public parts: the window's points and
/// `response::write_point`. Unsliced: `out` is cleared before each answer.
fn answer_points(out: &mut Vec<u8>, key: &str, points: impl Iterator<Item = (i64, f64)>) {
    out.clear();
    begin_ok(out);
    for (timestamp, value) in points {
        write_point(out, key, value, timestamp);
    }
    end(out);
    black_box(&out);
}

fn range_vs_get(c: &mut Criterion) {
    let key = "host7.cpu.user";
    let start = 1_700_000_000;
    let mut store = Store::new();
    for i in 0..MONTH_POINTS {
        store.put(key, start + i * INTERVAL, (i % 1000) as f64 * 0.37);
    }
    let series = store.get(key).expect("the series was just filled");
    // An hour in the middle of the month.
    let from = start + MONTH_POINTS / 2 * INTERVAL;
    let to = from + HOUR - 1;
    assert_eq!(series.range(from, to).count() as i64, HOUR / INTERVAL);
    let mut out = Vec::new();
    let mut group = c.benchmark_group("range");
    group.bench_function("1 h of a 30-day series", |b| {
        b.iter(|| answer_points(&mut out, key, series.range(black_box(from), black_box(to))))
    });
    // Each iteration writes about 8 MB of answer: ten flat samples.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    // `get` is `range` over every timestamp in the session.
    group.bench_function("get of the 30-day series", |b| {
        b.iter(|| answer_points(&mut out, key, black_box(series).range(i64::MIN, i64::MAX)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::short_runs();
    targets = inserts, get_all, range_vs_get
}
criterion_main!(benches);
