//! The course session byte-in/byte-out, without sockets: driven through
//! [`Session`] the way a connection drives it, with a peer that reads
//! every answer byte at once (or none, to fill the output). Other
//! protocols' tests drive their sessions with the same [`Peer`].

use super::*;
use crate::journal::AppendError;
use crate::protocol::response::{OK_EMPTY, WRONG_COMMAND};
use crate::store::Store;
use crate::test_support::TempDir;
use std::sync::Arc;

const PEER: &str = "127.0.0.1:9";

/// A session, its engine, and everything the peer has received.
pub(super) struct Peer {
    pub(super) session: Session,
    pub(super) engine: Engine,
    pub(super) limits: Limits,
    pub(super) received: Vec<u8>,
}

impl Peer {
    fn new(limits: Limits) -> Peer {
        Peer::with_engine(limits, Engine::in_memory(Store::new()))
    }

    fn with_engine(limits: Limits, engine: Engine) -> Peer {
        Peer::speaking(Protocol::Course, limits, engine)
    }

    pub(super) fn speaking(protocol: Protocol, limits: Limits, engine: Engine) -> Peer {
        let peer = PEER.parse().expect("an address");
        Peer {
            session: Session::new(protocol, peer, &limits),
            engine,
            limits,
            received: Vec::new(),
        }
    }

    /// One service call of a connection whose socket had `bytes`; the
    /// session must be willing to read.
    pub(super) fn send(&mut self, bytes: &[u8]) {
        self.session.begin(&mut self.engine, &self.limits);
        assert!(
            self.session.wants_input(&self.limits),
            "not reading in {:?}",
            self.session.phase()
        );
        self.session.receive(bytes, &mut self.engine, &self.limits);
    }

    /// The socket takes everything the session may send.
    pub(super) fn read_all(&mut self) {
        let n = {
            let sendable = self.session.output().sendable();
            self.received.extend_from_slice(sendable);
            sendable.len()
        };
        self.session.output_mut().sent(n);
        self.session.flushed();
    }

    /// Service calls with a reading peer until nothing is left to answer.
    pub(super) fn settle_down(&mut self) {
        for _ in 0..100_000 {
            self.read_all();
            if !self.session.has_backlog() {
                return;
            }
            self.session.begin(&mut self.engine, &self.limits);
        }
        panic!("the backlog never emptied");
    }

    pub(super) fn received(&self) -> &str {
        std::str::from_utf8(&self.received).expect("answers are UTF-8")
    }
}

fn roomy() -> Limits {
    Limits {
        max_line_bytes: 40,
        max_pending_output: 1 << 20,
    }
}

/// Valid and invalid requests of every kind the framer and parser tell
/// apart, with answers that depend on the requests before them.
const MIXED: &[u8] = b"put a.b 1.5 10\nget a.b\nput a.b 2 5\r\nget *\n\nbogus\nput k v 1\n\
    put a.b 3 10\nget a.b\nget none\n   \nput x\xff 1 1\nget  a.b\n\
    put this.line.is.longer.than.the.forty.byte.limit 1 1\nput c 1e300 -9223372036854775808\n\
    get *\nGET a.b\nput * 1 1\nget c\n";

/// The answers to requests sent in `pieces`.
fn answers(pieces: &[&[u8]]) -> String {
    answers_within(roomy(), pieces)
}

/// The answers to requests sent in `pieces`, under `limits`.
fn answers_within(limits: Limits, pieces: &[&[u8]]) -> String {
    let mut peer = Peer::new(limits);
    for piece in pieces {
        peer.send(piece);
        peer.settle_down();
    }
    peer.received().to_owned()
}

