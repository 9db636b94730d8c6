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
pub fn render_pickle(series: &[Series]) -> Result<Vec<u8>, String> {
    encode(&List(series))
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
        let bytes = render_pickle(&[series]).unwrap();
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
        assert_eq!(render_pickle(&[]).unwrap(), b"\x80\x02].");
        assert_eq!(find_pickle(&[]).unwrap(), b"\x80\x02].");
    }

    #[test]
    fn large_timestamps_and_non_ascii_names_survive() {
        let series = Series::fetched("é.ü", "é.*", 1 << 40, 1, vec![Some(f64::INFINITY)]);
        let V::List(items) = decode(&render_pickle(&[series]).unwrap()) else {
            panic!("not a list")
        };
        let V::Dict(d) = &items[0] else { panic!("not a dict") };
        assert_eq!(d[&H::String("name".into())], V::String("é.ü".into()));
        assert_eq!(d[&H::String("start".into())], V::I64(1 << 40));
        assert_eq!(d[&H::String("values".into())], V::List(vec![V::F64(f64::INFINITY)]));
    }
}
