//! The store's points as graphite-web's functions want them: each series on
//! a fixed step grid of its own, `None` where no point is.
//!
//! metricsd keeps no retention schema, so a series' step is inferred from
//! its points: the most common gap between consecutive points (the
//! smallest of equally common ones), over at most [`STEP_SAMPLE`] points of
//! the window, or of the series' start when the window has fewer than two.
//! A series of one point has the step [`DEFAULT_STEP`]. The grid is
//! whisper's: the first slot is the first multiple of the step after
//! `from`, the last the first multiple at or after `until`; a point goes
//! to the slot its timestamp rounds down to, and of several points in one
//! slot the latest wins (as in a whisper file, where a later write to the
//! slot replaces the earlier).
//!
//! Points older than the engine's horizon (`--retention`) are expired:
//! never fetched, nor looked at for the step, and a series with no other
//! point is not found, as `get` would not list it.

use crate::engine::Engine;
use crate::graphite::path::PathPattern;
use crate::graphite::render::Consolidation;
use crate::graphite::series::Series;
use crate::store;
use std::collections::HashMap;

/// Points looked at to infer a step: enough to see the regular interval
/// through a few missing or doubled points, few enough to cost nothing
/// next to the answer.
pub const STEP_SAMPLE: usize = 1024;
/// The step of a series with a single point: 60 s, carbon's default
/// retention (`60s:1d`) and the most common agent interval.
pub const DEFAULT_STEP: i64 = 60;
/// The most grid slots (values, present or missing) one `/render` request
/// may fetch over all its targets: 2 million slots are 32 MB while the
/// request is evaluated, and cover 100 series of a day at 5 s, or a year
/// of 1-minute points for 3 series. More: a 400 that says to narrow the
/// range.
pub const MAX_FETCH_SLOTS: usize = 2_000_000;

/// Fetches for one request, counting the slots it has made.
pub struct Fetcher<'e> {
    engine: &'e Engine,
    slots: usize,
    mode: Mode,
    /// The steps inferred while planning, by key, so that fetching does
    /// not infer them again.
    steps: HashMap<String, i64>,
}

/// What a fetch makes of a series' points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Every slot of the grid.
    Grid,
    /// No values at all: the grid's start, end and step only, to learn the
    /// range `maxDataPoints` measures against before any point is read.
    Plan,
    /// The grid consolidated for `maxDataPoints` as it is filled, for this
    /// range and maximum: only the consolidated values are ever held.
    Consolidated { range: (i64, i64), max: usize },
}

impl<'e> Fetcher<'e> {
    pub fn new(engine: &'e Engine) -> Self {
        Fetcher {
            engine,
            slots: 0,
            mode: Mode::Grid,
            steps: HashMap::new(),
        }
    }

    /// Fetches only the shape of series (no values) from now on.
    pub fn plan(&mut self) {
        self.mode = Mode::Plan;
    }

    /// Fetches series consolidated as `maxDataPoints` (`max`) would for
    /// `range` from now on; the slot count starts again.
    pub fn consolidate(&mut self, range: (i64, i64), max: usize) {
        self.mode = Mode::Consolidated { range, max };
        self.slots = 0;
    }

    /// The series `path` names between `from` and `until`, in key order.
    pub fn fetch(&mut self, path: &str, from: i64, until: i64) -> Result<Vec<Series>, String> {
        let pattern = PathPattern::parse(path).map_err(|e| e.to_string())?;
        let mut found = Vec::new();
        match pattern.exact_key() {
            Some(key) => {
                let horizon = self.engine.horizon();
                if let Some(series) = (self.engine.series(&key)).filter(|s| unexpired(s, horizon).next().is_some()) {
                    found.push(self.on_grid(&key, path, series, from, until)?);
                }
            }
            None => {
                let (engine, horizon) = (self.engine, self.engine.horizon());
                let found_series = (engine.series_from(None))
                    .filter(|(key, series)| pattern.matches(key) && unexpired(series, horizon).next().is_some());
                for (key, series) in found_series {
                    found.push(self.on_grid(key, path, series, from, until)?);
                }
            }
        }
        Ok(found)
    }

