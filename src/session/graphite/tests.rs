//! The Graphite session byte-in/byte-out, without sockets: bytes in, the
//! store and the `stats` figures out, and never an answer byte.

use super::*;
use crate::session::Session;
use crate::store::Store;

const PEER: &str = "127.0.0.1:9";

fn limits(max_line_bytes: usize) -> Limits {
    Limits {
        max_line_bytes,
        max_pending_output: 1 << 20,
    }
}

/// A Graphite session and its engine, driven as a connection drives it.
struct Feed {
    session: Session,
    engine: Engine,
    limits: Limits,
}

impl Feed {
    fn new(max_line_bytes: usize) -> Feed {
        Feed::with_engine(max_line_bytes, Engine::in_memory(Store::new()))
    }

    fn with_engine(max_line_bytes: usize, engine: Engine) -> Feed {
        let limits = limits(max_line_bytes);
        let peer = PEER.parse().expect("an address");
        Feed {
            session: Session::new(crate::session::Protocol::Graphite, peer, &limits),
            engine,
            limits,
        }
    }

    /// One service call of a connection whose socket had `bytes`.
    fn send(&mut self, bytes: &[u8]) {
        self.session.begin(&mut self.engine, &self.limits);
        assert!(self.session.wants_input(&self.limits), "not reading");
        self.session.receive(bytes, &mut self.engine, &self.limits);
        assert_eq!(self.session.output().pending(), 0, "an answer byte");
        assert!(self.session.all_sent());
    }

    /// Every point as `key value timestamp` lines, as `get *` lists them.
    fn points(&self) -> String {
        let mut out = String::new();
        for (key, series) in self.engine.series_from(None) {
            for (t, v) in series.iter() {
                out.push_str(&format!("{key} {v:?} {t}\n"));
            }
        }
        out
    }

    fn figure(&self, name: &str) -> u64 {
        let figures = self.engine.figures();
        let found = figures.iter().find(|(n, _)| n == name);
        found.unwrap_or_else(|| panic!("no figure {name}")).1
    }
}

#[test]
fn lines_become_points_and_nothing_is_answered() {
    let mut feed = Feed::new(100);
    feed.send(b"a.b 1 100\nc;z=1;a=2 2.5 7\n");
    assert_eq!(feed.points(), "a.b 1.0 100\nc;a=2;z=1 2.5 7\n");
    assert_eq!(feed.figure("graphite.points"), 2);
    assert_eq!(feed.figure("requests.put"), 0, "graphite points are not put requests");
    assert!(feed.session.take_active());
    assert!(!feed.session.take_active());
}
