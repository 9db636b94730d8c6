//! graphite-web's cluster requests: a graphite-web whose `CLUSTER_SERVERS`
//! names this node asks `/metrics/find/?local=1&format=pickle&query=...` and
//! `/render/?format=pickle&local=1&noCache=1&from=...&until=...&target=...&now=...`
//! and merges the answers of every node. `format=pickle` chooses these
//! answers (`local` and `noCache` are accepted and ignored: a node never asks
//! other nodes, and caches nothing); the bytes are
//! [`crate::graphite::pickle`]'s.
//!
//! graphite-web sends only path expressions here (it applies the functions
//! itself, over the merged series); a function call is evaluated all the
//! same, as graphite-web's own `format=pickle` does.

use super::fetch::Fetcher;
use super::form::Fields;
use super::reply::{Reply, Sliced};
use crate::engine::Engine;
use crate::graphite::expr::{self, Expr};
use crate::graphite::functions::evaluate;
use crate::graphite::path::PathPattern;
use crate::graphite::pickle::{find_pickle, Node, PickleAnswer, CONTENT_TYPE};
use crate::graphite::time::parse_time;

/// The request asks for a cluster answer.
pub fn wants(fields: &Fields) -> bool {
    fields.get("format") == Some("pickle")
}

/// `/render?format=pickle`: every `target`'s series between `from` (default
/// `-1d`) and `until` (default `now`); `now` (epoch seconds, graphite-web
/// sends its own clock's) is the moment relative times count from.
/// The pickle is written a slice at a time, as `/render`'s JSON is.
pub fn render(fields: &Fields, engine: &Engine, now: i64) -> Result<Sliced, String> {
    let now = match fields.get("now").filter(|n| !n.is_empty()) {
        Some(text) => text.trim().parse().map_err(|_| format!("invalid now {text:?}"))?,
        None => now,
    };
    let time =
        |name: &str, default: &str| parse_time(fields.get(name).unwrap_or(default), now).map_err(|e| e.to_string());
    let (from, until) = (time("from", "-1d")?, time("until", "now")?);
    if from >= until {
        return Err(format!("from ({from}) must be before until ({until})"));
    }
    let mut fetcher = Fetcher::new(engine);
    let mut series = Vec::new();
    for target in fields.all("target").filter(|t| !t.trim().is_empty()) {
        let parsed = expr::parse(target).map_err(|e| format!("target {target:?}: {e}"))?;
        let mut fetch = |path: &str, from: i64, until: i64| fetcher.fetch(path, from, until);
        let mut found = evaluate(&parsed, from, until, &mut fetch).map_err(|e| format!("target {target:?}: {e}"))?;
        if let Expr::Path(_) = parsed {
            // graphite-web files what it fetched under the pattern it sent,
            // byte for byte: a pattern told back otherwise (escapes
            // resolved, say) finds nothing, and the glob shows no series.
            for s in &mut found {
                s.path_expression = target.to_string();
            }
        }
        series.extend(found);
    }
    Ok(Sliced {
        content_type: CONTENT_TYPE,
        body: Box::new(PickleAnswer::new(series)),
    })
}

/// `/metrics/find?format=pickle`: the nodes `query` names, each key with
/// the interval from its oldest point kept to `now` (what a whisper file
/// says: its retention up to its last write).
pub fn find(fields: &Fields, engine: &Engine, now: i64) -> Result<Reply, String> {
    let query = fields.get("query").ok_or("missing query")?;
    let pattern = PathPattern::parse(query).map_err(|e| format!("query {query:?}: {e}"))?;
    let found = pattern.find(engine.series_from(None).map(|(key, _)| &**key));
    let after = engine.horizon().checked_sub(1);
    let interval = |path: &str| {
        let oldest = (engine.series(path))
            .and_then(|series| series.points_after(after).next())
            .map_or(now, |(timestamp, _)| timestamp);
        (oldest, now.max(oldest))
    };
    Ok(Reply::ok(CONTENT_TYPE, find_pickle(&Node::of(&found, interval))?))
}