#[test]
fn a_pipeline_of_mixed_valid_and_invalid_lines_is_answered_in_order_exactly() {
    let want = [
        "ok\n\n",
        "ok\na.b 1.5 10\n\n",
        "ok\n\n",
        "ok\na.b 2.0 5\na.b 1.5 10\n\n",
        // The blank line gets no answer.
        "error\nwrong command\n\n",
        "error\nwrong command\n\n",
        "ok\n\n",
        "ok\na.b 2.0 5\na.b 3.0 10\n\n",
        "ok\n\n",
        // The blank line of spaces gets no answer either; runs of spaces
        // between fields are allowed.
        "error\nwrong command\n\n",
        "ok\na.b 2.0 5\na.b 3.0 10\n\n",
        "error\nwrong command\n\n",
        "ok\n\n",
        "ok\na.b 2.0 5\na.b 3.0 10\nc 1e300 -9223372036854775808\n\n",
        "error\nwrong command\n\n",
        "error\nwrong command\n\n",
        "ok\nc 1e300 -9223372036854775808\n\n",
    ]
    .concat();
    assert_eq!(answers(&[MIXED]), want);
}

#[test]
fn every_request_split_at_every_byte_gets_the_same_answers() {
    let whole = answers(&[MIXED]);
    for at in 0..=MIXED.len() {
        let (a, b) = MIXED.split_at(at);
        assert_eq!(answers(&[a, b]), whole, "split at byte {at}");
    }
    let bytes: Vec<&[u8]> = MIXED.chunks(1).collect();
    assert_eq!(answers(&bytes), whole, "one byte at a time");
    // Throttled after every answer: held lines and split lines together.
    let tight = Limits {
        max_line_bytes: 40,
        max_pending_output: 1,
    };
    for at in 0..=MIXED.len() {
        let (a, b) = MIXED.split_at(at);
        assert_eq!(
            answers_within(tight.clone(), &[a, b]),
            whole,
            "split at byte {at}, throttled"
        );
    }
}

#[test]
fn a_full_output_stops_reading_and_a_drained_one_resumes() {
    let puts: Vec<u8> = (0..50).flat_map(|i| format!("put k 1 {i}\n").into_bytes()).collect();
    let mut peer = Peer::new(Limits {
        max_line_bytes: 40,
        max_pending_output: 10,
    });
    peer.send(&puts);
    // Answers stop as soon as the output passes its limit; the rest waits.
    assert_eq!(peer.session.phase(), Phase::Throttled);
    assert!(!peer.session.wants_input(&peer.limits));
    assert!(peer.session.has_backlog());
    assert_eq!(peer.session.output().pending(), 3 * OK_EMPTY.len());
    // A peer that does not read gets nothing more answered.
    peer.session.begin(&mut peer.engine, &peer.limits);
    assert_eq!(peer.session.output().pending(), 3 * OK_EMPTY.len());
    assert_eq!(peer.session.phase(), Phase::Throttled);
    // Once it reads, the held lines are answered, a few per call.
    peer.settle_down();
    assert_eq!(peer.session.phase(), Phase::Reading);
    assert!(peer.session.wants_input(&peer.limits));
    assert_eq!(peer.received(), "ok\n\n".repeat(50));

    // A long answer throttles too, and goes on where it stopped.
    peer.received.clear();
    peer.send(b"get k\nget none\n");
    assert_eq!(peer.session.phase(), Phase::Throttled);
    peer.settle_down();
    let points: String = (0..50).map(|t| format!("k 1.0 {t}\n")).collect();
    assert_eq!(peer.received(), format!("ok\n{points}\nok\n\n"));
    assert_eq!(peer.session.phase(), Phase::Reading);
}

#[test]
fn a_stop_answers_what_was_read_then_lingers_until_the_peer_closes() {
    let mut peer = Peer::new(Limits {
        max_line_bytes: 40,
        max_pending_output: 4,
    });
    // The last line is incomplete: it is never answered.
    peer.send(b"put a 1 1\nget a\nput b 2 2\nget b");
    assert_eq!(peer.session.phase(), Phase::Throttled);
    peer.session.stop();
    assert_eq!(peer.session.phase(), Phase::Stopping);
    assert!(!peer.session.wants_input(&peer.limits));
    peer.settle_down();
    assert_eq!(peer.received(), "ok\n\nok\na 1.0 1\n\nok\n\n");
    assert!(peer.session.all_sent());
    assert_eq!(peer.session.phase(), Phase::Stopping);
    peer.session.linger();
    assert_eq!(peer.session.phase(), Phase::Lingering { dropped: false });
    peer.session.dropped_input();
    assert_eq!(peer.session.phase(), Phase::Lingering { dropped: true });
    peer.session.end_of_input();
    assert_eq!(peer.session.phase(), Phase::Closing);

    // Stopped while reading: only an incomplete line was waiting.
    let mut idle = Peer::new(roomy());
    idle.send(b"get a\nput");
    idle.read_all();
    idle.session.stop();
    assert_eq!(idle.session.phase(), Phase::Stopping);
    assert!(idle.session.all_sent());
    assert_eq!(idle.received(), "ok\n\n");
}