    fn on_grid(
        &mut self,
        key: &str,
        path: &str,
        series: &store::Series,
        from: i64,
        until: i64,
    ) -> Result<Series, String> {
        let horizon = self.engine.horizon();
        let step = match self.steps.get(key) {
            Some(&step) => step,
            None => infer_step(series, from.max(horizon), until, unexpired(series, horizon)),
        };
        let start = from.saturating_sub(from.rem_euclid(step)).saturating_add(step);
        let end = until.saturating_sub(until.rem_euclid(step)).saturating_add(step);
        let slots = usize::try_from(end.saturating_sub(start) / step).unwrap_or(0);
        self.slots = self.slots.saturating_add(slots);
        if self.slots > MAX_FETCH_SLOTS {
            return Err(format!(
                "more than {MAX_FETCH_SLOTS} points to fetch: ask for a shorter range or fewer series"
            ));
        }
        let points = || series.range(start.max(horizon), end - 1);
        let consolidation = match self.mode {
            Mode::Grid => None,
            Mode::Plan => {
                self.steps.insert(key.to_string(), step);
                let mut planned = Series::fetched(key, path, start, step, Vec::new());
                planned.end = start + step * slots as i64;
                return Ok(planned);
            }
            Mode::Consolidated { range, max } => Consolidation::of(start, step, slots, range, max),
        };
        let mut fetched = match consolidation {
            Some(c) if slots > 0 => {
                let values = consolidated(points(), start, step, slots, c);
                let mut fetched = Series::fetched(key, path, c.start, step * c.per_point as i64, values);
                fetched.end = start + step * slots as i64;
                return Ok(fetched);
            }
            _ => Series::fetched(key, path, start, step, vec![None; slots]),
        };
        if slots > 0 {
            // Internal iteration (`for_each`, not a `for` loop): the range's
            // chain of chunk iterators is then walked chunk by chunk instead
            // of re-entering every adapter for each point, which took a
            // quarter of the fetch (47 of 193 million instructions for a
            // day of 100 series, callgrind).
            let (values, mut slots) = (&mut fetched.values, Slots::new(start, step));
            points().for_each(|(timestamp, value)| values[slots.of(timestamp)] = Some(value));
        }
        if let Some(c) = consolidation {
            fetched.start = c.start;
            fetched.consolidate_from(c.lose, c.per_point);
        }
        Ok(fetched)
    }
}

/// The values a grid of `slots` slots from `start`, `step` apart, would
/// hold after `c`, made from the points as they are read: the same values
/// as the grid consolidated ([`Series::consolidate_from`]), summed in the
/// same order, without the grid. As on the grid, of several points in one
/// slot the latest counts.
fn consolidated(
    points: impl Iterator<Item = store::Point>,
    start: i64,
    step: i64,
    slots: usize,
    c: Consolidation,
) -> Vec<Option<f64>> {
    let groups = (slots - c.lose).div_ceil(c.per_point);
    // Sum and count of each group's values.
    let mut sums = vec![(0.0, 0u32); groups];
    // The value of the slot read last, added to its group once the next
    // slot begins (a later point in the same slot replaces it).
    let mut pending: Option<(usize, f64)> = None;
    // Groups of slots from `lose` on are a grid of slots too.
    let mut groups_of_slots = Slots::new(c.lose as i64, c.per_point as i64);
    let mut add = |(slot, value): (usize, f64)| {
        let group = &mut sums[groups_of_slots.of(slot as i64)];
        group.0 += value;
        group.1 += 1;
    };
    let mut slots = Slots::new(start, step);
    points.for_each(|(timestamp, value)| {
        let slot = slots.of(timestamp);
        if slot < c.lose {
            return;
        }
        if let Some(last) = pending.filter(|p| p.0 != slot) {
            add(last);
        }
        pending = Some((slot, value));
    });
    if let Some(last) = pending {
        add(last);
    }
    sums.into_iter()
        .map(|(sum, count)| (count > 0).then(|| sum / f64::from(count)))
        .collect()
}

