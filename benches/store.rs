//! Microbenchmarks of the store: inserting points in and out of order, and
//! writing the answer to `get *` over a million points. Per point.
//! `cargo bench --bench store`.
//!
//! The server's handler is private, so `get *` is measured as the handler
//! does it, from public parts: the store's sorted keys and series
//! iteration, and `response::write_point`; the output is handed off (here:
//! cleared) whenever it reaches the server's default output limit, as a
//! connection's output drains in slices.

mod common;
#[path = "../src/testutil.rs"]
mod testutil;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use metricsd::protocol::response::{begin_ok, end, write_point};
use metricsd::server::DEFAULT_MAX_PENDING_OUTPUT;
use metricsd::store::Store;
use std::hint::black_box;
use testutil::XorShift;

/// Points per insert run: 400 chunks of one series, 1.6 MB of points.
const INSERT_POINTS: usize = 100_000;
/// `get *` over KEYS × POINTS_PER_KEY = one million points (about 28 MB
/// of answer).
const KEYS: usize = 1000;
const POINTS_PER_KEY: usize = 1000;

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

fn get_all(c: &mut Criterion) {
    let mut store = Store::new();
    for k in 0..KEYS {
        let key = format!("host{k}.cpu.user");
        for t in 0..POINTS_PER_KEY as i64 {
            store.put(&key, 1_700_000_000 + t, t as f64 * 0.37);
        }
    }
    let mut group = c.benchmark_group("get_all");
    group.throughput(Throughput::Elements((KEYS * POINTS_PER_KEY) as u64));
    // Each iteration takes tens of milliseconds: ten samples of one
    // iteration count each (flat) fit the 3 s measurement.
    group.sample_size(10).sampling_mode(SamplingMode::Flat);
    let mut out = Vec::with_capacity(DEFAULT_MAX_PENDING_OUTPUT + 4096);
    group.bench_function("1M points", |b| {
        b.iter(|| {
            out.clear();
            begin_ok(&mut out);
            store.sort_keys();
            for key in store.sorted_keys() {
                let Some(series) = store.get(key) else { continue };
                for (timestamp, value) in series.iter() {
                    write_point(&mut out, key, value, timestamp);
                    if out.len() >= DEFAULT_MAX_PENDING_OUTPUT {
                        black_box(&out);
                        out.clear();
                    }
                }
            }
            end(&mut out);
            black_box(&out);
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::short_runs();
    targets = inserts, get_all
}
criterion_main!(benches);