#[test]
fn the_peers_end_of_stream_drains_then_closes() {
    let mut peer = Peer::new(roomy());
    peer.send(b"get a\nput a 1");
    peer.session.end_of_input();
    assert_eq!(peer.session.phase(), Phase::Draining);
    // The stop of the server does not make a closed peer linger.
    peer.session.stop();
    assert_eq!(peer.session.phase(), Phase::Draining);
    peer.read_all();
    assert_eq!(peer.session.phase(), Phase::Closing);
    assert_eq!(peer.received(), "ok\n\n");
}

/// Sends `requests`, `logged` of them puts or deletes, to a durable session
/// and settles its held output with `commit`; returns what was sent
/// before, and after.
fn held(requests: &[u8], logged: usize, commit: Result<(), &EngineError>) -> (String, String) {
    let dir = TempDir::new("session-held");
    let mut peer = Peer::with_engine(roomy(), Engine::durable_in(&dir.0));
    peer.send(requests);
    assert!(peer.session.output().is_holding());
    assert_eq!(peer.engine.unlogged(), logged);
    peer.read_all();
    let before = peer.received().to_owned();
    peer.received.clear();
    assert_eq!(peer.engine.commit().map_err(|e| e.to_string()), Ok(()));
    peer.session.settle(commit);
    assert!(!peer.session.output().is_holding());
    peer.read_all();
    (before, peer.received().to_owned())
}

#[test]
fn put_answers_wait_for_the_commit_and_turn_into_errors_if_it_fails() {
    // Only what precedes the first logged put is sent before the commit.
    const PUTS: &[u8] = b"get a\nput a 1 1\nbad\nget a\nput b 2 2\n";
    let (before, after) = held(PUTS, 2, Ok(()));
    assert_eq!(before, "ok\n\n");
    assert_eq!(after, "ok\n\nerror\nwrong command\n\nok\na 1.0 1\n\nok\n\n");

    let full = EngineError::NotStored(AppendError::Write(Arc::new(std::io::Error::other("disk full"))));
    let (before, after) = held(PUTS, 2, Err(&full));
    assert_eq!(before, "ok\n\n");
    let refused = "error\nnot stored: cannot write the log: disk full\n\n";
    assert_eq!(
        after,
        format!(
            "{refused}{}ok\na 1.0 1\n\n{refused}",
            std::str::from_utf8(WRONG_COMMAND).unwrap()
        )
    );
}

/// `range` among puts and gets, valid and malformed, with answers that
/// depend on the puts before them.
const RANGES: &[u8] = b"put r 1 100\nput r 2 105\nput r 4 110\nput s -1 -7\n\
    range r 100 105\nrange r 101 109 5 sum\r\nget r\nrange * -10 104\nrange * -100 200 60 count\n\
    put r 8 106\nrange r 105 106 2 avg\nrange r 6 5\nrange r 0 9 0 max\nrange r 0 9 5 median\n\
    range r 0 x\nrange r 0 9 5\nrange r 0 200 1000 last\nrange none 0 9\nrange r 111 200\n";