/// The grid slot of each point of a series, read in ascending order of
/// timestamp from the grid's `start` on: mostly the slot of the point
/// before or the next one, found without a division (the divisions were
/// about 14 % of the fetch loop's `perf` samples).
struct Slots {
    start: i64,
    step: i64,
    slot: usize,
    /// Where `slot` ends: `start + (slot + 1) × step`.
    slot_end: i64,
}

impl Slots {
    fn new(start: i64, step: i64) -> Slots {
        Slots {
            start,
            step,
            slot: 0,
            slot_end: start.saturating_add(step),
        }
    }

    #[inline]
    fn of(&mut self, timestamp: i64) -> usize {
        if timestamp >= self.slot_end {
            let next_end = self.slot_end.saturating_add(self.step);
            if timestamp < next_end {
                self.slot += 1;
                self.slot_end = next_end;
            } else {
                self.slot = ((timestamp - self.start) / self.step) as usize;
                self.slot_end = (self.start + self.slot as i64 * self.step).saturating_add(self.step);
            }
        }
        self.slot
    }
}

/// The points of `series` at or after `horizon` (not expired), ascending.
fn unexpired(series: &store::Series, horizon: i64) -> impl Iterator<Item = store::Point> + '_ {
    series.points_after(horizon.checked_sub(1))
}

/// The most common gap between consecutive points (see the module's text).
/// `from` is at or after the horizon, and `all` the points not expired.
fn infer_step(series: &store::Series, from: i64, until: i64, all: impl Iterator<Item = store::Point>) -> i64 {
    let mut gaps = gaps_of(series.range(from, until));
    if gaps.is_empty() {
        gaps = gaps_of(all);
    }
    gaps.sort_unstable();
    let mut best = (0, DEFAULT_STEP);
    for run in gaps.chunk_by(|a, b| a == b) {
        if run.len() > best.0 {
            best = (run.len(), run[0]);
        }
    }
    best.1
}

