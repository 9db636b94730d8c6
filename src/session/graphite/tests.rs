//! The Graphite session byte-in/byte-out, without sockets: bytes in, the
//! store and the `stats` figures out, and never an answer byte.

use super::*;
use crate::session::Session;
use crate::store::Store;
use crate::test_support::TempDir;

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

/// Every kind of line the port may get, in one stream: `\r\n`, tabs and
/// runs of spaces, a fractional timestamp, tags out of order, and lines to
/// skip between good ones (garbage, NaN, infinity, too long, bad
/// timestamp, bad tag, a tab-only line that is no line at all).
const STREAM: &[u8] = b"a.b 1 100\r\n\
    \tc.d\t\t2.5   200 \n\
    garbage\n\
    e nan 300\n\
    f -inf 300\n\
    frac 3 400.9\n\
    cpu;host=x;dc=y 4 500\n\
    this.line.is.far.too.long.for.the.limit 5 600\n\
    g 6 7x\n\
    h;t 7 700\n\
    \t \n\
    -0 -0 -7\n\
    last 1e3 800\n";

const STREAM_POINTS: &str =
    "-0 -0.0 -7\na.b 1.0 100\nc.d 2.5 200\ncpu;dc=y;host=x 4.0 500\nfrac 3.0 400\nlast 1000.0 800\n";

/// The figures a feed of [`STREAM`] leaves, by name.
fn stream_figures(feed: &Feed) -> Vec<(&'static str, u64)> {
    [
        "graphite.points",
        "graphite.errors.wrong_field_count",
        "graphite.errors.non_finite_value",
        "graphite.errors.line_too_long",
        "graphite.errors.invalid_timestamp",
        "graphite.errors.invalid_tag",
        "graphite.errors.invalid_value",
    ]
    .into_iter()
    .map(|name| (name, feed.figure(name)))
    .collect()
}

#[test]
fn a_stream_is_stored_the_same_at_every_split_point_and_bad_lines_are_counted_by_cause() {
    let mut whole = Feed::new(32);
    whole.send(STREAM);
    assert_eq!(whole.points(), STREAM_POINTS);
    let want = vec![
        ("graphite.points", 6),
        ("graphite.errors.wrong_field_count", 1),
        ("graphite.errors.non_finite_value", 2),
        ("graphite.errors.line_too_long", 1),
        ("graphite.errors.invalid_timestamp", 1),
        ("graphite.errors.invalid_tag", 1),
        ("graphite.errors.invalid_value", 0),
    ];
    assert_eq!(stream_figures(&whole), want);
    for i in 0..=STREAM.len() {
        for j in i..=STREAM.len() {
            let mut feed = Feed::new(32);
            for piece in [&STREAM[..i], &STREAM[i..j], &STREAM[j..]] {
                feed.send(piece);
            }
            assert_eq!(feed.points(), STREAM_POINTS, "split at {i},{j}");
            assert_eq!(stream_figures(&feed), want, "split at {i},{j}");
        }
    }
}

#[test]
fn a_byte_at_a_time_stores_the_same() {
    let mut feed = Feed::new(32);
    for byte in STREAM {
        feed.send(std::slice::from_ref(byte));
    }
    assert_eq!(feed.points(), STREAM_POINTS);
}

#[test]
fn minus_one_or_no_timestamp_is_the_current_second() {
    let mut feed = Feed::new(100);
    let before = crate::clock::unix_now();
    feed.send(b"now.a 1 -1\nnow.b 2\nnow.c 3 -1.5\n");
    let after = crate::clock::unix_now();
    for key in ["now.a", "now.b", "now.c"] {
        let series = feed.engine.series(key).expect("stored");
        let points: Vec<_> = series.iter().collect();
        assert_eq!(points.len(), 1, "{key}");
        assert!((before..=after).contains(&points[0].0), "{key}: {points:?}");
    }
}

