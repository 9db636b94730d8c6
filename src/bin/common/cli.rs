//! Checks of command-line values that metricsd, metricsctl and
//! metricsd-bench share. Each binary includes this file with `#[path]`
//! (it is not a binary itself: Cargo looks for `main.rs` in a directory).

use std::time::Duration;

/// The most seconds a flag takes: about 31 years, beyond any timeout or
/// run, and small enough that `Instant::now() + d` cannot overflow (it
/// panics on durations near `u64::MAX` seconds).
const MAX_SECONDS: f64 = 1e9;

/// A positive number of seconds, fractions allowed (`0.5`), that is not
/// zero once made a `Duration` and at most [`MAX_SECONDS`].
pub fn seconds(flag: &str, value: f64) -> Result<Duration, lexopt::Error> {
    if value > MAX_SECONDS {
        return Err(format!("{flag} must be at most {MAX_SECONDS} seconds, not {value}").into());
    }
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{flag} must be a positive number of seconds, not {value}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_positive_and_bounded() {
        assert_eq!(seconds("--t", 0.5).unwrap(), Duration::from_millis(500));
        assert_eq!(seconds("--t", 1e9).unwrap(), Duration::from_secs(1_000_000_000));
        for bad in [0.0, -1.0, 1e-10, f64::NAN, f64::NEG_INFINITY] {
            let message = seconds("--t", bad).unwrap_err().to_string();
            assert_eq!(message, format!("--t must be a positive number of seconds, not {bad}"));
        }
        for big in [1e9 + 1.0, 1e19, f64::MAX, f64::INFINITY] {
            let message = seconds("--t", big).unwrap_err().to_string();
            assert_eq!(message, format!("--t must be at most 1000000000 seconds, not {big}"));
        }
    }
}
