//! Buckets of time and the aggregate of each: what `range <key> <from> <to>
//! <step> <fn>` answers, computed from the points of the window as they
//! stream by, one bucket at a time, with no buffer.
//!
//! A bucket holds the timestamps `t` with the same `t - t.rem_euclid(step)`,
//! its *start*: a multiple of `step`, so buckets line up across series and
//! requests whatever the window. The first bucket of a window may start
//! before the window does; only the window's points are in it.

use crate::protocol::Agg;

/// One non-empty bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// The bucket's start, the row's timestamp. The one bucket that starts
    /// below `i64::MIN` (it holds `i64::MIN`) is labelled `i64::MIN`.
    pub start: i64,
    /// The bucket's last second (at most `i64::MAX`): a sliced answer goes
    /// on after it.
    pub end: i64,
    pub value: f64,
}

/// The first and last second of the bucket of `timestamp`, without
/// overflow for any timestamp and any `step > 0`.
pub fn bounds(timestamp: i64, step: i64) -> (i64, i64) {
    debug_assert!(step > 0);
    let offset = timestamp.rem_euclid(step);
    // offset < step, so step - 1 - offset >= 0 and only the far edges of
    // the i64 range can be passed; they are where the timestamps end.
    (
        timestamp.saturating_sub(offset),
        timestamp.saturating_add(step - 1 - offset),
    )
}

/// The buckets of `points` (ascending by timestamp), in order.
pub fn buckets<I: Iterator<Item = (i64, f64)>>(points: I, step: i64, agg: Agg) -> Buckets<I> {
    Buckets {
        points: points.peekable(),
        step,
        agg,
    }
}

/// The iterator of [`buckets`].
pub struct Buckets<I: Iterator<Item = (i64, f64)>> {
    points: std::iter::Peekable<I>,
    step: i64,
    agg: Agg,
}

impl<I: Iterator<Item = (i64, f64)>> Iterator for Buckets<I> {
    type Item = Bucket;

    fn next(&mut self) -> Option<Bucket> {
        let (timestamp, value) = self.points.next()?;
        let (start, end) = bounds(timestamp, self.step);
        let mut acc = Accumulator::new(value);
        while let Some((_, value)) = self.points.next_if(|&(t, _)| t <= end) {
            acc.add(value, self.agg);
        }
        Some(Bucket {
            start,
            end,
            value: acc.value(self.agg),
        })
    }
}

/// A bucket's figures so far.
struct Accumulator {
    count: u64,
    /// The sum in timestamp order; may pass the f64 range (then ±inf,
    /// never NaN: the values are finite, and inf plus a finite value stays).
    sum: f64,
    /// The running mean (avg only), which stays finite where `sum` does
    /// not.
    mean: f64,
    min: f64,
    max: f64,
    last: f64,
}

impl Accumulator {
    fn new(value: f64) -> Accumulator {
        Accumulator {
            count: 1,
            sum: value,
            mean: value,
            min: value,
            max: value,
            last: value,
        }
    }

    #[inline]
    fn add(&mut self, value: f64, agg: Agg) {
        self.count += 1;
        self.sum += value;
        // Ties keep the earliest value (0.0 and -0.0 are equal).
        if value < self.min {
            self.min = value;
        }
        if value > self.max {
            self.max = value;
        }
        self.last = value;
        if agg == Agg::Avg {
            // mean * (n-1)/n + value/n: each term is at most the largest
            // magnitude seen, so this never overflows (mean + (value -
            // mean)/n would, for values of opposite signs near f64::MAX).
            let n = self.count as f64;
            self.mean = self.mean - self.mean / n + value / n;
        }
    }