#[test]
fn ranges_in_a_pipeline_are_answered_in_order_exactly() {
    let want = [
        "ok\n\n".repeat(4),
        "ok\nr 1.0 100\nr 2.0 105\n\n".to_owned(),
        // 105 in the bucket of 105; 110 is past the window.
        "ok\nr 2.0 105\n\n".to_owned(),
        "ok\nr 1.0 100\nr 2.0 105\nr 4.0 110\n\n".to_owned(),
        "ok\nr 1.0 100\ns -1.0 -7\n\n".to_owned(),
        // Buckets of 60 s: -7 in the one of -60, 100-110 in the one of 60.
        "ok\nr 3.0 60\ns 1.0 -60\n\n".to_owned(),
        "ok\n\n".to_owned(),
        // Buckets of 2 s: 105 is in the one of 104, 106 in its own.
        "ok\nr 2.0 104\nr 8.0 106\n\n".to_owned(),
        "error\nwrong command\n\n".repeat(5),
        "ok\nr 4.0 0\n\n".to_owned(),
        "ok\n\n".repeat(2),
    ]
    .concat();
    assert_eq!(answers(&[RANGES]), want);
    let mut peer = Peer::new(roomy());
    peer.send(RANGES);
    peer.settle_down();
    let figures = peer.engine.figures();
    let count = |name: &str| figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(count("requests.range"), Some(8));
    assert_eq!(count("requests.get"), Some(1));
    for cause in [
        "reversed_range",
        "invalid_step",
        "unknown_function",
        "invalid_bound",
        "wrong_arity",
    ] {
        assert_eq!(count(&format!("errors.{cause}")), Some(1), "{cause}");
    }
}

#[test]
fn range_requests_split_at_every_byte_get_the_same_answers() {
    let whole = answers(&[RANGES]);
    let tight = Limits {
        max_line_bytes: 40,
        max_pending_output: 1,
    };
    for at in 0..=RANGES.len() {
        let (a, b) = RANGES.split_at(at);
        assert_eq!(answers(&[a, b]), whole, "split at byte {at}");
        assert_eq!(
            answers_within(tight.clone(), &[a, b]),
            whole,
            "split at {at}, throttled"
        );
    }
    let bytes: Vec<&[u8]> = RANGES.chunks(1).collect();
    assert_eq!(answers_within(tight, &bytes), whole, "one byte at a time, throttled");
}

#[test]
fn long_range_answers_come_in_slices_under_a_tiny_output_limit() {
    let mut puts = Vec::new();
    for t in 0..600 {
        puts.extend_from_slice(format!("put k {t} {t}\nput j 0.5 {t}\n").as_bytes());
    }
    let requests = b"range k 100 399\nrange * 590 1000\nrange * 0 599 100 max\nget none\n";
    let points: String = (100..400).map(|t| format!("k {t}.0 {t}\n")).collect();
    let tail: String = ["j", "k"]
        .iter()
        .flat_map(|key| (590..600).map(move |t| (key, t)))
        .map(|(key, t)| match *key {
            "j" => format!("j 0.5 {t}\n"),
            _ => format!("k {t}.0 {t}\n"),
        })
        .collect();
    let maxes: String = (0..6).map(|b| format!("j 0.5 {}\n", b * 100)).collect::<String>()
        + &(0..6)
            .map(|b| format!("k {}.0 {}\n", b * 100 + 99, b * 100))
            .collect::<String>();
    let want = format!("ok\n{points}\nok\n{tail}\nok\n{maxes}\nok\n\n");
    for limit in [1, 2, 7, 13, 64, 1000] {
        let mut peer = Peer::new(Limits {
            max_line_bytes: 40,
            max_pending_output: limit,
        });
        peer.send(&puts);
        peer.settle_down();
        peer.received.clear();
        peer.send(requests);
        // The first slice stops at the limit: the answer waits for the peer.
        assert!(peer.session.output().pending() < limit + 40, "limit {limit}");
        assert_eq!(peer.session.phase(), Phase::Throttled);
        peer.settle_down();
        assert_eq!(peer.received(), want, "limit {limit}");
        assert_eq!(peer.session.phase(), Phase::Reading);
    }
}

/// An engine whose store keeps `policy`, at Unix time 1000.
fn engine_keeping(policy: crate::store::Policy) -> Engine {
    Engine::in_memory(Store::with_policy(policy, 1000))
}

/// The answers to `pieces` from a session over `engine()`.
fn answers_from(engine: fn() -> Engine, limits: Limits, pieces: &[&[u8]]) -> String {
    let mut peer = Peer::with_engine(limits, engine());
    for piece in pieces {
        peer.send(piece);
        peer.settle_down();
    }
    peer.received().to_owned()
}

