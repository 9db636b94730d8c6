//! Warnings that a busy or attacked server could repeat thousands of times a
//! second are logged at most once per interval, with a count of the repeats
//! held back, so the log stays readable and cheap.

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
}

impl RateLimitedWarning {
    pub fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|last| now.duration_since(last) < WARN_INTERVAL) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            log::warn!("{message} ({} similar warnings suppressed)", self.suppressed);
        } else {
            log::warn!("{message}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}