#[test]
fn an_over_long_line_is_skipped_without_being_kept_and_the_stream_goes_on() {
    let mut feed = Feed::new(16);
    feed.send(b"ok.1 1 1\n");
    // Far longer than the limit, in pieces, without its `\n` for a while.
    for _ in 0..1000 {
        feed.send(&[b'x'; 1000]);
    }
    feed.send(b" 1 2\nok.2 2 2\n");
    assert_eq!(feed.points(), "ok.1 1.0 1\nok.2 2.0 2\n");
    assert_eq!(feed.figure("graphite.errors.line_too_long"), 1);
    // A line of exactly the limit is a line.
    feed.send(b"k.123456789 1 99\n");
    assert_eq!(feed.figure("graphite.points"), 3);
}

#[test]
fn garbage_forever_is_counted_and_never_stops_the_session() {
    let mut feed = Feed::new(64);
    let garbage: Vec<u8> = (0..=255u8).cycle().take(1 << 16).collect();
    for _ in 0..16 {
        feed.send(&garbage);
        assert_eq!(feed.session.phase(), Phase::Reading);
    }
    feed.send(b"\ngood 1 1\n");
    assert_eq!(feed.points(), "good 1.0 1\n");
    let skipped: u64 = PlaintextError::ALL
        .iter()
        .map(|c| feed.figure(&format!("graphite.errors.{}", c.name())))
        .sum();
    assert!(skipped > 16, "{skipped}");
}

#[test]
fn a_point_sent_over_graphite_is_read_back_with_get_byte_for_byte() {
    let mut feed = Feed::new(100);
    feed.send(b"palm.cpu 23.7 1150864247\npalm.cpu\t1e-7\t1150864248.99\r\ncpu;b=2;a=1 -0 5\n");
    let peer = PEER.parse().expect("an address");
    let mut course = Session::new(crate::session::Protocol::Course, peer, &feed.limits);
    course.begin(&mut feed.engine, &feed.limits);
    course.receive(b"get palm.cpu\nget cpu;a=1;b=2\n", &mut feed.engine, &feed.limits);
    assert_eq!(
        course.output().sendable(),
        b"ok\npalm.cpu 23.7 1150864247\npalm.cpu 1e-7 1150864248\n\nok\ncpu;a=1;b=2 -0.0 5\n\n"
    );
}

#[test]
fn at_the_end_of_stream_or_a_stop_a_line_without_its_newline_is_dropped() {
    let mut feed = Feed::new(100);
    feed.send(b"a 1 1\nb 2");
    feed.session.end_of_input();
    assert_eq!(feed.session.phase(), Phase::Draining);
    feed.session.flushed();
    assert_eq!(feed.session.phase(), Phase::Closing);
    assert_eq!(feed.points(), "a 1.0 1\n");

    let mut feed = Feed::new(100);
    feed.send(b"a 1 1\nb 2");
    feed.session.stop();
    assert_eq!(feed.session.phase(), Phase::Stopping);
    assert!(
        !feed.session.wants_input(&feed.limits),
        "a stopping session reads nothing more"
    );
    assert!(feed.session.all_sent());
    feed.session.linger();
    feed.session.dropped_input();
    assert_eq!(feed.session.phase(), Phase::Lingering { dropped: true });
    feed.session.end_of_input();
    assert_eq!(feed.session.phase(), Phase::Closing);
    assert_eq!(feed.points(), "a 1.0 1\n");
}

fn datagram(engine: &mut Engine, bytes: &[u8], max_line_bytes: usize) {
    let peer = PEER.parse().expect("an address");
    receive_datagram(bytes, peer, engine, &limits(max_line_bytes));
}

#[test]
fn a_datagram_is_lines_and_its_last_line_needs_no_newline() {
    let mut feed = Feed::new(16);
    let datagrams: [&[u8]; 3] = [
        b"u.a 1 1\nu.b 2 2",
        b"u.c 3 3\r\n\nbad\nu.too.long.for.it 4 4\nu.d 5 5\n",
        b"",
    ];
    for bytes in datagrams {
        datagram(&mut feed.engine, bytes, 16);
    }
    assert_eq!(feed.points(), "u.a 1.0 1\nu.b 2.0 2\nu.c 3.0 3\nu.d 5.0 5\n");
    assert_eq!(feed.figure("graphite.datagrams"), 3);
    assert_eq!(feed.figure("graphite.points"), 4);
    assert_eq!(feed.figure("graphite.errors.wrong_field_count"), 1);
    assert_eq!(feed.figure("graphite.errors.line_too_long"), 1);
    let bytes: usize = datagrams.iter().map(|d| d.len()).sum();
    assert_eq!(feed.figure("bytes.in"), bytes as u64);
}

