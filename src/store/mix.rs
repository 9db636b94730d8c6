//! A realistic mix of metric series, deterministic from a seed: what the
//! chunk codec is measured on, and a load generator's workload.
//!
//! The shapes and their shares are those of issue 13 (what a host agent
//! such as node_exporter or collectd sends): a quarter counters (monotonic
//! integers with varying increments and occasional resets), a fifth integer
//! gauges (counts, and byte sizes in whole pages), a quarter gauges with one
//! or two decimals (percentages, load averages, temperatures), some constant
//! flags, and 15% full-precision floats (rates over measured intervals,
//! ratios, timer means). Points come every 10 s at a fixed per-host phase,
//! now and then a second early or late, with occasional gaps.
//!
//! ```
//! use metricsd::store::mix::{Mix, Shape};
//! let mix = Mix { seed: 7, start: 1_700_000_000 };
//! let points: Vec<(i64, f64)> = mix.series(3, 0).take(120).collect();
//! assert_eq!(mix.shape(0), Shape::Counter);
//! assert!(points.windows(2).all(|w| w[0].0 < w[1].0));
//! ```

/// The interval between a series' points, in seconds.
pub const INTERVAL: i64 = 10;

/// Chance in 1000 that a point arrives a second early or late (each):
/// collectors on a loaded host drift by a second now and then.
const JITTER_PER_MILLE: u64 = 20;
/// Chance in 1000 that a gap starts at a point (an agent restart, a network
/// blip), and the longest gap in intervals (five minutes).
const GAP_PER_MILLE: u64 = 3;
const MAX_GAP: u64 = 30;
/// Chance in 1000 that a counter resets to zero (a process restart).
const RESET_PER_MILLE: u64 = 1;

/// The kind of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    Counter,
    IntGauge,
    DecimalGauge,
    Flag,
    Float,
}

impl Shape {
    pub const ALL: [Shape; 5] = [
        Shape::Counter,
        Shape::IntGauge,
        Shape::DecimalGauge,
        Shape::Flag,
        Shape::Float,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Counter => "counter",
            Shape::IntGauge => "int_gauge",
            Shape::DecimalGauge => "decimal_gauge",
            Shape::Flag => "flag",
            Shape::Float => "float",
        }
    }
}

/// Shapes of metrics 0..20 of a host, repeating: 5 counters, 4 integer
/// gauges, 5 decimal gauges, 3 flags, 3 floats (25/20/25/15/15 %).
const SHAPE_CYCLE: [Shape; 20] = {
    use Shape::*;
    [
        Counter,
        IntGauge,
        DecimalGauge,
        Counter,
        Float,
        DecimalGauge,
        IntGauge,
        Flag,
        Counter,
        DecimalGauge,
        IntGauge,
        Float,
        Counter,
        Flag,
        DecimalGauge,
        IntGauge,
        Counter,
        DecimalGauge,
        Flag,
        Float,
    ]
};

/// The mix: every (host, metric) pair names one series.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    pub seed: u64,
    /// The first scheduled timestamp (before the host's phase).
    pub start: i64,
}

impl Mix {
    /// The shape of metric number `metric` (the same on every host).
    pub fn shape(&self, metric: u64) -> Shape {
        SHAPE_CYCLE[(metric % SHAPE_CYCLE.len() as u64) as usize]
    }

    /// The key of a series, e.g. `host3.counter8`.
    pub fn key(&self, host: u64, metric: u64) -> String {
        format!("host{host}.{}{metric}", self.shape(metric).name())
    }

    /// The points of one series, endless.
    pub fn series(&self, host: u64, metric: u64) -> Series {
        let phase = (splitmix(self.seed ^ splitmix(host)) % INTERVAL as u64) as i64;
        let mut rng = Rng::new(splitmix(self.seed ^ splitmix(host ^ splitmix(metric.wrapping_add(1)))));
        let value = Value::new(self.shape(metric), &mut rng);
        Series {
            rng,
            next: self.start + phase,
            value,
        }
    }
}

/// A series of the mix: an iterator of points, ascending, endless.
pub struct Series {
    rng: Rng,
    /// The next scheduled (unjittered) timestamp.
    next: i64,
    value: Value,
}

impl Iterator for Series {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if self.rng.per_mille(GAP_PER_MILLE) {
            for _ in 0..1 + self.rng.below(MAX_GAP) {
                // The source goes on changing while nobody hears it.
                self.value.step(&mut self.rng, INTERVAL);
                self.next += INTERVAL;
            }
        }
        let jitter = match self.rng.below(1000) {
            j if j < JITTER_PER_MILLE => -1,
            j if j < 2 * JITTER_PER_MILLE => 1,
            _ => 0,
        };
        let t = self.next + jitter;
        self.next += INTERVAL;
        Some((t, self.value.step(&mut self.rng, INTERVAL + jitter)))
    }
}