#[cfg(test)]
mod tests {
    use crate::engine::Engine;
    use crate::session::tests::Peer;
    use crate::session::{Limits, Protocol};
    use crate::store::Store;
    use serde_pickle::{DeOptions, HashableValue as H, Value as V};

    fn peer() -> Peer {
        let mut store = Store::new();
        for (t, v) in [(600, 1.0), (660, 2.0), (780, 4.0)] {
            store.put("servers.web1.cpu", t, v);
        }
        store.put("servers.db1.cpu", 600, 5.0);
        store.put("servers.db1", 600, 6.0);
        let limits = Limits {
            max_line_bytes: 1024,
            max_pending_output: 1 << 20,
        };
        Peer::speaking(Protocol::Http, limits, Engine::in_memory(store))
    }

    /// The answer's head and its body decoded as graphite-web unpickles it.
    fn exchange(request: &[u8]) -> (String, V) {
        let mut peer = peer();
        peer.send(request);
        peer.read_all();
        let at = (peer.received.windows(4))
            .position(|w| w == b"\r\n\r\n")
            .expect("a whole head")
            + 4;
        let head = String::from_utf8(peer.received[..at].to_vec()).expect("an ASCII head");
        let body = &peer.received[at..];
        assert!(
            head.contains(&format!("\r\nContent-Length: {}\r\n", body.len())),
            "{head}"
        );
        let value = serde_pickle::value_from_slice(body, DeOptions::new())
            .unwrap_or_else(|e| panic!("not a pickle ({e}): {head}{}", String::from_utf8_lossy(body)));
        (head, value)
    }

