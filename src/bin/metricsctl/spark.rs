//! Sparklines: a series' shape in one line of block characters.

/// The eight bar heights, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The bar of a flat line (one value, or all values equal): half height,
/// since there is no low or high to show.
const FLAT: char = BARS[3];

/// The most columns a sparkline takes: with a short key and its figures
/// beside it, the header line still fits a terminal of about 100 columns.
pub const MAX_WIDTH: usize = 60;

/// The sparkline of `values`, at most `width` characters long (`width` is at
/// least 1). A longer series is cut into `width` buckets of consecutive
/// values (their sizes differ by at most one) and each bucket is drawn as
/// its mean. Bars span the lowest to the highest of the drawn values, so
/// negative values need no special case. Empty input gives an empty line.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let columns = bucket_means(values, width.max(1));
    let (low, high) = columns.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    });
    // Halved so that the span of values near ±f64::MAX stays finite.
    let span = high / 2.0 - low / 2.0;
    columns
        .iter()
        .map(|&v| {
            if span > 0.0 {
                let level = (v / 2.0 - low / 2.0) / span * (BARS.len() - 1) as f64;
                // `level` is within 0..=7 by construction; the cast rounds it
                // to the nearest bar.
                BARS[(level.round() as usize).min(BARS.len() - 1)]
            } else {
                FLAT
            }
        })
        .collect()
}

/// The means of `columns` consecutive, nearly equal slices of `values`
/// (`values` itself when it is no longer than `columns`).
fn bucket_means(values: &[f64], columns: usize) -> Vec<f64> {
    if values.len() <= columns {
        return values.to_vec();
    }
    (0..columns)
        .map(|i| {
            let bucket = &values[i * values.len() / columns..(i + 1) * values.len() / columns];
            // Each term divided first: a sum of large values could
            // overflow where their mean cannot.
            let n = bucket.len() as f64;
            bucket.iter().map(|v| v / n).sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rising_series_uses_every_bar() {
        let values: Vec<f64> = (0..8).map(f64::from).collect();
        assert_eq!(sparkline(&values, MAX_WIDTH), "▁▂▃▄▅▆▇█");
    }

    #[test]
    fn bars_span_the_lowest_to_the_highest_value() {
        assert_eq!(sparkline(&[2.0, 0.5, 0.5], MAX_WIDTH), "█▁▁");
        assert_eq!(sparkline(&[-10.0, -5.0, 0.0, -5.0], MAX_WIDTH), "▁▅█▅");
        assert_eq!(sparkline(&[-1e300, 1e300], MAX_WIDTH), "▁█");
        assert_eq!(sparkline(&[-f64::MAX, 0.0, f64::MAX], MAX_WIDTH), "▁▅█");
    }

    #[test]
    fn one_point_and_equal_values_are_a_flat_line() {
        assert_eq!(sparkline(&[42.0], MAX_WIDTH), "▄");
        assert_eq!(sparkline(&[-3.0; 5], MAX_WIDTH), "▄▄▄▄▄");
        assert_eq!(sparkline(&[0.0, -0.0], MAX_WIDTH), "▄▄");
        assert_eq!(sparkline(&[], MAX_WIDTH), "");
    }

    #[test]
    fn long_series_are_averaged_into_buckets() {
        // 6000 values, 100 per bucket: 0..100 averages 49.5, and so on.
        let values: Vec<f64> = (0..6000).map(f64::from).collect();
        let line = sparkline(&values, MAX_WIDTH);
        assert_eq!(line.chars().count(), MAX_WIDTH);
        assert!(line.starts_with('▁') && line.ends_with('█'), "{line}");
        // A square wave of period 2 averages to a flat line.
        let square: Vec<f64> = (0..1000).map(|i| f64::from(i % 2)).collect();
        assert_eq!(sparkline(&square, 10), "▄".repeat(10));
        // Uneven buckets: 7 values into 3 columns take 2, 2 and 3.
        assert_eq!(bucket_means(&[0.0, 2.0, 4.0, 6.0, 9.0, 9.0, 9.0], 3), [1.0, 5.0, 9.0]);
        // Means of huge values do not overflow.
        assert_eq!(bucket_means(&[f64::MAX; 4], 2), [f64::MAX, f64::MAX]);
    }

    #[test]
    fn a_series_just_over_the_width_keeps_its_shape() {
        let mut values = vec![0.0; 61];
        values[60] = 1.0;
        let line = sparkline(&values, MAX_WIDTH);
        assert_eq!(line.chars().count(), MAX_WIDTH);
        assert!(line.ends_with('█') && line.starts_with('▁'), "{line}");
    }
}