/// The state of a series' value, by shape and kind.
enum Value {
    /// A count of events at `rate` per second, each step adding between
    /// half and one and a half times its expectation.
    Counter { total: u64, rate: f64 },
    /// A count (processes, connections) that moves by a few now and then.
    Count(i64),
    /// A byte size in 4 KiB pages: memory, a file system's use.
    Bytes(i64),
    /// Noise around a level, with one decimal (CPU percent).
    Percent { level: f64, spread: f64 },
    /// An exponentially damped average of a run queue, two decimals.
    Load { load: f64, runnable: i64 },
    /// A slow walk, one decimal (a temperature).
    Temperature(i64),
    /// 0 or 1, flipping rarely (up, a RAID state).
    Flag(u8),
    /// Events counted over a measured interval (a rate per second).
    Rate { rate: f64 },
    /// A hit ratio from integer counts.
    Ratio { hit: f64 },
    /// A mean latency in seconds.
    TimerMean { level: f64 },
}

impl Value {
    fn new(shape: Shape, rng: &mut Rng) -> Value {
        let kind = rng.below(3);
        match shape {
            Shape::Counter => {
                // Log-uniform from 0.01 to 1000 events a second.
                let rate = 10f64.powf(-2.0 + 5.0 * rng.unit());
                Value::Counter {
                    total: (rate * 1e5 * rng.unit()) as u64,
                    rate,
                }
            }
            Shape::IntGauge if kind == 0 => Value::Bytes(((1 << 18) + rng.below(1 << 22) as i64) * 4096),
            Shape::IntGauge => Value::Count(rng.below(1000) as i64),
            Shape::DecimalGauge => match kind {
                0 => Value::Percent {
                    level: 100.0 * rng.unit(),
                    spread: 0.5 + 10.0 * rng.unit(),
                },
                1 => Value::Load {
                    load: 0.0,
                    runnable: rng.below(8) as i64,
                },
                _ => Value::Temperature(400 + rng.below(300) as i64),
            },
            Shape::Flag => Value::Flag(u8::from(rng.below(4) != 0)),
            Shape::Float => match kind {
                0 => Value::Rate {
                    rate: 10f64.powf(-1.0 + 4.0 * rng.unit()),
                },
                1 => Value::Ratio {
                    hit: 0.5 + 0.5 * rng.unit(),
                },
                _ => Value::TimerMean {
                    level: 0.001 + 0.5 * rng.unit(),
                },
            },
        }
    }

    /// Advances by `seconds` and returns the value to send.
    fn step(&mut self, rng: &mut Rng, seconds: i64) -> f64 {
        let seconds = seconds as f64;
        match self {
            Value::Counter { total, rate } => {
                if rng.per_mille(RESET_PER_MILLE) {
                    *total = 0;
                }
                *total += (*rate * seconds * (0.5 + rng.unit())) as u64;
                *total as f64
            }
            Value::Count(n) => {
                if rng.below(3) == 0 {
                    *n = (*n + rng.below(7) as i64 - 3).max(0);
                }
                *n as f64
            }
            Value::Bytes(b) => {
                *b = (*b + (rng.below(129) as i64 - 64) * 4096).max(0);
                *b as f64
            }
            Value::Percent { level, spread } => {
                let v = (*level + *spread * (rng.unit() - 0.5)).clamp(0.0, 100.0);
                decimal((v * 10.0).round() as i64, 10.0)
            }
            Value::Load { load, runnable } => {
                *runnable = (*runnable + rng.below(3) as i64 - 1).max(0);
                // Linux's one-minute load: decay e^(-5/60) per 5 s tick.
                let decay = (-seconds / 60.0).exp();
                *load = *load * decay + *runnable as f64 * (1.0 - decay);
                decimal((*load * 100.0).round() as i64, 100.0)
            }
            Value::Temperature(tenths) => {
                if rng.below(2) == 0 {
                    *tenths += rng.below(5) as i64 - 2;
                }
                decimal(*tenths, 10.0)
            }
            Value::Flag(f) => {
                if rng.below(10_000) == 0 {
                    *f ^= 1;
                }
                f64::from(*f)
            }
            Value::Rate { rate } => {
                let events = (*rate * seconds * (0.5 + rng.unit())) as u64;
                // The interval as measured, to the millisecond.
                let elapsed = seconds + (rng.below(101) as f64 - 50.0) / 1000.0;
                events as f64 / elapsed
            }
            Value::Ratio { hit } => {
                let total = 100 + rng.below(10_000);
                let hits = (total as f64 * (*hit + 0.05 * (rng.unit() - 0.5)).min(1.0)) as u64;
                hits as f64 / total as f64
            }
            Value::TimerMean { level } => {
                let count = 1 + rng.below(500);
                let sum: f64 = *level * count as f64 * (0.8 + 0.4 * rng.unit());
                sum / count as f64
            }
        }
    }
}