#[test]
fn points_are_journaled_in_the_turns_batch_and_survive_a_reopen() {
    let dir = TempDir::new("graphite-session-durable");
    let mut feed = Feed::with_engine(100, Engine::durable_in(&dir.0));
    feed.engine.begin_turn();
    feed.send(b"d.a 1 10\nd.b;z=1;a=2 2 20\n");
    datagram(&mut feed.engine, b"d.c 3 30", 100);
    assert_eq!(feed.engine.unlogged(), 3, "in the turn's batch like puts");
    feed.engine.commit().expect("commit");
    feed.engine.close().expect("close");
    let reopened = Feed::with_engine(100, Engine::durable_in(&dir.0));
    assert_eq!(reopened.points(), "d.a 1.0 10\nd.b;a=2;z=1 2.0 20\nd.c 3.0 30\n");
}

#[test]
fn points_the_log_cannot_keep_are_counted_and_taken_back() {
    let dir = TempDir::new("graphite-session-refused");
    let mut feed = Feed::with_engine(100, Engine::durable_in(&dir.0));
    feed.engine.begin_turn();
    feed.send(b"kept 1 1\n");
    feed.engine.commit().expect("commit");
    // A commit that fails takes the turn's points back out.
    feed.engine.begin_turn();
    feed.send(b"lost.a 1 1\nlost.b 2 2\n");
    feed.engine.break_log_for_test();
    assert!(feed.engine.commit().is_err());
    assert_eq!(feed.points(), "kept 1.0 1\n");
    assert_eq!(feed.figure("graphite.not_stored"), 2);
    assert_eq!(feed.figure("errors.not_stored"), 2);
    // With the data directory gone, points are refused as they come.
    std::fs::remove_dir_all(&dir.0).expect("remove the data directory");
    feed.engine.chores();
    feed.engine.begin_turn();
    feed.send(b"refused 1 1\n");
    assert_eq!(feed.engine.unlogged(), 0);
    assert_eq!(feed.points(), "kept 1.0 1\n");
    assert_eq!(feed.figure("graphite.not_stored"), 3);
    assert_eq!(feed.figure("graphite.points"), 4);
    assert_eq!(
        feed.session.phase(),
        Phase::Reading,
        "nothing to answer, nothing closed"
    );
}

#[test]
fn points_the_store_policy_refuses_are_counted_not_answered() {
    // Retention 100 s at 1,000 (the horizon is 900), and a memory limit
    // that one new key fills: what a store of one point holds, and some
    // room (the first key's estimate counts a little more than the tables
    // take), less than a second key's point and entries (37 bytes).
    let mut one = Store::new();
    one.put("a", 950, 1.0);
    let policy = crate::store::Policy {
        retention: Some(std::time::Duration::from_secs(100)),
        max_bytes: Some(one.allocated_bytes() as u64 + 30),
        ..Default::default()
    };
    let mut feed = Feed::with_engine(100, Engine::in_memory(Store::with_policy(policy, 1000)));
    feed.send(b"a 1 950\na 2 899\nb 3 960\n");
    assert_eq!(feed.points(), "a 1.0 950\n");
    assert_eq!(feed.figure("graphite.points"), 3);
    assert_eq!(feed.figure("graphite.not_stored"), 2);
    assert_eq!(feed.figure("refused.retention"), 1);
    assert_eq!(feed.figure("refused.memory"), 1);
    // Not the log's refusals.
    assert_eq!(feed.figure("errors.not_stored"), 0);
    // The connection goes on.
    feed.send(b"a 4 960\n");
    assert_eq!(feed.points(), "a 1.0 950\na 4.0 960\n");
}