fn gaps_of(points: impl Iterator<Item = store::Point>) -> Vec<i64> {
    // Pushed by internal iteration (`for_each`), as the fetch reads: a
    // `collect` calls `next` for each point, through every adapter of the
    // range (17.8 of 252 million instructions of a Grafana render).
    let mut timestamps = Vec::with_capacity(STEP_SAMPLE);
    points.take(STEP_SAMPLE).for_each(|(t, _)| timestamps.push(t));
    timestamps
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|&gap| gap > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphite::render::{consolidate_to_max_data_points, max_data_points_range};
    use crate::store::Store;

    fn engine(points: &[(&str, i64, f64)]) -> Engine {
        let mut store = Store::new();
        for &(key, t, v) in points {
            store.put(key, t, v);
        }
        Engine::in_memory(store)
    }

    #[test]
    fn points_on_their_own_grid_with_gaps_as_none() {
        let engine = engine(&[
            ("a.x", 600, 1.0),
            ("a.x", 660, 2.0),
            ("a.x", 780, 4.0),
            ("a.y", 610, 9.0),
        ]);
        let mut fetcher = Fetcher::new(&engine);
        let found = fetcher.fetch("a.*", 599, 780).unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            (found[0].name.as_str(), found[0].start, found[0].step),
            ("a.x", 600, 60)
        );
        assert_eq!(found[0].values, vec![Some(1.0), Some(2.0), None, Some(4.0)]);
        // One point: the default step; 610 lands in the slot of 600.
        assert_eq!((found[1].start, found[1].step), (600, DEFAULT_STEP));
        assert_eq!(found[1].values, vec![Some(9.0), None, None, None]);
    }

    #[test]
    fn the_most_common_gap_is_the_step() {
        let engine = engine(&[
            ("k", 10, 1.0),
            ("k", 20, 1.0),
            ("k", 30, 1.0),
            ("k", 35, 1.0),
            ("k", 50, 1.0),
        ]);
        let found = Fetcher::new(&engine).fetch("k", 0, 50).unwrap();
        assert_eq!(found[0].step, 10);
        // 30 and 35 share a slot: the later one wins.
        assert_eq!(found[0].values, vec![Some(1.0), Some(1.0), Some(1.0), None, Some(1.0)]);
    }

    #[test]
    fn an_exact_path_and_a_missing_one() {
        let engine = engine(&[("k", 10, 1.0), ("k", 20, 2.0)]);
        let mut fetcher = Fetcher::new(&engine);
        assert_eq!(fetcher.fetch("k", 0, 20).unwrap()[0].values, vec![Some(1.0), Some(2.0)]);
        assert!(fetcher.fetch("nope", 0, 20).unwrap().is_empty());
        assert!(fetcher.fetch("{", 0, 20).unwrap().is_empty());
    }

    #[test]
    fn expired_points_are_not_fetched_and_a_series_of_only_them_is_not_found() {
        let policy = crate::store::Policy {
            retention: Some(std::time::Duration::from_secs(100)),
            ..Default::default()
        };
        // At 10,000 the horizon is 9,900.
        let mut store = Store::with_policy(policy, 10_000);
        for (key, t) in [
            ("a.x", 9_800),
            ("a.x", 9_890),
            ("a.x", 9_900),
            ("a.x", 9_960),
            ("a.old", 9_800),
        ] {
            store.put(key, t, t as f64);
        }
        let engine = Engine::in_memory(store);
        let mut fetcher = Fetcher::new(&engine);
        let found = fetcher.fetch("a.*", 9_700, 9_960).unwrap();
        assert_eq!(found.len(), 1, "a.old has only expired points");
        // The step comes from the points not expired (9,900 and 9,960).
        assert_eq!(
            (found[0].name.as_str(), found[0].start, found[0].step),
            ("a.x", 9_720, 60)
        );
        assert_eq!(found[0].values, vec![None, None, None, Some(9_900.0), Some(9_960.0)]);
        assert!(fetcher.fetch("a.old", 9_700, 9_960).unwrap().is_empty());
    }

    #[test]
    fn series_consolidated_as_they_are_read_equal_the_grid_consolidated() {
        // Series of different steps, with gaps, doubled slots, a series of
        // one point and one that starts late; every maxDataPoints from 1
        // to past the slots, over windows that cut the series anywhere.
        let mut random = crate::test_support::XorShift::seeded(14);
        let mut next = move |n: u64| random.below(n);
        let mut points = Vec::new();
        for (key, step, first) in [("a.x", 10, 1000), ("a.y", 60, 1000), ("a.z", 7, 1500)] {
            let mut t = first;
            while t < 3000 {
                if next(5) > 0 {
                    points.push((key, t, next(1000) as f64 / 8.0 - 40.0));
                }
                if next(7) == 0 {
                    points.push((key, t + step / 2, next(1000) as f64));
                }
                t += step;
            }
        }
        points.push(("a.one", 2000, 5.0));
        let engine = engine(&points);
        for (from, until) in [(990, 3000), (1003, 2998), (1500, 1900), (2500, 3100)] {
            for max in (0..40).chain([100, 250, 400]) {
                let mut grid = Fetcher::new(&engine).fetch("a.*", from, until).unwrap();
                consolidate_to_max_data_points(&mut grid, max);
                let mut fetcher = Fetcher::new(&engine);
                fetcher.plan();
                let planned = fetcher.fetch("a.*", from, until).unwrap();
                let shapes = planned
                    .iter()
                    .map(|s| (s.start, s.end, ((s.end - s.start) / s.step) as usize));
                let read = match max_data_points_range(shapes) {
                    Some(range) => {
                        fetcher.consolidate(range, max);
                        fetcher.fetch("a.*", from, until).unwrap()
                    }
                    None => continue,
                };
                assert_eq!(read, grid, "from {from} until {until}, max {max}");
            }
        }
    }

    #[test]
    fn too_many_slots_are_refused() {
        let engine = engine(&[("k", 1, 1.0), ("k", 2, 2.0)]);
        let err = Fetcher::new(&engine)
            .fetch("k", 0, MAX_FETCH_SLOTS as i64 + 10)
            .unwrap_err();
        assert!(err.contains("shorter range"), "{err}");
    }
}
