//! Warnings that a busy or attacked server could repeat thousands of times a
//! second are logged at most once per interval, with a count of the repeats
//! held back, so the log stays readable and cheap. The count is logged with
//! the next warning of the kind, or by [`RateLimitedWarning::flush`], which
//! the event loop calls about once a second, so a burst that stops is still
//! reported.

use std::time::{Duration, Instant};

/// Repeated warnings of one kind are logged at most this often: a human
/// reading the log sees that it goes on, and how much, at once a second.
const WARN_INTERVAL: Duration = Duration::from_secs(1);

/// A warning that is logged at most once per [`WARN_INTERVAL`], with a count
/// of the repeats it held back.
#[derive(Default)]
pub struct RateLimitedWarning {
    last: Option<Instant>,
    suppressed: u64,
    /// The text of the first warning held back since the last line, for
    /// the line [`RateLimitedWarning::flush`] writes (formatted once per
    /// interval, not for every repeat).
    first_suppressed: String,
}

impl RateLimitedWarning {
    pub fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        if let Some(line) = self.warn_at(Instant::now(), message) {
            log::warn!("{line}");
        }
    }

    /// Logs the count of the warnings held back, if some were and the
    /// interval since the last line has passed.
    pub fn flush(&mut self) {
        if let Some(line) = self.flush_at(Instant::now()) {
            log::warn!("{line}");
        }
    }

    /// The line to log for a warning at `now`, if any.
    fn warn_at(&mut self, now: Instant, message: std::fmt::Arguments<'_>) -> Option<String> {
        if self.last.is_some_and(|last| now.duration_since(last) < WARN_INTERVAL) {
            if self.suppressed == 0 {
                self.first_suppressed = message.to_string();
            }
            self.suppressed += 1;
            return None;
        }
        let line = match self.suppressed {
            0 => message.to_string(),
            n => format!("{message} ({n} similar warnings suppressed)"),
        };
        self.logged(now);
        Some(line)
    }

    /// The line to log for the warnings held back, at `now`, if it is time.
    fn flush_at(&mut self, now: Instant) -> Option<String> {
        let due = self.last.is_none_or(|last| now.duration_since(last) >= WARN_INTERVAL);
        if self.suppressed == 0 || !due {
            return None;
        }
        let line = format!(
            "{} similar warnings suppressed; the first: {}",
            self.suppressed, self.first_suppressed
        );
        self.logged(now);
        Some(line)
    }

    fn logged(&mut self, now: Instant) {
        self.last = Some(now);
        self.suppressed = 0;
        self.first_suppressed = String::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_counted_and_flushed_on_the_timer_once_the_interval_passed() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut warning = RateLimitedWarning::default();
        // Nothing held back: the timer logs nothing.
        assert_eq!(warning.flush_at(at(0)), None);
        assert_eq!(warning.warn_at(at(0), format_args!("bad 0")).as_deref(), Some("bad 0"));
        for i in 1..=5 {
            assert_eq!(warning.warn_at(at(100 * i), format_args!("bad {i}")), None);
        }
        // Within the interval of the last line, the count waits.
        assert_eq!(warning.flush_at(at(999)), None);
        assert_eq!(
            warning.flush_at(at(1000)).as_deref(),
            Some("5 similar warnings suppressed; the first: bad 1")
        );
        // Flushed once; and the flush began a new interval.
        assert_eq!(warning.flush_at(at(5000)), None);
        assert_eq!(warning.warn_at(at(1500), format_args!("bad 6")), None);
        assert_eq!(
            warning.warn_at(at(2000), format_args!("bad 7")).as_deref(),
            Some("bad 7 (1 similar warnings suppressed)")
        );
        assert_eq!(warning.flush_at(at(9000)), None);
    }
}
