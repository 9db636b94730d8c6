//! A series as graphite-web's functions see it: a name, tags, and values on
//! a fixed step grid, `None` where a point is missing.

/// A tag's value: graphite's functions tag series with numbers too
/// (`scale` sets `"scale": 2.0`, `derivative` sets `"derivative": 1`), and
/// the JSON answer keeps them numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum TagValue {
    Str(String),
    Int(i64),
    Float(f64),
}

/// A series' tags in the order they were set, as graphite-web's `Tags`
/// dict keeps them (its JSON answer lists them in that order). Setting a
/// tag again keeps its place.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tags(Vec<(String, TagValue)>);

impl Tags {
    /// The tags graphite gives a fetched series: those of a tagged key
    /// (`cpu;dc=x;host=a`) in key order, then `name`; or just `name`.
    pub fn of_key(key: &str) -> Tags {
        let mut tags = Tags::default();
        let mut segments = key.split(';');
        let name = segments.next().unwrap_or(key);
        for (tag, value) in segments.filter_map(|s| s.split_once('=')) {
            tags.set(tag, TagValue::Str(value.to_string()));
        }
        tags.set("name", TagValue::Str(name.to_string()));
        tags
    }

    pub fn set(&mut self, tag: &str, value: TagValue) {
        match self.0.iter_mut().find(|(t, _)| t == tag) {
            Some((_, v)) => *v = value,
            None => self.0.push((tag.to_string(), value)),
        }
    }

    pub fn get(&self, tag: &str) -> Option<&TagValue> {
        self.0.iter().find(|(t, _)| t == tag).map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &TagValue)> {
        self.0.iter().map(|(t, v)| (t.as_str(), v))
    }

    /// Only the tags `other` has with the same value.
    pub fn retain_common(&mut self, other: &Tags) {
        self.0.retain(|(t, v)| other.get(t) == Some(v));
    }
}

/// One series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The name answered as `target`.
    pub name: String,
    /// The path expression the series was found by, or the name a function
    /// gave it: what aggregates name their result after (`sumSeries(a.*)`).
    pub path_expression: String,
    pub tags: Tags,
    /// The timestamp of `values[0]`.
    pub start: i64,
    /// graphite-web's end of the series; answers list points up to it.
    pub end: i64,
    /// Seconds between points, at least 1.
    pub step: i64,
    pub values: Vec<Option<f64>>,
}

impl Series {
    /// A series named `name`, tagged `name`, ending one step after its
    /// last point.
    pub fn new(name: &str, start: i64, step: i64, values: Vec<Option<f64>>) -> Series {
        let mut tags = Tags::default();
        tags.set("name", TagValue::Str(name.to_string()));
        Series {
            name: name.to_string(),
            path_expression: name.to_string(),
            tags,
            start,
            end: start + step * values.len() as i64,
            step,
            values,
        }
    }

    /// A series the store holds under `key`, found by `path_expression`.
    pub fn fetched(key: &str, path_expression: &str, start: i64, step: i64, values: Vec<Option<f64>>) -> Series {
        Series {
            path_expression: path_expression.to_string(),
            tags: Tags::of_key(key),
            ..Series::new(key, start, step, values)
        }
    }

    /// The heap bytes the series holds: its values (16 bytes a slot, what
    /// an `Option<f64>` takes), name, path expression and tags. An answer
    /// being written counts them against the output memory all connections
    /// share (`--max-output-memory`).
    pub fn held_bytes(&self) -> usize {
        let tags: usize = (self.tags.0.iter())
            .map(|(tag, value)| {
                let text = match value {
                    TagValue::Str(text) => text.capacity(),
                    TagValue::Int(_) | TagValue::Float(_) => 0,
                };
                std::mem::size_of::<(String, TagValue)>() + tag.capacity() + text
            })
            .sum();
        self.values_bytes() + self.name.capacity() + self.path_expression.capacity() + tags
    }