/// The f64 a client sends for the decimal text of `m / scale` (the division
/// is correctly rounded, as parsing the text is).
fn decimal(m: i64, scale: f64) -> f64 {
    m as f64 / scale
}

/// SplitMix64's finalizer: a well-mixed hash of a seed.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xorshift64*: small, fast and plenty for a workload.
struct Rng(u64);

impl Rng {
    /// A generator from any seed (xorshift needs a nonzero state).
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in [0, 1), 53 bits.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn per_mille(&mut self, chance: u64) -> bool {
        self.below(1000) < chance
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::chunk::Chunk;
    use std::collections::BTreeMap;

    /// Points a series gets in the measurement: six hours, which is whole
    /// chunks of 60, 120, 240, 360 and 720 points, so no partial chunk
    /// flatters or penalises a size.
    const POINTS: usize = 2160;

    /// Encoded bytes and points, per shape, of the mix's first `hosts` hosts
    /// × 20 metrics, sealed in chunks of `chunk_points`.
    fn encoded(hosts: u64, chunk_points: usize) -> BTreeMap<Shape, (usize, usize)> {
        let mix = Mix {
            seed: 1,
            start: 1_700_000_000,
        };
        let mut sizes: BTreeMap<Shape, (usize, usize)> = BTreeMap::new();
        for host in 0..hosts {
            for metric in 0..SHAPE_CYCLE.len() as u64 {
                let points: Vec<(i64, f64)> = mix.series(host, metric).take(POINTS).collect();
                let entry = sizes.entry(mix.shape(metric)).or_default();
                for chunk in points.chunks(chunk_points) {
                    let sealed = Chunk::encode(chunk).expect("the mix's points ascend");
                    assert_eq!(sealed.decode().as_deref(), Ok(chunk), "{}", mix.key(host, metric));
                    entry.0 += sealed.bytes().len();
                    entry.1 += chunk.len();
                }
            }
        }
        sizes
    }

    /// The figure of issue 13: chunk bytes per point of the mix, per shape
    /// and overall (`cargo test --lib mix -- --nocapture` prints them). The
    /// bits alone, and with each chunk's bounds and count (the `Chunk`
    /// value).
    #[test]
    fn the_mix_takes_under_two_bytes_a_point() {
        let header = std::mem::size_of::<Chunk>();
        for chunk_points in [60, 120, 240, 720] {
            let sizes = encoded(10, chunk_points);
            let (bytes, points) = sizes.values().fold((0, 0), |a, s| (a.0 + s.0, a.1 + s.1));
            let chunks = points.div_ceil(chunk_points) as f64;
            let per_point = bytes as f64 / points as f64;
            let with_header = (bytes as f64 + chunks * header as f64) / points as f64;
            println!("chunks of {chunk_points}: {per_point:.3} B/point, {with_header:.3} with {header}-byte headers");
            for (shape, (bytes, points)) in &sizes {
                println!("  {:<14} {:.3}", shape.name(), *bytes as f64 / *points as f64);
            }
            if chunk_points == 120 {
                assert!(per_point < 2.0, "{per_point} B/point");
                let flags = sizes[&Shape::Flag];
                // The timestamps' jitter and gaps, mostly: the values are free.
                assert!(flags.0 * 10 < flags.1 * 3, "a flag costs under 0.3 bytes");
            }
        }
    }

    #[test]
    fn shares_of_the_shapes() {
        let count = |s: Shape| SHAPE_CYCLE.iter().filter(|&&c| c == s).count();
        assert_eq!(Shape::ALL.map(count), [5, 4, 5, 3, 3]);
    }

    #[test]
    fn series_are_deterministic_ascending_and_on_their_hosts_phase() {
        let mix = Mix { seed: 9, start: 1000 };
        for host in 0..5 {
            let phase: Vec<i64> = (0..20).map(|m| mix.series(host, m).next().unwrap().0).collect();
            for metric in 0..20 {
                let a: Vec<(i64, f64)> = mix.series(host, metric).take(3000).collect();
                let b: Vec<(i64, f64)> = mix.series(host, metric).take(3000).collect();
                assert_eq!(a, b);
                assert!(a.windows(2).all(|w| w[0].0 < w[1].0));
                // On the host's schedule, give or take the jitter.
                assert!(a
                    .iter()
                    .all(|&(t, _)| (t - 1000 - phase[0] + 1).rem_euclid(INTERVAL) <= 2));
                let gaps = a.windows(2).filter(|w| w[1].0 - w[0].0 > INTERVAL + 2).count();
                assert!((1..30).contains(&gaps), "{gaps} gaps");
            }
            assert!(phase.iter().all(|&t| (t - phase[0]).abs() <= 2));
        }
    }
}
