//! graphite-web's cluster format: the pickles a storage node answers to
//! `/metrics/find?local=1&format=pickle` and `/render?local=1&format=pickle`,
//! which graphite-web 1.1's `RemoteFinder` and `RemoteReader`
//! (`graphite/finders/remote.py`, `graphite/readers/remote.py`) unpickle
//! when `CLUSTER_SERVERS` names the node.
//!
//! graphite-web picks the decoder by the answer's `Content-Type`:
//! `application/x-msgpack` is read as msgpack, anything else as a pickle,
//! through an unpickler that refuses every class but a few of its own. So
//! these answers hold only dicts, lists, tuples, strings, numbers, booleans
//! and `None`: what any unpickler reads without importing anything.
//!
//! The pickles are protocol 2 (serde-pickle's `proto_v2`), which Python 2
//! and 3 both read: graphite-web 1.1 ran on either.

use super::path::FoundNode;
use super::series::Series;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_pickle::SerOptions;

/// The `Content-Type` of both answers: graphite-web's own (its
/// `renderViewPickle` and `find_view` answer so); any type but
/// `application/x-msgpack` makes graphite-web unpickle.
pub const CONTENT_TYPE: &str = "application/pickle";

/// A node of a `/metrics/find` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Keys are stored below `path`.
    Branch { path: String },
    /// A key. `interval` is graphite-web's `intervals` (the seconds the node
    /// holds data for), one `(start, end)` pair, as a whisper file gives
    /// one: graphite-web only uses it to choose among nodes that hold the
    /// same path when `REMOTE_STORE_MERGE_RESULTS` is off.
    Leaf { path: String, interval: (i64, i64) },
}

impl Node {
    /// The nodes of `found`, in its order: a path that is both a key and a
    /// branch is a branch, then a leaf, as graphite-web's standard finder
    /// lists a whisper file beside a directory of the same name.
    /// `interval` gives a key's interval.
    pub fn of(found: &[FoundNode], mut interval: impl FnMut(&str) -> (i64, i64)) -> Vec<Node> {
        let mut nodes = Vec::with_capacity(found.len());
        for node in found {
            if node.branch {
                nodes.push(Node::Branch {
                    path: node.path.clone(),
                });
            }
            if node.leaf {
                nodes.push(Node::Leaf {
                    interval: interval(&node.path),
                    path: node.path.clone(),
                });
            }
        }
        nodes
    }
}

/// `/metrics/find?format=pickle`: graphite-web's `pickle_nodes`, a list of
/// `{"path": str, "is_leaf": bool}` dicts, leaves with
/// `"intervals": [(start, end)]` (graphite-web pickles an `IntervalSet`
/// there; its remote finder takes a list of pairs as well, and an
/// unpickler needs no class for it).
pub fn find_pickle(nodes: &[Node]) -> Result<Vec<u8>, String> {
    encode(&List(nodes))
}

/// `/render?format=pickle`: graphite-web's `renderViewPickle`, a list of
/// `TimeSeries.getInfo()` dicts: `name`, `start`, `end`, `step`, `values`
/// (floats, `None` where missing), `pathExpression`, and the
/// consolidation fields graphite-web adds (`valuesPerPoint` 1,
/// `consolidationFunc` `"average"`, `xFilesFactor` 0.0) which its remote
/// reader ignores. graphite-web files each series under its
/// `pathExpression`, so that must be the target exactly as the request
/// sent it (the caller sees to that); `maxDataPoints` does not apply.
///
/// Written a slice at a time, as the JSON answer is: graphite-web asks a
/// node for every point (100 series of a day at 1 s are 8 MB of pickle).
/// The bytes are serde-pickle's protocol 2 encoding of that list, byte for
/// byte (the tests compare them): no memo, lists and dicts as `EMPTY_LIST`
/// or `EMPTY_DICT`, then `MARK`, the items and `APPENDS` or `SETITEMS`
/// (none of these for an empty one), a batch closed and another opened
/// every 1,000 items as Python's pickle does; strings `BINUNICODE`, ints
/// `BININT` (or `LONG1` of 8 bytes past 32 bits), floats `BINFLOAT`.
#[derive(Debug)]
pub struct PickleAnswer {
    series: Vec<Series>,
    at: PickleAt,
    /// The heap bytes `series` holds, as the JSON answer keeps it.
    held: usize,
}

/// Where a [`PickleAnswer`] goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PickleAt {
    /// Nothing written yet.
    Start,
    /// Before series `index`'s dict (or the list's end after the last).
    Series(usize),
    /// In series `series`'s values, before value `point`.
    Values {
        series: usize,
        point: usize,
    },
    Done,
}