    /// The heap bytes of the values alone: what is freed once they are
    /// written.
    pub fn values_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<Option<f64>>()
    }

    /// Renames the series; as graphite's functions do, the path expression
    /// becomes the new name too.
    pub fn rename(&mut self, name: String) {
        self.path_expression.clone_from(&name);
        self.name = name;
    }

    /// The points as graphite-web answers them: each value with its
    /// timestamp, for the timestamps from `start` through `end`.
    pub fn datapoints(&self) -> impl Iterator<Item = (Option<f64>, i64)> + '_ {
        let timestamps = (0..self.datapoint_count() as i64).map(|i| self.start + i * self.step);
        self.values.iter().copied().zip(timestamps)
    }

    /// How many [`Series::datapoints`] there are.
    pub fn datapoint_count(&self) -> usize {
        let through_end = match self.end >= self.start {
            true => usize::try_from((self.end - self.start) / self.step + 1).unwrap_or(usize::MAX),
            false => 0,
        };
        through_end.min(self.values.len())
    }

    /// Every `per_point` values become their average (of the non-missing
    /// ones; missing if all are), and the step grows to match: graphite's
    /// `consolidate` with its default function, `average`, and an
    /// xFilesFactor of 0. A last, shorter group is averaged too.
    pub fn consolidate(&mut self, per_point: usize) {
        self.consolidate_from(0, per_point);
    }

    /// [`Series::consolidate`] after dropping the first `skip` values
    /// (`maxDataPoints`' nudge), without moving the values kept first.
    pub fn consolidate_from(&mut self, skip: usize, per_point: usize) {
        let skip = skip.min(self.values.len());
        if per_point <= 1 {
            self.values.drain(..skip);
            return;
        }
        // In place: group `g` is read from `skip + g * per_point` on, at or
        // after where its average goes.
        let groups = (self.values.len() - skip).div_ceil(per_point);
        for group in 0..groups {
            let from = skip + group * per_point;
            let to = (from + per_point).min(self.values.len());
            self.values[group] = average(&self.values[from..to]);
        }
        self.values.truncate(groups);
        // The slots consolidated away are freed: an answer holds the
        // consolidated values alone until it is written.
        self.values.shrink_to_fit();
        self.step *= per_point as i64;
    }
}

/// The average of the values present, `None` if there are none. The sum
/// starts at 0.0 as Python's `sum` does (so all `-0.0` average to `0.0`).
pub(crate) fn average(values: &[Option<f64>]) -> Option<f64> {
    let (mut sum, mut count) = (0.0, 0usize);
    for v in values.iter().flatten() {
        sum += v;
        count += 1;
    }
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_keys() {
        let tags = Tags::of_key("cpu;dc=x;host=a");
        let listed: Vec<_> = tags.iter().map(|(t, v)| (t.to_string(), v.clone())).collect();
        let s = |v: &str| TagValue::Str(v.into());
        assert_eq!(
            listed,
            vec![
                ("dc".into(), s("x")),
                ("host".into(), s("a")),
                ("name".into(), s("cpu"))
            ]
        );
        assert_eq!(Tags::of_key("a.b").get("name"), Some(&s("a.b")));
    }

    #[test]
    fn setting_a_tag_again_keeps_its_place() {
        let mut tags = Tags::of_key("a");
        tags.set("x", TagValue::Int(1));
        tags.set("name", TagValue::Str("b".into()));
        let order: Vec<_> = tags.iter().map(|(t, _)| t).collect();
        assert_eq!(order, ["name", "x"]);
        assert_eq!(tags.get("name"), Some(&TagValue::Str("b".into())));
    }

    #[test]
    fn datapoints_run_from_start_through_end() {
        let s = Series::new("a", 100, 10, vec![Some(1.0), None, Some(3.0)]);
        assert_eq!(s.end, 130);
        let points: Vec<_> = s.datapoints().collect();
        assert_eq!(points, vec![(Some(1.0), 100), (None, 110), (Some(3.0), 120)]);
        let short = Series { end: 110, ..s.clone() };
        assert_eq!(short.datapoints().count(), 2);
        let empty = Series { end: 90, ..s };
        assert_eq!(empty.datapoints().count(), 0);
    }

    #[test]
    fn consolidation_averages_present_values() {
        let mut s = Series::new("a", 0, 10, vec![Some(1.0), Some(3.0), None, None, Some(5.0)]);
        s.consolidate(2);
        assert_eq!(s.values, vec![Some(2.0), None, Some(5.0)]);
        assert_eq!(s.step, 20);
        s.consolidate(1);
        assert_eq!(s.step, 20);
    }
}