/// Every split of `input` in two, roomy and throttled, answers as it does
/// whole.
fn check_every_split(engine: fn() -> Engine, input: &[u8], whole: &str) {
    let tight = Limits {
        max_line_bytes: 40,
        max_pending_output: 1,
    };
    for at in 0..=input.len() {
        let (a, b) = input.split_at(at);
        assert_eq!(answers_from(engine, roomy(), &[a, b]), whole, "split at byte {at}");
        assert_eq!(
            answers_from(engine, tight.clone(), &[a, b]),
            whole,
            "split at {at}, throttled"
        );
    }
}

#[test]
fn a_put_older_than_the_retention_is_an_error_and_the_connection_goes_on() {
    // Retention 100 s at 1000: the horizon is 900.
    fn engine() -> Engine {
        engine_keeping(crate::store::Policy {
            retention: Some(std::time::Duration::from_secs(100)),
            ..Default::default()
        })
    }
    const INPUT: &[u8] = b"put k 1 950\nput k 1 899\nget k\nput j 3 -5\nrange * 0 2000\nput k 2 900\nget k\nget j\n";
    let want = [
        "ok\n\n",
        "error\nnot stored: older than retention\n\n",
        "ok\nk 1.0 950\n\n",
        "error\nnot stored: older than retention\n\n",
        "ok\nk 1.0 950\n\n",
        "ok\n\n",
        "ok\nk 2.0 900\nk 1.0 950\n\n",
        "ok\n\n",
    ]
    .concat();
    let whole = answers_from(engine, roomy(), &[INPUT]);
    assert_eq!(whole, want);
    check_every_split(engine, INPUT, &want);
    let mut peer = Peer::with_engine(roomy(), engine());
    peer.send(INPUT);
    peer.settle_down();
    let figures = peer.engine.figures();
    let figure = |name: &str| figures.iter().find(|(n, _)| n == name).map(|f| f.1);
    assert_eq!(figure("refused.retention"), Some(2));
    assert_eq!(figure("errors.not_stored"), Some(0));
}

#[test]
fn a_put_past_the_memory_limit_is_an_error_and_reads_go_on() {
    fn engine() -> Engine {
        engine_keeping(crate::store::Policy {
            max_bytes: Some(1000),
            ..Default::default()
        })
    }
    // Values of many digits: a packed point then takes some 60 bits, so
    // that the puts fill the budget.
    let value = |t: usize| 1.0 + t as f64 / 100.0 + 1e-9;
    let input: Vec<u8> = (0..100)
        .map(|t| format!("put k {:?} {t}\n", value(t)))
        .chain(["put another.key 1 1\nget k\n".to_owned()])
        .collect::<String>()
        .into_bytes();
    let whole = answers_from(engine, roomy(), &[&input]);
    // The first puts fill the budget; every later one is refused.
    let stored = whole.matches("ok\n\n").count();
    assert!((5..90).contains(&stored), "{stored} stored:\n{whole}");
    let full = "error\nnot stored: memory limit reached\n\n";
    let points: String = (0..stored).map(|t| format!("k {:?} {t}\n", value(t))).collect();
    let want = [
        "ok\n\n".repeat(stored),
        full.repeat(101 - stored),
        format!("ok\n{points}\n"),
    ]
    .concat();
    assert_eq!(whole, want);
    check_every_split(engine, &input, &want);
}

/// Deletes among puts and gets, valid and not.
const DELETES: &[u8] = b"put a 1 1\nput a 2 2\nput b 3 3\ndelete a\nget a\nget *\ndelete a\ndelete none\n\
    delete *\ndelete\ndelete a b\nDELETE b\nput a 4 4\nget a\ndelete\tb\r\nget *\n";