/// Python's pickle (and serde-pickle) closes an `APPENDS` or `SETITEMS`
/// batch every 1,000 items.
const BATCH: usize = 1000;

impl PickleAnswer {
    pub fn new(series: Vec<Series>) -> PickleAnswer {
        PickleAnswer {
            held: super::render::held_bytes(&series),
            series,
            at: PickleAt::Start,
        }
    }

    /// The heap bytes the answer still holds: its series, less the values
    /// already written.
    pub fn held_bytes(&self) -> usize {
        self.held
    }

    /// Appends the next part of the pickle to `out`: about `room` bytes,
    /// more by at most one series' dict around its values (its name, path
    /// expression and fixed fields), fewer only at the end. Returns whether
    /// the pickle is complete.
    pub fn write(&mut self, out: &mut Vec<u8>, room: usize) -> bool {
        let limit = out.len().saturating_add(room);
        loop {
            if out.len() >= limit && self.at != PickleAt::Done {
                return false;
            }
            match self.at {
                PickleAt::Start => {
                    // PROTO 2, EMPTY_LIST, and MARK unless it stays empty.
                    out.extend_from_slice(b"\x80\x02]");
                    match self.series.is_empty() {
                        true => {
                            out.push(b'.');
                            self.at = PickleAt::Done;
                        }
                        false => {
                            out.push(b'(');
                            self.at = PickleAt::Series(0);
                        }
                    }
                }
                PickleAt::Series(index) => {
                    let Some(s) = self.series.get(index) else {
                        // APPENDS, STOP.
                        out.extend_from_slice(b"e.");
                        self.series = Vec::new();
                        self.held = 0;
                        self.at = PickleAt::Done;
                        continue;
                    };
                    // EMPTY_DICT, MARK, then the entries up to the values.
                    out.extend_from_slice(b"}(");
                    push_str(out, "name");
                    push_str(out, &s.name);
                    for (key, value) in [("start", s.start), ("end", s.end), ("step", s.step)] {
                        push_str(out, key);
                        push_int(out, value);
                    }
                    push_str(out, "values");
                    out.push(b']');
                    if !s.values.is_empty() {
                        out.push(b'(');
                    }
                    self.at = PickleAt::Values {
                        series: index,
                        point: 0,
                    };
                }
                PickleAt::Values { series, point } => {
                    let s = &mut self.series[series];
                    let mut next = point;
                    for value in &s.values[point..] {
                        if out.len() >= limit {
                            self.at = PickleAt::Values { series, point: next };
                            return false;
                        }
                        match value {
                            Some(v) => push_float(out, *v),
                            None => out.push(b'N'),
                        }
                        next += 1;
                        if next % BATCH == 0 {
                            out.extend_from_slice(b"e(");
                        }
                    }
                    if !s.values.is_empty() {
                        out.push(b'e');
                    }
                    push_str(out, "pathExpression");
                    push_str(out, &s.path_expression);
                    push_str(out, "valuesPerPoint");
                    push_int(out, 1);
                    push_str(out, "consolidationFunc");
                    push_str(out, "average");
                    push_str(out, "xFilesFactor");
                    push_float(out, 0.0);
                    // SETITEMS: nine entries, one batch.
                    out.push(b'u');
                    if (series + 1) % BATCH == 0 {
                        out.extend_from_slice(b"e(");
                    }
                    // Written: its values are not needed any more.
                    self.held -= s.values_bytes();
                    s.values = Vec::new();
                    self.at = PickleAt::Series(series + 1);
                }
                PickleAt::Done => return true,
            }
        }
    }
}

/// BINUNICODE: the UTF-8 bytes after their length, 4 bytes little-endian
/// (a name is far below 4 GiB: a request is at most 1 MiB).
fn push_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'X');
    out.extend_from_slice(&(text.len() as u32).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// BININT for what fits 32 bits signed, else LONG1 of 8 bytes.
fn push_int(out: &mut Vec<u8>, value: i64) {
    match i32::try_from(value) {
        Ok(small) => {
            out.push(b'J');
            out.extend_from_slice(&small.to_le_bytes());
        }
        Err(_) => {
            out.extend_from_slice(b"\x8a\x08");
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// BINFLOAT: the 8 bytes big-endian.
fn push_float(out: &mut Vec<u8>, value: f64) {
    out.push(b'G');
    out.extend_from_slice(&value.to_be_bytes());
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>, String> {
    serde_pickle::to_vec(value, SerOptions::new().proto_v2()).map_err(|e| format!("cannot encode the pickle: {e}"))
}

/// A slice serialized as a list of its items' pickle dicts.
struct List<'a, T>(&'a [T]);

impl<T> Serialize for List<'_, T>
where
    for<'t> Dict<'t, T>: Serialize,
{
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut list = serializer.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            list.serialize_element(&Dict(item))?;
        }
        list.end()
    }
}

/// One item as graphite-web's dict of it.
struct Dict<'a, T>(&'a T);

impl Serialize for Dict<'_, Node> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Node::Branch { path } => {
                let mut dict = serializer.serialize_map(Some(2))?;
                dict.serialize_entry("path", path)?;
                dict.serialize_entry("is_leaf", &false)?;
                dict.end()
            }
            Node::Leaf { path, interval } => {
                let mut dict = serializer.serialize_map(Some(3))?;
                dict.serialize_entry("path", path)?;
                dict.serialize_entry("is_leaf", &true)?;
                // A slice, so a list: serde writes an array as a tuple.
                dict.serialize_entry("intervals", &[*interval][..])?;
                dict.end()
            }
        }
    }
}