    fn field<'v>(dict: &'v V, name: &str) -> &'v V {
        let V::Dict(d) = dict else {
            panic!("not a dict: {dict:?}")
        };
        &d[&H::String(name.into())]
    }

    fn list(value: &V) -> &[V] {
        let V::List(items) = value else {
            panic!("not a list: {value:?}")
        };
        items
    }

    fn text(s: &str) -> V {
        V::String(s.into())
    }

    #[test]
    fn render_answers_what_graphite_webs_remote_reader_asks() {
        // RemoteReader.fetch_multi's request, trailing slash and all.
        let (head, value) = exchange(
            b"GET /render/?format=pickle&local=1&noCache=1&from=599&until=780&target=servers.%2A.cpu&target=servers.web1.cpu&now=800 HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\nContent-Type: application/pickle\r\n"), "{head}");
        let series = list(&value);
        let summary: Vec<(&V, &V, &V, &V, &V)> = (series.iter())
            .map(|s| {
                (
                    field(s, "name"),
                    field(s, "pathExpression"),
                    field(s, "start"),
                    field(s, "end"),
                    field(s, "step"),
                )
            })
            .collect();
        let web1 = (text("servers.web1.cpu"), V::I64(600), V::I64(840), V::I64(60));
        let (glob, exact) = (text("servers.*.cpu"), text("servers.web1.cpu"));
        assert_eq!(
            summary,
            [
                (&text("servers.db1.cpu"), &glob, &V::I64(600), &V::I64(840), &V::I64(60)),
                (&web1.0, &glob, &web1.1, &web1.2, &web1.3),
                (&web1.0, &exact, &web1.1, &web1.2, &web1.3),
            ]
        );
        let web1_values = [V::F64(1.0), V::F64(2.0), V::None, V::F64(4.0)];
        assert_eq!(list(field(&series[1], "values")), web1_values);
        assert_eq!(
            list(field(&series[0], "values")),
            [V::F64(5.0), V::None, V::None, V::None]
        );
    }

    #[test]
    fn the_path_expression_is_the_target_as_sent() {
        // A glob with braces and a character class: told back byte for byte.
        let (_, value) = exchange(
            b"GET /render?format=pickle&from=599&until=780&target=servers.%7Bweb%2Cdb%7D%5B1%5D.cpu HTTP/1.1\r\n\r\n",
        );
        let expressions: Vec<&V> = list(&value).iter().map(|s| field(s, "pathExpression")).collect();
        let want = text("servers.{web,db}[1].cpu");
        assert_eq!(expressions, [&want, &want]);
        // Blanks around it, which the parsed path has not.
        let (_, value) =
            exchange(b"GET /render?format=pickle&from=599&until=780&target=+servers.db1.cpu+ HTTP/1.1\r\n\r\n");
        let expressions: Vec<&V> = list(&value).iter().map(|s| field(s, "pathExpression")).collect();
        assert_eq!(expressions, [&text(" servers.db1.cpu ")]);
    }

    #[test]
    fn a_form_body_as_remote_store_use_post_sends_it() {
        let body = b"format=pickle&local=1&noCache=1&from=599&until=780&target=servers.db1.cpu";
        let mut request = format!(
            "POST /render/ HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let (_, value) = exchange(&request);
        assert_eq!(list(&value).len(), 1);
        assert_eq!(field(&list(&value)[0], "name"), &text("servers.db1.cpu"));
    }

    #[test]
    fn now_is_where_relative_times_count_from() {
        let (_, value) = exchange(
            b"GET /render/?format=pickle&from=-3min&until=now&now=780&target=servers.web1.cpu HTTP/1.1\r\n\r\n",
        );
        let series = &list(&value)[0];
        assert_eq!(
            (field(series, "start"), field(series, "end")),
            (&V::I64(660), &V::I64(840))
        );
        assert_eq!(list(field(series, "values")), [V::F64(2.0), V::None, V::F64(4.0)]);
    }

    #[test]
    fn find_answers_what_graphite_webs_remote_finder_asks() {
        let (head, value) =
            exchange(b"GET /metrics/find/?local=1&format=pickle&query=servers.%2A&from=1&until=2 HTTP/1.1\r\n\r\n");
        assert!(head.contains("\r\nContent-Type: application/pickle\r\n"), "{head}");
        let nodes = list(&value);
        let summary: Vec<(&V, &V)> = nodes.iter().map(|n| (field(n, "path"), field(n, "is_leaf"))).collect();
        // servers.db1 is a key and a branch: listed as both.
        assert_eq!(
            summary,
            [
                (&text("servers.db1"), &V::Bool(false)),
                (&text("servers.db1"), &V::Bool(true)),
                (&text("servers.web1"), &V::Bool(false)),
            ]
        );
        let V::Dict(branch) = &nodes[0] else { unreachable!() };
        assert!(!branch.contains_key(&H::String("intervals".into())));
        let intervals = list(field(&nodes[1], "intervals"));
        let V::Tuple(pair) = &intervals[0] else {
            panic!("not a pair: {intervals:?}")
        };
        // From the oldest point to the node's clock.
        assert_eq!(pair[0], V::I64(600));
        assert!(matches!(pair[1], V::I64(now) if now >= 600), "{pair:?}");
        assert_eq!(intervals.len(), 1);
    }

    #[test]
    fn nothing_found_is_an_empty_list_and_bad_input_a_clear_400() {
        let (_, value) = exchange(b"GET /metrics/find/?format=pickle&query=nope.* HTTP/1.1\r\n\r\n");
        assert_eq!(value, V::List(vec![]));
        let (_, value) = exchange(b"GET /render/?format=pickle&from=1&until=2&target=nope HTTP/1.1\r\n\r\n");
        assert_eq!(value, V::List(vec![]));
        for (request, reason) in [
            (
                &b"GET /render/?format=pickle&target=sumSeries(a HTTP/1.1\r\n\r\n"[..],
                "target \"sumSeries(a\": missing ')' at character 11\n",
            ),
            (
                b"GET /render/?format=pickle&target=a&now=soon HTTP/1.1\r\n\r\n",
                "invalid now \"soon\"\n",
            ),
            (
                b"GET /render/?format=pickle&target=a&from=5&until=4 HTTP/1.1\r\n\r\n",
                "from (5) must be before until (4)\n",
            ),
            (b"GET /metrics/find/?format=pickle HTTP/1.1\r\n\r\n", "missing query\n"),
        ] {
            let mut peer = peer();
            peer.send(request);
            peer.read_all();
            let got = peer.received();
            assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
            assert!(got.ends_with(&format!("\r\n\r\n{reason}")), "{got}");
        }
    }
}