#[test]
fn delete_answers_ok_whether_or_not_the_key_existed_and_takes_every_point() {
    let want = [
        "ok\n\n",
        "ok\n\n",
        "ok\n\n",
        // delete a, then a has nothing and `get *` only has b.
        "ok\n\n",
        "ok\n\n",
        "ok\nb 3.0 3\n\n",
        // Again, and a key that never existed: the same answer.
        "ok\n\n",
        "ok\n\n",
        // `delete *`, no key, two keys, upper case.
        "error\nwrong command\n\n",
        "error\nwrong command\n\n",
        "error\nwrong command\n\n",
        "error\nwrong command\n\n",
        // A put after a delete stores afresh.
        "ok\n\n",
        "ok\na 4.0 4\n\n",
        "ok\n\n",
        "ok\na 4.0 4\n\n",
    ]
    .concat();
    let whole = answers(&[DELETES]);
    assert_eq!(whole, want);
    for at in 0..=DELETES.len() {
        let (a, b) = DELETES.split_at(at);
        assert_eq!(answers(&[a, b]), whole, "split at byte {at}");
    }
    let mut peer = Peer::new(roomy());
    peer.send(DELETES);
    let figures = peer.engine.figures();
    let figure = |name: &str| figures.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    assert_eq!(figure("requests.delete"), Some(4));
    assert_eq!(figure("errors.wildcard_delete"), Some(1));
    assert_eq!(figure("errors.wrong_arity"), Some(2));
    assert_eq!(figure("points"), Some(1));
}

#[test]
fn delete_answers_wait_for_the_commit_like_puts() {
    let full = EngineError::NotStored(AppendError::Write(Arc::new(std::io::Error::other("disk full"))));
    let (before, after) = held(b"get a\ndelete a\nget a\n", 1, Err(&full));
    assert_eq!(before, "ok\n\n");
    assert_eq!(after, "error\nnot stored: cannot write the log: disk full\n\nok\n\n");
}

/// An engine holding `keys` one-point series whose `get *` answer is many
/// times [`ALWAYS_ALLOWED_OUTPUT_BYTES`]; and that answer.
fn big_store(keys: usize) -> (Engine, String) {
    let mut engine = Engine::in_memory(Store::new());
    let mut answer = String::from("ok\n");
    for i in 0..keys {
        let key = format!("series.{i:06}");
        engine.store_mut().put(&key, i as i64, 1.5);
        answer.push_str(&format!("{key} 1.5 {i}\n"));
    }
    answer.push('\n');
    (engine, answer)
}

#[test]
fn past_the_shared_output_memory_a_session_stops_at_its_always_allowed_output() {
    use super::bounds::ALWAYS_ALLOWED_OUTPUT_BYTES as ALWAYS;
    let limits = Limits {
        max_line_bytes: 1024,
        max_pending_output: 1 << 30,
    };
    let (mut engine, whole) = big_store(40_000);
    assert!(whole.len() > 10 * ALWAYS);
    // Other connections hold all the memory answers may take.
    engine.limit_output(1 << 20);
    engine.output_changed(0, 1 << 20);
    let mut peer = Peer::with_engine(limits.clone(), engine);
    peer.send(b"get *\nput x 1 1\n");
    let pending = peer.session.output().pending();
    assert!((ALWAYS..ALWAYS + 64).contains(&pending), "{pending} bytes");
    assert!(peer.session.waits_for_shared_room(&limits));
    assert_eq!(peer.session.phase(), Phase::Throttled);
    // A peer that does not read gets nothing more.
    peer.session.begin(&mut peer.engine, &limits);
    assert_eq!(peer.session.output().pending(), pending);
    // One that reads gets all of it, that much at a time, and the put after.
    peer.settle_down();
    assert_eq!(peer.received(), format!("{whole}ok\n\n"));
    assert!(!peer.session.waits_for_shared_room(&limits));

    // Room under the limit is used up to the slice of one call.
    let (mut engine, _) = big_store(40_000);
    engine.limit_output(3 * ALWAYS);
    let mut peer = Peer::with_engine(limits.clone(), engine);
    peer.send(b"get *\n");
    let pending = peer.session.output().pending();
    assert!((3 * ALWAYS..3 * ALWAYS + 64).contains(&pending), "{pending} bytes");
    assert!(peer.session.waits_for_shared_room(&limits));
}
