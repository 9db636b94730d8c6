//! Microbenchmarks of the pure protocol code: request parsing (per
//! request) and answer encoding (per point line). `cargo bench --bench protocol`.

mod common;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use metricsd::protocol::parse_line;
use metricsd::protocol::response::write_point;
use std::hint::black_box;

/// Lines per batch: enough distinct lines that branch predictors cannot
/// learn one, few enough (about 30 KB) to stay in L1/L2 like a read buffer.
const LINES: usize = 1000;

/// Request lines as clients send them: three puts to one get, keys of
/// metric-name length, values with and without fractions, current-era
/// timestamps.
fn request_lines() -> Vec<Vec<u8>> {
    (0..LINES)
        .map(|i| {
            let key = format!("host{}.cpu.user", i % 37);
            match i % 4 {
                3 => format!("get {key}").into_bytes(),
                _ => format!("put {key} {}.{} {}", i % 100, i % 7, 1_700_000_000 + i).into_bytes(),
            }
        })
        .collect()
}

fn parsing(c: &mut Criterion) {
    let lines = request_lines();
    let mut group = c.benchmark_group("parse_line");
    group.throughput(Throughput::Elements(LINES as u64));
    group.bench_function("3 puts : 1 get", |b| {
        b.iter(|| {
            for line in &lines {
                black_box(parse_line(black_box(line)).ok());
            }
        })
    });
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_point");
    group.throughput(Throughput::Elements(LINES as u64));
    // Values as a series holds them: a fraction most of the time.
    let points: Vec<(f64, i64)> = (0..LINES)
        .map(|i| (i as f64 * 0.37, 1_700_000_000 + i as i64))
        .collect();
    group.bench_function("host.cpu.user", |b| {
        b.iter_batched_ref(
            || Vec::with_capacity(64 * LINES),
            |out| {
                for &(value, timestamp) in &points {
                    write_point(out, "host7.cpu.user", value, timestamp);
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::short_runs();
    targets = parsing, encoding
}
criterion_main!(benches);