    fn value(&self, agg: Agg) -> f64 {
        match agg {
            // The exact quotient when the sum fits in an f64 (almost
            // always); the running mean when it does not.
            Agg::Avg if self.sum.is_finite() => self.sum / self.count as f64,
            Agg::Avg => self.mean,
            Agg::Min => self.min,
            Agg::Max => self.max,
            // A sum past the f64 range is written as the largest finite
            // value of its sign: every value on the wire is finite.
            Agg::Sum => self.sum.clamp(-f64::MAX, f64::MAX),
            // Exact up to 2^53 points in one bucket.
            Agg::Count => self.count as f64,
            Agg::Last => self.last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(points: &[(i64, f64)], step: i64, agg: Agg) -> Vec<(i64, f64)> {
        buckets(points.iter().copied(), step, agg)
            .map(|b| (b.start, b.value))
            .collect()
    }

    #[test]
    fn bucket_starts_are_multiples_of_the_step_below_or_at_the_timestamp() {
        assert_eq!(bounds(0, 60), (0, 59));
        assert_eq!(bounds(59, 60), (0, 59));
        assert_eq!(bounds(60, 60), (60, 119));
        assert_eq!(bounds(-1, 60), (-60, -1));
        assert_eq!(bounds(-60, 60), (-60, -1));
        assert_eq!(bounds(-61, 60), (-120, -61));
        assert_eq!(bounds(7, 1), (7, 7));
        // The edges of i64: the bucket of i64::MIN starts below it and is
        // labelled i64::MIN; the last bucket ends past i64::MAX.
        // (i64::MIN is 2 above a multiple of 10.)
        assert_eq!(bounds(i64::MIN, 10), (i64::MIN, i64::MIN + 7));
        assert_eq!(bounds(i64::MIN + 7, 10), (i64::MIN, i64::MIN + 7));
        assert_eq!(bounds(i64::MIN + 8, 10), (i64::MIN + 8, i64::MIN + 17));
        assert_eq!(bounds(i64::MAX, 10), (i64::MAX - 7, i64::MAX));
        assert_eq!(bounds(i64::MAX, i64::MAX), (i64::MAX, i64::MAX));
        assert_eq!(bounds(i64::MAX - 1, i64::MAX), (0, i64::MAX - 1));
        assert_eq!(bounds(i64::MIN, i64::MAX), (i64::MIN, i64::MIN));
        assert_eq!(bounds(-1, i64::MAX), (-i64::MAX, -1));
        assert_eq!(bounds(0, i64::MAX), (0, i64::MAX - 1));
    }

    #[test]
    fn each_function_over_two_buckets() {
        let points = [(0, 1.0), (10, 3.0), (59, 2.0), (120, -4.0), (150, 0.5)];
        let want = [
            (Agg::Avg, [2.0, -1.75]),
            (Agg::Min, [1.0, -4.0]),
            (Agg::Max, [3.0, 0.5]),
            (Agg::Sum, [6.0, -3.5]),
            (Agg::Count, [3.0, 2.0]),
            (Agg::Last, [2.0, 0.5]),
        ];
        for (agg, [a, b]) in want {
            // The empty bucket at 60 is left out.
            assert_eq!(rows(&points, 60, agg), [(0, a), (120, b)], "{agg:?}");
        }
        assert_eq!(rows(&[], 60, Agg::Count), []);
    }

    #[test]
    fn sums_beyond_the_f64_range_stay_finite() {
        let big = [(1, f64::MAX), (2, f64::MAX), (3, -f64::MAX)];
        assert_eq!(rows(&big, 10, Agg::Sum), [(0, f64::MAX)]);
        let low = [(1, -f64::MAX), (2, -f64::MAX)];
        assert_eq!(rows(&low, 10, Agg::Sum), [(0, -f64::MAX)]);
        // The average of values whose sum overflows.
        assert_eq!(rows(&[(1, f64::MAX), (2, f64::MAX)], 10, Agg::Avg), [(0, f64::MAX)]);
        let avg = rows(&big, 10, Agg::Avg)[0].1;
        assert!((avg - f64::MAX / 3.0).abs() <= f64::MAX * 1e-15, "{avg}");
        assert!(rows(&[(1, f64::MAX), (2, -f64::MAX)], 10, Agg::Avg)[0].1 == 0.0);
    }

    #[test]
    fn negative_zero_and_ties() {
        assert_eq!(rows(&[(0, -0.0)], 5, Agg::Sum)[0].1.to_bits(), (-0.0f64).to_bits());
        let zeros = [(0, 0.0), (1, -0.0)];
        assert_eq!(rows(&zeros, 5, Agg::Min)[0].1.to_bits(), 0.0f64.to_bits());
        assert_eq!(rows(&zeros, 5, Agg::Last)[0].1.to_bits(), (-0.0f64).to_bits());
    }
}
