//! A latency histogram with bounded relative error, in the manner of
//! HdrHistogram: fixed memory, O(1) recording, exact merging.
//!
//! Values (nanoseconds) below `2 * SUB_BUCKETS` each have a bucket of their
//! own. Above that, every range `[2^k, 2^(k+1))` is cut into `SUB_BUCKETS`
//! buckets of equal width `2^k / SUB_BUCKETS`. A bucket's width is thus at
//! most `1 / SUB_BUCKETS` of the smallest value it holds, and reporting its
//! highest value for any value in it errs by less than that fraction.

use std::time::Duration;

/// log2 of [`SUB_BUCKETS`].
const SUB_BITS: u32 = 7;
/// Buckets per power of two: 128 bounds the relative error of every
/// reported value below 1/128 = 0.79%, inside the 1% the tool promises.
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Values from 2^MAX_BITS ns (about 18 minutes) up are recorded as the
/// largest value below it: no run the tool makes lasts that long, and the
/// cap keeps the histogram at 34 KiB.
const MAX_BITS: u32 = 40;
/// The largest value recorded as itself.
const MAX_VALUE: u64 = (1 << MAX_BITS) - 1;
/// One linear range of `2 * SUB_BUCKETS` unit buckets, then `SUB_BUCKETS`
/// per power of two from `2^(SUB_BITS + 1)` up to `2^MAX_BITS`.
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) << SUB_BITS;

/// Counts of values by bucket, with the exact count, maximum and sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max: 0,
            sum: 0,
        }
    }
}

/// The bucket that holds `value` (already capped at [`MAX_VALUE`]).
fn index_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    // Shift so that the value keeps SUB_BITS + 1 significant bits; the top
    // one is always set, so `sub` is in SUB_BUCKETS..2 * SUB_BUCKETS.
    let shift = (u64::BITS - 1 - value.leading_zeros()) - SUB_BITS;
    let sub = value >> shift;
    (u64::from(shift) * SUB_BUCKETS + sub) as usize
}

/// The lowest and highest value that land in bucket `index`.
fn bounds_of(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < 2 * SUB_BUCKETS {
        return (index, index);
    }
    let shift = index / SUB_BUCKETS - 1;
    let sub = index % SUB_BUCKETS + SUB_BUCKETS;
    (sub << shift, ((sub + 1) << shift) - 1)
}

impl Histogram {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one value, in nanoseconds.
    #[inline]
    pub fn record(&mut self, value: u64) {
        let value = value.min(MAX_VALUE);
        self.counts[index_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
        self.sum += u128::from(value);
    }

    /// Records one duration (saturating at [`MAX_VALUE`] nanoseconds).
    #[inline]
    pub fn record_duration(&mut self, d: Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Adds every value recorded in `other`.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    /// The largest value recorded, exactly (0 when empty).
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The mean of the values recorded (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value below or at which `percent` % of the values lie (0 when
    /// empty): the highest value of the bucket holding that rank, so at or
    /// above the true value and less than 1/128 above it; never above the
    /// maximum, so the 100th percentile is the exact maximum.
    pub fn percentile(&self, percent: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((percent.clamp(0.0, 100.0) / 100.0 * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bounds_of(index).1.min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_have_buckets_of_their_own() {
        for v in 0..2 * SUB_BUCKETS {
            assert_eq!(index_of(v), v as usize);
            assert_eq!(bounds_of(v as usize), (v, v));
        }
    }

    #[test]
    fn exact_bucket_bounds() {
        // The first bucket of width 2: values 256 and 257.
        assert_eq!(index_of(256), 256);
        assert_eq!(index_of(257), 256);
        assert_eq!(index_of(258), 257);
        assert_eq!(bounds_of(256), (256, 257));
        assert_eq!(bounds_of(383), (510, 511));
        // Width 4 from 512 on.
        assert_eq!(index_of(511), 383);
        assert_eq!(index_of(512), 384);
        assert_eq!(bounds_of(384), (512, 515));
        // One million nanoseconds: 2^19 <= 1e6 < 2^20, width 2^(19-7) = 4096.
        let i = index_of(1_000_000);
        assert_eq!(bounds_of(i), (999_424, 1_003_519));
        // The last bucket ends at the cap.
        assert_eq!(index_of(MAX_VALUE), BUCKETS - 1);
        assert_eq!(bounds_of(BUCKETS - 1).1, MAX_VALUE);
    }

    #[test]
    fn buckets_tile_the_range_with_bounded_width() {
        let mut expected_low = 0;
        for i in 0..BUCKETS {
            let (low, high) = bounds_of(i);
            assert_eq!(low, expected_low, "bucket {i} starts where the last one ended");
            assert_eq!(index_of(low), i);
            assert_eq!(index_of(high), i);
            assert!(
                ((high - low) as f64) < low.max(1) as f64 / SUB_BUCKETS as f64,
                "bucket {i}"
            );
            expected_low = high + 1;
        }
        assert_eq!(expected_low, MAX_VALUE + 1);
    }

    #[test]
    fn percentiles_of_known_data() {
        let mut h = Histogram::new();
        assert_eq!((h.percentile(50.0), h.max(), h.mean()), (0, 0, 0.0));
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        assert_eq!(h.total, 10_000);
        assert_eq!(h.max(), 10_000_000);
        assert_eq!(h.mean(), 5_000_500.0);
        for (p, exact) in [
            (50.0, 5_000_000u64),
            (90.0, 9_000_000),
            (99.0, 9_900_000),
            (99.9, 9_990_000),
        ] {
            let got = h.percentile(p);
            assert!(
                got >= exact && (got - exact) as f64 <= exact as f64 / 128.0,
                "p{p}: {got} vs {exact}"
            );
        }
        assert_eq!(h.percentile(100.0), 10_000_000);
        assert_eq!(h.percentile(0.0), bounds_of(index_of(1000)).1);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in [5, 1, 3, 3, 200] {
            h.record(v);
        }
        assert_eq!(h.percentile(20.0), 1);
        assert_eq!(h.percentile(50.0), 3);
        assert_eq!(h.percentile(60.0), 3);
        assert_eq!(h.percentile(80.0), 5);
        assert_eq!(h.percentile(100.0), 200);
    }

    #[test]
    fn huge_values_are_capped() {
        let mut h = Histogram::new();
        h.record_duration(Duration::from_secs(100_000));
        h.record(u64::MAX);
        assert_eq!(h.max(), MAX_VALUE);
        assert_eq!(h.percentile(50.0), MAX_VALUE);
    }

    #[test]
    fn merge_equals_recording_everything_in_one() {
        let (mut a, mut b, mut both) = (Histogram::new(), Histogram::new(), Histogram::new());
        for v in 0..5000u64 {
            let value = v * v * 37 % 10_000_000;
            if v % 3 == 0 {
                a.record(value);
            } else {
                b.record(value);
            }
            both.record(value);
        }
        a.merge(&b);
        assert_eq!(a, both);
        // Merging an empty histogram changes nothing.
        a.merge(&Histogram::new());
        assert_eq!(a, both);
        let mut empty = Histogram::new();
        empty.merge(&both);
        assert_eq!(empty, both);
    }
}
