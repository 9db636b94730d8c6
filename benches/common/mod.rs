//! Shared by the benchmark targets.

use criterion::Criterion;
use std::time::Duration;

/// Criterion with short runs: the machine is shared, and these figures
/// settle well within a few seconds.
pub fn short_runs() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}
