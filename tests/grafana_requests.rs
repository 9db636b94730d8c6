//! The requests of tests/fixtures/grafana-graphite-requests.txt (what
//! Grafana's Graphite data source sends) through the socket-free graphite
//! modules: each render target parses and evaluates, each find query finds,
//! with the answers graphite-web would give. The HTTP layer's own tests
//! send the same requests over a socket.

use metricsd::graphite::expr;
use metricsd::graphite::functions::{evaluate, functions_json, EvalError};
use metricsd::graphite::path::PathPattern;
use metricsd::graphite::render::{expand_json, find_json, render_json, JsonOptions};
use metricsd::graphite::series::Series;
use metricsd::graphite::time::parse_time;

const FIXTURE: &str = include_str!("fixtures/grafana-graphite-requests.txt");

/// The keys of the store the requests run against, each with points every
/// 60 s over the fixture's last six hours.
const KEYS: [&str; 4] = [
    "servers.web1.cpu",
    "servers.web2.cpu",
    "servers.db1.cpu",
    "servers.db1.disk.free",
];
const START: i64 = 1733115540;

struct Request {
    comment: String,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Vec<(String, String)>,
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

fn requests() -> Vec<Request> {
    FIXTURE
        .split("\n====\n")
        .skip(1)
        .map(|block| {
            // Not `lines()`: a block with no body ends in its empty line.
            let lines: Vec<&str> = block.split('\n').collect();
            let comment: Vec<&str> = lines.iter().copied().take_while(|l| l.starts_with('#')).collect();
            let rest = &lines[comment.len()..];
            let mut words = rest[0].split(' ');
            let (method, target) = (words.next().unwrap(), words.next().unwrap());
            assert_eq!(words.next(), Some("HTTP/1.1"));
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            let blank = rest
                .iter()
                .position(|l| l.is_empty())
                .expect("headers end with an empty line");
            Request {
                comment: comment.join("\n"),
                method: method.to_string(),
                path: path.to_string(),
                query: form(query),
                body: form(rest.get(blank + 1).copied().unwrap_or("")),
            }
        })
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn fetch(path: &str, from: i64, until: i64) -> Result<Vec<Series>, String> {
    let pattern = PathPattern::parse(path).map_err(|e| e.to_string())?;
    let start = START.max(from - from.rem_euclid(60));
    let count = ((until - start) / 60 + 1).max(0) as usize;
    Ok(KEYS
        .iter()
        .filter(|key| pattern.matches(key))
        .map(|key| Series::fetched(key, path, start, 60, (0..count).map(|i| Some(i as f64)).collect()))
        .collect())
}

#[test]
fn the_fixture_holds_every_kind_of_request() {
    let kinds: Vec<(String, String)> = requests().iter().map(|r| (r.method.clone(), r.path.clone())).collect();
    for kind in [
        ("POST", "/render"),
        ("POST", "/metrics/find"),
        ("GET", "/metrics/expand"),
        ("GET", "/functions"),
        ("GET", "/version"),
    ] {
        assert!(kinds.contains(&(kind.0.into(), kind.1.into())), "{kind:?}");
    }
    assert!(requests().iter().all(|r| r.comment.starts_with("# ")));
}

#[test]
fn render_requests_evaluate_like_graphite_web() {
    let mut rendered = 0;
    for request in requests().iter().filter(|r| r.path == "/render") {
        let from = parse_time(field(&request.body, "from").unwrap(), 0).unwrap();
        let until = parse_time(field(&request.body, "until").unwrap(), 0).unwrap();
        assert_eq!(field(&request.body, "format"), Some("json"));
        let max_data_points = field(&request.body, "maxDataPoints").map(|m| m.parse().unwrap());
        let mut series = Vec::new();
        for (i, (_, target)) in request.body.iter().filter(|(k, _)| k == "target").enumerate() {
            let ref_id = ["A", "B"][i];
            let wrapped = format!(r#", "(^.*$)", "\1 {ref_id}")"#);
            assert!(
                target.starts_with("aliasSub(") && target.ends_with(&wrapped),
                "{target}"
            );
            let parsed = expr::parse(target).unwrap_or_else(|e| panic!("{target}: {e}"));
            match evaluate(&parsed, from, until, &mut fetch) {
                Ok(found) => {
                    assert!(!found.is_empty(), "{target}");
                    for s in &found {
                        assert!(s.name.ends_with(&format!(" {ref_id}")), "{}", s.name);
                    }
                    series.extend(found);
                }
                // Not one of issue 14's functions: a 400 with this reason.
                Err(e) => assert_eq!(e, EvalError::UnknownFunction("asPercent".into()), "{target}"),
            }
        }
        let options = JsonOptions {
            max_data_points,
            no_null_points: false,
        };
        let json: serde_json::Value = serde_json::from_str(&render_json(series, options)).unwrap();
        for s in json.as_array().unwrap() {
            let points = s["datapoints"].as_array().unwrap();
            assert!(!points.is_empty());
            if let Some(max) = max_data_points {
                assert!(points.len() <= max, "{} points for {max}", points.len());
            }
        }
        rendered += 1;
    }
    assert_eq!(rendered, 5);
}

#[test]
fn save_and_test_answers_a_constant_line() {
    let request = &requests()[0];
    assert!(request.comment.contains("Save & test"));
    let target = field(&request.body, "target").unwrap();
    assert_eq!(target, r#"aliasSub(constantLine(100), "(^.*$)", "\1 A")"#);
    let (from, until) = (1733133599, 1733137201);
    let series = evaluate(&expr::parse(target).unwrap(), from, until, &mut fetch).unwrap();
    let options = JsonOptions {
        max_data_points: Some(300),
        no_null_points: false,
    };
    assert_eq!(
        render_json(series, options),
        r#"[{"target": "100.0 A", "tags": {"name": "100.0"}, "datapoints": [[100.0, 1733133599], [100.0, 1733135400], [100.0, 1733137201]]}]"#
    );
}

#[test]
fn find_requests_list_the_next_nodes() {
    let mut answers = Vec::new();
    for request in requests().iter().filter(|r| r.path == "/metrics/find") {
        assert_eq!(request.method, "POST");
        assert!(field(&request.query, "from").is_some() && field(&request.query, "until").is_some());
        let query = field(&request.body, "query").unwrap();
        let nodes = PathPattern::parse(query).unwrap().find(KEYS);
        answers.push(find_json(query, &nodes, false, false));
    }
    assert_eq!(
        answers,
        [
            r#"[{"text": "servers", "id": "servers", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#,
            concat!(
                r#"[{"text": "db1", "id": "servers.db1", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "web1", "id": "servers.web1", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "web2", "id": "servers.web2", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#
            ),
            concat!(
                r#"[{"text": "web1", "id": "servers.web1", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "web2", "id": "servers.web2", "allowChildren": 1, "expandable": 1, "leaf": 0}]"#
            ),
            concat!(
                r#"[{"text": "disk", "id": "servers.{web1,db1}.disk", "allowChildren": 1, "expandable": 1, "leaf": 0}, "#,
                r#"{"text": "cpu", "id": "servers.{web1,db1}.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1}]"#
            ),
        ]
    );
}

#[test]
fn expand_lists_full_paths() {
    let request = requests().into_iter().find(|r| r.path == "/metrics/expand").unwrap();
    let query = field(&request.query, "query").unwrap();
    let pattern = PathPattern::parse(query).unwrap();
    let paths: Vec<String> = pattern.find(KEYS).into_iter().map(|n| n.path).collect();
    assert_eq!(
        expand_json(&paths),
        r#"{"results": ["servers.db1.cpu", "servers.web1.cpu", "servers.web2.cpu"]}"#
    );
}

#[test]
fn functions_are_valid_json_for_grafana() {
    // Grafana replaces `"default": Infinity` before parsing; 1e9999 is read
    // by JavaScript as Infinity, by serde_json not at all.
    let text = functions_json(false);
    let json: serde_json::Value = serde_json::from_str(&text.replace("1e9999", "1e308")).unwrap();
    for name in [
        "aliasSub",
        "constantLine",
        "sumSeries",
        "alias",
        "movingAverage",
        "summarize",
    ] {
        assert_eq!(json[name]["name"], name);
        assert!(json[name]["params"].is_array());
        assert!(json[name]["group"].is_string());
    }
}