/// serde-pickle's encoding of a series, which [`PickleAnswer`] writes by
/// hand: the tests compare the two.
#[cfg(test)]
impl Serialize for Dict<'_, Series> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let series = self.0;
        let mut dict = serializer.serialize_map(Some(9))?;
        dict.serialize_entry("name", &series.name)?;
        dict.serialize_entry("start", &series.start)?;
        dict.serialize_entry("end", &series.end)?;
        dict.serialize_entry("step", &series.step)?;
        dict.serialize_entry("values", &series.values)?;
        dict.serialize_entry("pathExpression", &series.path_expression)?;
        dict.serialize_entry("valuesPerPoint", &1)?;
        dict.serialize_entry("consolidationFunc", "average")?;
        dict.serialize_entry("xFilesFactor", &0.0)?;
        dict.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_pickle::{DeOptions, HashableValue as H, Value as V};
    use std::collections::BTreeMap;

    /// The whole answer, in one slice.
    fn render_pickle(series: &[Series]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(PickleAnswer::new(series.to_vec()).write(&mut out, usize::MAX));
        out
    }

    /// serde-pickle's bytes for the same list.
    fn serde_pickle_of(series: &[Series]) -> Vec<u8> {
        encode(&List(series)).expect("a Vec takes any pickle")
    }

    fn decode(bytes: &[u8]) -> V {
        serde_pickle::value_from_slice(bytes, DeOptions::new()).expect("a pickle")
    }

    fn dict(entries: Vec<(&str, V)>) -> V {
        V::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (H::String(k.into()), v))
                .collect::<BTreeMap<_, _>>(),
        )
    }

    #[test]
    fn a_find_answer_is_graphite_webs_list_of_node_dicts() {
        let found = [
            FoundNode {
                path: "servers.db1".into(),
                leaf: false,
                branch: true,
            },
            FoundNode {
                path: "servers.web1".into(),
                leaf: true,
                branch: true,
            },
        ];
        let nodes = Node::of(&found, |path| (100, 200 + path.len() as i64));
        let bytes = find_pickle(&nodes).unwrap();
        let leaf_interval = V::List(vec![V::Tuple(vec![V::I64(100), V::I64(212)])]);
        assert_eq!(
            decode(&bytes),
            V::List(vec![
                dict(vec![
                    ("path", V::String("servers.db1".into())),
                    ("is_leaf", V::Bool(false))
                ]),
                dict(vec![
                    ("path", V::String("servers.web1".into())),
                    ("is_leaf", V::Bool(false))
                ]),
                dict(vec![
                    ("path", V::String("servers.web1".into())),
                    ("is_leaf", V::Bool(true)),
                    ("intervals", leaf_interval),
                ]),
            ])
        );
    }

    #[test]
    fn the_exact_bytes_of_a_small_find_answer() {
        let nodes = [Node::Leaf {
            path: "a".into(),
            interval: (1, 2),
        }];
        let bytes = find_pickle(&nodes).unwrap();
        // PROTO 2, EMPTY_LIST MARK, EMPTY_DICT MARK, the three pairs as
        // BINUNICODE keys, NEWTRUE, EMPTY_LIST MARK, a tuple of BININTs
        // (MARK ... TUPLE), APPENDS, SETITEMS, APPENDS, STOP: what Python's
        // pickle.loads reads as [{'path': 'a', 'is_leaf': True,
        // 'intervals': [(1, 2)]}] (checked with pickletools.dis).
        let mut want = b"\x80\x02](}(X\x04\x00\x00\x00pathX\x01\x00\x00\x00a".to_vec();
        want.extend(b"X\x07\x00\x00\x00is_leaf\x88");
        want.extend(b"X\x09\x00\x00\x00intervals]((J\x01\x00\x00\x00J\x02\x00\x00\x00te");
        want.extend(b"ue.");
        assert_eq!(bytes, want);
    }

    #[test]
    fn a_render_answer_is_graphite_webs_list_of_series_dicts() {
        let mut series = Series::fetched(
            "servers.web1.cpu",
            "servers.*.cpu",
            600,
            60,
            vec![Some(1.5), None, Some(-2.0)],
        );
        series.path_expression = "servers.*.cpu".into();
        let bytes = render_pickle(&[series]);
        assert_eq!(
            decode(&bytes),
            V::List(vec![dict(vec![
                ("name", V::String("servers.web1.cpu".into())),
                ("start", V::I64(600)),
                ("end", V::I64(780)),
                ("step", V::I64(60)),
                ("values", V::List(vec![V::F64(1.5), V::None, V::F64(-2.0)])),
                ("pathExpression", V::String("servers.*.cpu".into())),
                ("valuesPerPoint", V::I64(1)),
                ("consolidationFunc", V::String("average".into())),
                ("xFilesFactor", V::F64(0.0)),
            ])])
        );
    }

    #[test]
    fn empty_answers_are_empty_lists() {
        assert_eq!(render_pickle(&[]), b"\x80\x02].");
        assert_eq!(serde_pickle_of(&[]), b"\x80\x02].");
        assert_eq!(find_pickle(&[]).unwrap(), b"\x80\x02].");
    }

    #[test]
    fn large_timestamps_and_non_ascii_names_survive() {
        let series = Series::fetched("é.ü", "é.*", 1 << 40, 1, vec![Some(f64::INFINITY)]);
        let V::List(items) = decode(&render_pickle(&[series])) else {
            panic!("not a list")
        };
        let V::Dict(d) = &items[0] else { panic!("not a dict") };
        assert_eq!(d[&H::String("name".into())], V::String("é.ü".into()));
        assert_eq!(d[&H::String("start".into())], V::I64(1 << 40));
        assert_eq!(d[&H::String("values".into())], V::List(vec![V::F64(f64::INFINITY)]));
    }

    /// Series that reach every branch of the encoding: values past one and
    /// two batches of 1,000, an empty series, missing and special values,
    /// timestamps past 32 bits, non-ASCII names; and, with `many`, more
    /// than 1,000 series.
    fn awkward(many: usize) -> Vec<Series> {
        let values = (0..2_345)
            .map(|i| match i % 7 {
                0 => None,
                1 => Some(f64::NAN),
                2 => Some(-0.0),
                3 => Some(f64::NEG_INFINITY),
                _ => Some(i as f64 * 1.25),
            })
            .collect();
        let mut series = vec![
            Series::fetched("a.b", "a.*", 600, 60, values),
            Series::fetched("é.ü", "{é,x}.ü", 1 << 40, 1, vec![]),
            Series::fetched("c", "c", -(1 << 35), 10, vec![Some(1.0); 1_000]),
        ];
        for i in 0..many {
            series.push(Series::fetched(
                &format!("k{i}"),
                "k*",
                i as i64,
                1,
                vec![Some(i as f64)],
            ));
        }
        series
    }

    #[test]
    fn the_whole_answer_is_serde_pickles_encoding_byte_for_byte() {
        for many in [0, 996, 997, 998, 1_500, 2_997] {
            let series = awkward(many);
            let want = serde_pickle_of(&series);
            assert!(render_pickle(&series) == want, "{many} more series");
        }
    }

    #[test]
    fn the_answer_in_slices_is_the_whole_answer_at_every_slice_size() {
        let series = awkward(1_100);
        let whole = serde_pickle_of(&series);
        let rooms = (1..=600).chain([1_000, 4_096, 9_999, 20_000, 65_536, whole.len() - 1, whole.len()]);
        for room in rooms {
            let mut answer = PickleAnswer::new(series.clone());
            assert!(answer.held_bytes() >= 3_345 * 16);
            let mut out = Vec::new();
            let mut slices = 0;
            loop {
                let before = out.len();
                let done = answer.write(&mut out, room);
                // A slice passes its room by at most one series' dict
                // around its values.
                assert!(
                    out.len() - before < room + 200,
                    "room {room}: a slice of {}",
                    out.len() - before
                );
                slices += 1;
                assert!(slices <= whole.len() + 1, "room {room}: the answer never ended");
                if done {
                    break;
                }
            }
            assert!(
                out == whole,
                "room {room}: differs at byte {:?}",
                out.iter().zip(&whole).position(|(a, b)| a != b)
            );
            assert_eq!(answer.held_bytes(), 0, "room {room}: held after the end");
        }
    }
}
