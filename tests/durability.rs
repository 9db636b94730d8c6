//! Durability over real processes: restarts, `kill -9` in the middle of
//! pipelined writes, torn and damaged files, compaction under load and a
//! crash inside it, a full disk, the lock, graceful and hurried stops.
//!
//! Every server here is a child process with its own data directory under
//! the system's temporary directory, on 127.0.0.1.

mod common;

use common::{exchange, read_answers, read_to_close, wait_until, TempDir, TestServer, XorShift, IO_TIMEOUT};
use metricsd::journal::format::{parse_file_header, scan, Scan, FILE_HEADER_BYTES, LOG_MAGIC, SNAPSHOT_MAGIC};
use metricsd::Client;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

/// (key, timestamp) → value bits: exact, -0.0 and all.
type Model = BTreeMap<(String, i64), u64>;

fn durable(dir: &TempDir, extra: &[&str]) -> TestServer {
    let mut args = vec!["--data-dir", dir.path()];
    args.extend_from_slice(extra);
    TestServer::start(&args)
}

fn client(server: &TestServer) -> Client {
    Client::new("127.0.0.1", server.addr.port(), Some(IO_TIMEOUT)).expect("connect")
}

fn everything(server: &TestServer) -> Model {
    let mut model = Model::new();
    for (key, points) in client(server).get("*").expect("get *") {
        for (timestamp, value) in points {
            model.insert((key.clone(), timestamp), value.to_bits());
        }
    }
    model
}

/// Compares stored points with the model, naming the first differences
/// instead of printing thousands of points.
#[track_caller]
fn assert_same(stored: &Model, model: &Model, context: &str) {
    if stored == model {
        return;
    }
    let missing: Vec<_> = model
        .iter()
        .filter(|(k, v)| stored.get(*k) != Some(v))
        .take(5)
        .collect();
    let extra: Vec<_> = stored.iter().filter(|(k, _)| !model.contains_key(*k)).take(5).collect();
    panic!(
        "{context}: {} points stored, {} expected; first missing or different: {missing:?}; first unexpected: {extra:?}",
        stored.len(),
        model.len()
    );
}

fn put_all(server: &TestServer, puts: &[(String, f64, Option<i64>)], model: &mut Model) {
    client(server).put_many(puts).expect("put_many");
    for (key, value, timestamp) in puts {
        model.insert((key.clone(), timestamp.expect("explicit timestamps")), value.to_bits());
    }
}

/// Random puts over few keys and timestamps, so many overwrite.
fn random_puts(rng: &mut XorShift, n: usize) -> Vec<(String, f64, Option<i64>)> {
    (0..n)
        .map(|_| {
            let key = format!("dur.k{}", rng.below(40));
            let value = (rng.next() % 1_000_000) as f64 / 8.0 - 50_000.0;
            (key, value, Some(rng.below(300) as i64 - 100))
        })
        .collect()
}

/// Runs the binary to completion (for starts that must fail).
fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_metricsd"))
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run metricsd");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn restarts_keep_everything_in_every_fsync_mode() {
    for (seed, mode) in ["always", "everysec", "never"].into_iter().enumerate() {
        let dir = TempDir::new(mode);
        let mut rng = XorShift::seeded(seed as u64 + 1);
        let mut model = Model::new();
        for round in 0..3 {
            let server = durable(&dir, &["--fsync", mode]);
            assert_same(&everything(&server), &model, &format!("{mode}: after restart {round}"));
            put_all(&server, &random_puts(&mut rng, 3000), &mut model);
            assert_same(&everything(&server), &model, &format!("{mode}: before stop {round}"));
            server.stop();
        }
        let server = durable(&dir, &["--fsync", mode]);
        assert_same(&everything(&server), &model, &format!("{mode}: last restart"));
    }
}

/// Puts of one connection in the kill test: distinct (key, timestamp) per
/// round and connection, so what an answer acknowledged is exact.
fn kill_round_put(round: u64, conn: u64, i: u64) -> (String, i64, f64) {
    let key = format!("kill.c{conn}.k{}", i % 7);
    let timestamp = (round * 10_000_000 + i) as i64;
    (key, timestamp, (round * 1000 + conn) as f64 + 0.25)
}

/// Pipelines puts on one connection until it breaks; returns how many were
/// acknowledged (answers come in order, so they are the first ones sent).
fn pipeline_until_broken(server: &TestServer, round: u64, conn: u64) -> std::thread::JoinHandle<u64> {
    let mut stream = server.connect();
    std::thread::spawn(move || {
        let mut writer = stream.try_clone().expect("clone");
        std::thread::spawn(move || {
            let mut i = 0;
            // Bounded: the server is killed long before this is sent.
            while i < 2_000_000 {
                let mut batch = String::new();
                for _ in 0..200 {
                    let (key, timestamp, value) = kill_round_put(round, conn, i);
                    batch.push_str(&format!("put {key} {value} {timestamp}\n"));
                    i += 1;
                }
                if writer.write_all(batch.as_bytes()).is_err() {
                    return;
                }
            }
        });
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => answers.extend_from_slice(&buf[..n]),
            }
        }
        let whole = answers.len() / 4 * 4;
        assert!(
            answers[..whole].chunks(4).all(|a| a == b"ok\n\n"),
            "an answer other than ok"
        );
        (whole / 4) as u64
    })
}

#[test]
fn kill_nine_in_the_middle_of_pipelined_writes_loses_no_acknowledged_put() {
    const CONNECTIONS: u64 = 4;
    let dir = TempDir::new("kill9");
    let mut rng = XorShift::seeded(9);
    // Per round, per connection: how many puts were acknowledged.
    let mut acked: Vec<(u64, u64, u64)> = Vec::new();
    for round in 0..5 {
        let mut server = durable(&dir, &["--fsync", "always"]);
        check_after_kill(&server, &acked, round);
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|conn| pipeline_until_broken(&server, round, conn))
            .collect();
        // Killed after a random share of the work, not of the time: at any
        // speed some puts are acknowledged and many are in flight.
        let stored = 1 + rng.below(20_000);
        wait_until(&format!("{stored} puts of round {round}"), || {
            figure(&server, "requests.put") >= stored
        });
        server.signal("KILL");
        assert_eq!(server.wait_exit(), None, "killed by the signal");
        for (conn, worker) in workers.into_iter().enumerate() {
            acked.push((round, conn as u64, worker.join().expect("worker")));
        }
    }
    let server = durable(&dir, &["--fsync", "always"]);
    check_after_kill(&server, &acked, 5);
    assert!(acked.iter().map(|a| a.2).sum::<u64>() > 0, "nothing was acknowledged");
}

/// Every acknowledged put is there with its value; anything else there is
/// a put that was sent, with exactly the value sent (not corrupted).
fn check_after_kill(server: &TestServer, acked: &[(u64, u64, u64)], rounds: u64) {
    let stored = everything(server);
    for &(round, conn, count) in acked {
        for i in 0..count {
            let (key, timestamp, value) = kill_round_put(round, conn, i);
            assert_eq!(
                stored.get(&(key.clone(), timestamp)),
                Some(&value.to_bits()),
                "acknowledged put {key} {timestamp} of round {round} lost"
            );
        }
    }
    for ((key, timestamp), bits) in &stored {
        let (round, i) = (*timestamp as u64 / 10_000_000, *timestamp as u64 % 10_000_000);
        let conn: u64 = key["kill.c".len()..key.find(".k").expect("key")].parse().expect("conn");
        assert!(round < rounds, "{key} {timestamp} from the future");
        assert_eq!(
            kill_round_put(round, conn, i),
            (key.clone(), *timestamp, f64::from_bits(*bits))
        );
    }
}

/// Stores `n` puts one request at a time, so each is a record of its own.
fn records_one_by_one(server: &TestServer, n: i64, model: &mut Model) {
    let mut client = client(server);
    for i in 0..n {
        let key = format!("rec.{}", i % 5);
        client.put(&key, i as f64 * 1.5, Some(i)).expect("put");
        model.insert((key, i), (i as f64 * 1.5).to_bits());
    }
}

/// A stopped server's data directory holding `n` puts, one record each.
fn directory_of_records(name: &str, n: i64) -> (TempDir, Model) {
    let dir = TempDir::new(name);
    let mut model = Model::new();
    let server = durable(&dir, &[]);
    records_one_by_one(&server, n, &mut model);
    server.stop();
    (dir, model)
}

fn log_path(dir: &TempDir) -> std::path::PathBuf {
    let logs: Vec<String> = dir.files().into_iter().filter(|f| f.starts_with("log-")).collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    dir.0.join(&logs[0])
}

#[test]
fn a_torn_tail_is_cut_with_a_warning_and_earlier_points_stay() {
    let (dir, mut model) = directory_of_records("torn", 40);
    let mut rng = XorShift::seeded(77);
    for garbage_len in [1, 7, 8, 9, 100, 4096, 70_000] {
        let garbage: Vec<u8> = (0..garbage_len).map(|_| rng.next() as u8).collect();
        let log = log_path(&dir);
        let good_len = std::fs::metadata(&log).unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(&garbage)
            .unwrap();
        let server = durable(&dir, &[]);
        assert_same(
            &everything(&server),
            &model,
            &format!("after {garbage_len} bytes of garbage"),
        );
        let log_text = server.stop();
        assert!(
            log_text.contains(&format!("cut a torn tail of {garbage_len} bytes")),
            "{log_text}"
        );
        assert_eq!(std::fs::metadata(&log).unwrap().len(), good_len, "the tail was cut");
    }
    // A record cut short, as a crash in the middle of its write leaves it:
    // that put (never acknowledged in a real crash) is gone, the rest stay.
    cut_log_end(&dir, 3);
    model.remove(&("rec.4".to_owned(), 39));
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "stored");
    assert!(server.stop().contains("torn tail"));
}

#[test]
fn client_chosen_bytes_cannot_pass_for_a_record_after_a_torn_tail() {
    let (dir, model) = directory_of_records("forged", 5);
    let server = durable(&dir, &[]);
    // One put whose timestamp and value bytes hold a whole 9-byte record
    // (length 1, its plain CRC-32, kind PUTS): without the per-file salt,
    // recovery took it for a good record after the torn tail below and
    // refused to start.
    let mut s = server.connect();
    let forged = b"put f 1 1\nput k 1.0000000000000002 -8338997197836124159\nput f 2 2\nput f 3 3\n";
    assert_eq!(exchange(&mut s, forged, 4), "ok\n\n".repeat(4));
    drop(s);
    server.stop();
    cut_log_end(&dir, 5);
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "the torn record is cut, the rest kept");
}

/// Cuts `bytes` off the end of the one log, as a torn write leaves it.
fn cut_log_end(dir: &TempDir, bytes: u64) {
    let log = std::fs::OpenOptions::new().write(true).open(log_path(dir)).unwrap();
    let len = log.metadata().unwrap().len();
    log.set_len(len - bytes).unwrap();
}

/// Offsets where the records of a file of `magic` start, after its header.
fn record_starts(bytes: &[u8], magic: &[u8; 16]) -> Vec<usize> {
    let salt = parse_file_header(&bytes[..FILE_HEADER_BYTES], magic).expect("a header of ours");
    let mut at = FILE_HEADER_BYTES;
    let mut starts = Vec::new();
    while at < bytes.len() {
        starts.push(at);
        match scan(&bytes[at..], salt) {
            Scan::Record { len, .. } => at += len,
            other => panic!("log unreadable at {at}: {other:?}"),
        }
    }
    starts
}

#[test]
fn damage_in_the_middle_is_refused_and_repair_keeps_what_precedes_it() {
    let (dir, model) = directory_of_records("damage", 30);
    let log = log_path(&dir);
    let mut bytes = std::fs::read(&log).unwrap();
    let starts = record_starts(&bytes, LOG_MAGIC);
    assert_eq!(starts.len(), 30, "one record per acknowledged put");
    // Flip one bit inside record 12's body: records 0..12 stay good.
    bytes[starts[12] + 10] ^= 0x10;
    std::fs::write(&log, &bytes).unwrap();

    let (code, stderr) = run_to_exit(&["--data-dir", dir.path()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("is damaged at byte {}", starts[12])) && stderr.contains("--repair"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "a refused start changes nothing");

    let kept: Model = model
        .iter()
        .filter(|((_, t), _)| *t < 12)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    let server = durable(&dir, &["--repair"]);
    assert_same(&everything(&server), &kept, "stored");
    assert!(server.stop().contains("--repair"));
    // The repair cut the file: a plain start works and sees the same.
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &kept, "stored");
}

/// One figure of the server's `stats` answer.
fn figure(server: &TestServer, name: &str) -> u64 {
    let stats = client(server).stats().expect("stats");
    let (_, value) = stats.iter().find(|(n, _)| n == name).expect("a figure of that name");
    value.parse().expect("an integer")
}

/// Asks for `name` until it is at least `want`.
#[track_caller]
fn wait_for_figure(server: &TestServer, name: &str, want: u64) {
    wait_until(&format!("{name} to reach {want}"), || figure(server, name) >= want);
}

#[test]
fn a_repaired_snapshot_is_replaced_at_once_and_the_compaction_floor_still_holds() {
    let dir = TempDir::new("repair-snapshot");
    let mut rng = XorShift::seeded(11);
    let mut model = Model::new();
    let server = durable(&dir, &[]);
    put_all(&server, &random_puts(&mut rng, 3000), &mut model);
    server.stop();
    // A floor of one byte and no puts: one compaction, right after start
    // (a second would need the new log to outgrow the snapshot).
    let server = durable(&dir, &["--compact-min-bytes", "1"]);
    wait_for_figure(&server, "log.compactions", 1);
    server.stop();

    let snapshots: Vec<String> = dir.files().into_iter().filter(|f| f.starts_with("snapshot-")).collect();
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    let path = dir.0.join(&snapshots[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let starts = record_starts(&bytes, SNAPSHOT_MAGIC);
    assert!(starts.len() > 10, "{} records", starts.len());
    // Damage in the middle, good records after it: a repair keeps the front.
    bytes[starts[starts.len() / 2] + 10] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    // The generation recovery resumes: that of the newest log.
    let generation = (dir.files().iter())
        .filter_map(|f| f.strip_prefix("log-")?.parse::<u64>().ok())
        .max()
        .expect("a log");
    // The default floor (64 MiB), far above anything written here.
    let server = durable(&dir, &["--repair"]);
    // The cut snapshot is replaced by a compaction that begins at once.
    wait_for_figure(&server, "log.compactions", 1);
    let replaced = figure(&server, "log.generation");
    assert_eq!(replaced, generation + 1);
    let snapshot_len = std::fs::metadata(dir.0.join(format!("snapshot-{replaced:010}")))
        .unwrap()
        .len();
    // More log than the new snapshot holds, far below the floor: no
    // compaction begins (a repaired start used to lose the floor for the
    // rest of the process, compacting whenever the log outgrew the snapshot).
    put_all(&server, &random_puts(&mut rng, 6000), &mut model);
    assert_eq!(figure(&server, "log.generation"), replaced, "a compaction began");
    assert!(
        figure(&server, "log.bytes") > snapshot_len,
        "the log outgrew the snapshot"
    );
    assert_eq!(figure(&server, "log.compactions"), 1);
}

/// Deletes every point of `key`, in the server and in the model.
fn delete(server: &TestServer, key: &str, model: &mut Model) {
    client(server).delete(key).expect("delete");
    model.retain(|(k, _), _| k != key);
}

#[test]
fn deletes_survive_restarts_and_compaction_and_later_puts_store_afresh() {
    let dir = TempDir::new("deletes");
    let mut rng = XorShift::seeded(21);
    let mut model = Model::new();
    let server = durable(&dir, &["--fsync", "always"]);
    put_all(&server, &random_puts(&mut rng, 3000), &mut model);
    for k in 0..10 {
        delete(&server, &format!("dur.k{k}"), &mut model);
    }
    put_all(&server, &[("dur.k0".to_owned(), 1.5, Some(7))], &mut model);
    assert_same(&everything(&server), &model, "before the restart");
    server.stop();

    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "after the restart");
    delete(&server, "dur.k10", &mut model);
    server.stop();
    // A compaction writes what is left: the deleted keys are not in it.
    let server = durable(&dir, &["--compact-min-bytes", "1"]);
    wait_for_figure(&server, "log.compactions", 1);
    assert_same(&everything(&server), &model, "after the compaction");
    server.stop();
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "after the compaction and a restart");
    assert_eq!(figure(&server, "series"), 30);
}

/// The answer to a put on a server whose data directory is gone.
fn directory_gone(dir: &TempDir) -> String {
    format!(
        "error\nnot stored: data directory {} was removed or replaced\n\n",
        dir.path()
    )
}

#[test]
fn a_removed_data_directory_refuses_puts_and_frees_the_path_for_another_server() {
    let dir = TempDir::new("removed");
    let first = durable(&dir, &["--fsync", "always"]);
    let mut s = first.connect();
    assert_eq!(exchange(&mut s, b"put a 1 1\n", 1), "ok\n\n");
    std::fs::remove_dir_all(&dir.0).unwrap();
    // `--fsync always` looks before each write: the very next put is refused,
    // and nothing of it is kept in memory either.
    let refused = directory_gone(&dir);
    assert_eq!(exchange(&mut s, b"put a 2 2\n", 1), refused);
    assert_eq!(exchange(&mut s, b"get a\n", 1), "ok\na 1.0 1\n\n");
    // Deletes too; gets are answered as before.
    assert_eq!(exchange(&mut s, b"delete a\n", 1), refused);
    assert_eq!(exchange(&mut s, b"get a\n", 1), "ok\na 1.0 1\n\n");
    // A second server can take the path (the lock went with the directory)...
    let second = durable(&dir, &["--fsync", "always"]);
    let mut t = second.connect();
    assert_eq!(exchange(&mut t, b"put b 1 1\nget *\n", 2), "ok\n\nok\nb 1.0 1\n\n");
    // ...and the first one acknowledges nothing more, even now that the path
    // holds a directory (another one) again.
    assert_eq!(exchange(&mut s, b"put a 3 3\n", 1), refused);
    let log = first.log();
    let errors: Vec<&str> = (log.lines())
        .filter(|l| l.contains(" ERROR ") && l.contains("was removed or replaced"))
        .collect();
    assert_eq!(errors.len(), 1, "logged once, as an error: {log}");
    drop(first);
    second.stop();
    let third = durable(&dir, &[]);
    assert_eq!(exchange(&mut third.connect(), b"get *\n", 1), "ok\nb 1.0 1\n\n");
}

#[test]
fn a_replaced_data_directory_is_noticed_within_a_second_with_fsync_everysec() {
    let dir = TempDir::new("replaced");
    let server = durable(&dir, &[]);
    let mut s = server.connect();
    assert_eq!(exchange(&mut s, b"put a 1 1\n", 1), "ok\n\n");
    // Replaced: a directory of the same name, but not the one locked.
    std::fs::remove_dir_all(&dir.0).unwrap();
    std::fs::create_dir(&dir.0).unwrap();
    let refused = directory_gone(&dir);
    let mut t = 0;
    wait_until("the replaced directory to be noticed", || {
        t += 1;
        exchange(&mut s, format!("put a 1 {t}\n").as_bytes(), 1) == refused
    });
    assert_eq!(exchange(&mut s, b"put b 1 1\n", 1), refused);
}

/// The exact answer to `get *`, through a fresh connection.
fn get_all_bytes(server: &TestServer) -> String {
    exchange(&mut server.connect(), b"get *\n", 1)
}

/// `tests/fixtures/datadir-v1` is a data directory written by the release
/// before snapshot format 2 (commit 529faea): 555 puts in one batch (two
/// series past a chunk's 240 points, a counter and a one-decimal gauge;
/// full-precision ratios; a constant flag; extreme timestamps and values;
/// out-of-order points and an overwrite), compacted with
/// `--compact-min-bytes 1KiB` into a format-1 snapshot, then 4 puts in the
/// log after it (a new point, two overwrites of snapshot points, a new
/// key). `datadir-v1-get-all.txt` is that release's answer to `get *`.
#[test]
fn a_data_directory_of_the_release_before_chunks_loads_exactly_and_is_rewritten_in_format_2() {
    let dir = TempDir::new("datadir-v1");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let v1_snapshot = "snapshot-0000000002";
    for file in [v1_snapshot, "log-0000000002"] {
        std::fs::copy(fixtures.join("datadir-v1").join(file), dir.0.join(file)).unwrap();
    }
    let want = std::fs::read_to_string(fixtures.join("datadir-v1-get-all.txt")).unwrap();
    assert_eq!(want.lines().count(), 1 + 559 + 1, "ok, 559 points, the blank line");

    let server = durable(&dir, &[]);
    assert_eq!(get_all_bytes(&server), want, "format 1 loaded");
    // The format-1 snapshot is rewritten at once, far below the floor.
    wait_for_figure(&server, "log.compactions", 1);
    assert_eq!(get_all_bytes(&server), want, "after the compaction");
    server.stop();

    let files = dir.files();
    assert_eq!(files, ["LOCK", "log-0000000003", "snapshot-0000000003"]);
    let v2 = std::fs::read(dir.0.join("snapshot-0000000003")).unwrap();
    assert_eq!(&v2[..16], SNAPSHOT_MAGIC, "format 2");
    record_starts(&v2, SNAPSHOT_MAGIC);
    let v1_len = std::fs::metadata(fixtures.join("datadir-v1").join(v1_snapshot))
        .unwrap()
        .len();
    // With chunks of 480 points no series of the fixture fills one: all
    // are heads, which a snapshot writes as points, as format 1 did (a
    // sealed chunk's few bits a point show in the store's own tests).
    assert!(
        (v2.len() as u64) < v1_len * 11 / 10,
        "{} bytes, {v1_len} in format 1",
        v2.len()
    );

    let server = durable(&dir, &[]);
    assert_eq!(get_all_bytes(&server), want, "format 2 loaded");
    // Nothing to rewrite any more.
    assert_eq!(figure(&server, "log.compactions"), 0);
}

#[test]
fn a_second_server_on_the_same_directory_is_refused() {
    let dir = TempDir::new("lock");
    let server = durable(&dir, &[]);
    let (code, stderr) = run_to_exit(&["--data-dir", dir.path()]);
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains(&format!("is in use by another metricsd (pid {})", server.child.id())),
        "{stderr}"
    );
    server.assert_serves();
    // The lock goes with the process, even a killed one.
    server.signal("KILL");
    drop(server);
    durable(&dir, &[]).assert_serves();
}

#[test]
fn compaction_under_concurrent_writes_loses_nothing() {
    let dir = TempDir::new("compact");
    // A tiny threshold: the log is compacted over and over while writers
    // and readers keep going.
    let server = durable(&dir, &["--compact-min-bytes", "32768"]);
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let port = server.addr.port();
            std::thread::spawn(move || {
                let mut client = Client::new("127.0.0.1", port, Some(IO_TIMEOUT)).expect("connect");
                let mut rng = XorShift::seeded(100 + w);
                let mut model = Model::new();
                for round in 1..=40 {
                    // Keys old and new: series keep being created while
                    // snapshots are written, before and after their walk.
                    let puts: Vec<(String, f64, Option<i64>)> = (0..1000)
                        .map(|_| {
                            let key = format!("cmp.w{w}.k{}", rng.below(30 * round));
                            (key, rng.below(1000) as f64, Some(rng.below(5000) as i64))
                        })
                        .collect();
                    client.put_many(&puts).expect("put_many");
                    for (key, value, timestamp) in puts {
                        model.insert((key, timestamp.unwrap()), value.to_bits());
                    }
                }
                model
            })
        })
        .collect();
    let reader = {
        let port = server.addr.port();
        std::thread::spawn(move || {
            let mut client = Client::new("127.0.0.1", port, Some(IO_TIMEOUT)).expect("connect");
            for _ in 0..20 {
                client.get("*").expect("get * during compaction");
            }
        })
    };
    let mut model = Model::new();
    for writer in writers {
        model.extend(writer.join().expect("writer"));
    }
    reader.join().expect("reader");
    assert_same(&everything(&server), &model, "stored");
    server.stop();
    let files = dir.files();
    assert!(
        files.iter().any(|f| f.starts_with("snapshot-")) && !files.iter().any(|f| f.ends_with(".tmp")),
        "{files:?}"
    );
    assert!(
        files.iter().filter(|f| f.starts_with("log-")).count() <= 2,
        "superseded logs are removed: {files:?}"
    );
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "after restart");
}

#[test]
fn a_crash_between_snapshot_write_and_rename_loses_nothing() {
    let dir = TempDir::new("crash-compact");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metricsd"));
    cmd.env("METRICSD_CRASH_BEFORE_SNAPSHOT_RENAME", "1");
    let mut server = TestServer::start_with(
        cmd,
        &[
            "--data-dir",
            dir.path(),
            "--fsync",
            "always",
            "--compact-min-bytes",
            "16384",
        ],
    );
    let mut client = client(&server);
    let mut model = Model::new();
    // Distinct (key, timestamp) for every put: the batch cut by the crash
    // may be partly stored, and must not make an earlier value ambiguous.
    let mut cut_batch = Model::new();
    for batch in 0..1000i64 {
        let puts: Vec<(String, f64, Option<i64>)> = (0..200)
            .map(|i| {
                (
                    format!("crash.k{}", i % 13),
                    (batch * 7 + i) as f64,
                    Some(batch * 1000 + i),
                )
            })
            .collect();
        let as_model = puts.iter().map(|(k, v, t)| ((k.clone(), t.unwrap()), v.to_bits()));
        if client.put_many(&puts).is_err() {
            cut_batch.extend(as_model);
            break;
        }
        model.extend(as_model);
    }
    assert_eq!(server.wait_exit(), None, "the process aborted");
    let files = dir.files();
    assert!(files.iter().any(|f| f.ends_with(".tmp")), "{files:?}");
    drop(server);

    let server = durable(&dir, &[]);
    let mut stored = everything(&server);
    // Of the batch the crash cut, some puts may have been stored.
    stored.retain(|point, value| cut_batch.get(point) != Some(value));
    assert_same(&stored, &model, "acknowledged batches");
    let log = server.stop();
    assert!(log.contains("a snapshot whose writing was interrupted"), "{log}");
    assert!(!dir.files().iter().any(|f| f.ends_with(".tmp")));
}

#[test]
fn stopping_answers_what_was_read_and_every_acknowledged_put_survives() {
    let dir = TempDir::new("stop");
    let server = durable(&dir, &["--fsync", "never"]);
    let mut stream = server.connect();
    let puts: String = (0..20_000).map(|i| format!("put stop.k {i}.5 {i}\n")).collect();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = stream.write_all(puts.as_bytes());
        })
    };
    // Some answers first, so the stop comes in the middle of the pipeline.
    let mut first = [0u8; 40];
    stream.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"ok\n\n".repeat(10).as_slice());
    server.signal("TERM");
    // The server answers what it had read, shuts its side down, and reads
    // and drops the rest until we close: every answer arrives whole.
    let rest = read_to_close(&mut stream);
    assert!(
        rest.chunks(4).all(|a| a == b"ok\n\n"),
        "an answer was cut or wrong: {:?}",
        String::from_utf8_lossy(&rest[rest.len().saturating_sub(40)..])
    );
    let acked = 10 + rest.len() / 4;
    writer.join().unwrap();
    drop(stream);
    let mut server = server;
    assert_eq!(server.wait_exit(), Some(0));
    drop(server);

    let server = durable(&dir, &[]);
    let stored = everything(&server);
    for i in 0..acked as i64 {
        assert_eq!(
            stored.get(&("stop.k".to_owned(), i)),
            Some(&(i as f64 + 0.5).to_bits()),
            "acknowledged put {i} of {acked}"
        );
    }
}

#[test]
fn a_peer_that_never_reads_delays_the_stop_by_the_grace_only_and_a_second_signal_exits_at_once() {
    let dir = TempDir::new("stuck");
    for second_signal in [false, true] {
        let mut server = durable(&dir, &[]);
        let puts: Vec<(String, f64, Option<i64>)> = (0..200_000)
            .map(|i| ("stuck.series".to_owned(), 1.0, Some(i)))
            .collect();
        client(&server).put_many(&puts).unwrap();
        // Ask for a multi-megabyte answer and never read it.
        let mut stuck = server.connect();
        stuck.write_all(b"get *\n").unwrap();
        // The answer has begun: the server holds it, unsent, at the stop.
        stuck.peek(&mut [0]).expect("the answer begins");
        server.signal("TERM");
        if second_signal {
            // The first signal was taken: the stop closed the listener.
            wait_until("the listener to close", || TcpStream::connect(server.addr).is_err());
            server.signal("TERM");
            assert_eq!(server.wait_exit(), Some(128 + 15));
        } else {
            assert_eq!(server.wait_exit(), Some(0), "{}", server.log());
        }
        drop(stuck);
    }
    // Either way the data is there.
    let server = durable(&dir, &[]);
    assert_eq!(everything(&server).len(), 200_000);
}

/// A small tmpfs mounted for the test: needs root (and a kernel that lets
/// this sandbox mount); the test says so and is skipped otherwise.
struct SmallFs(TempDir);

impl SmallFs {
    fn mount(size: &str) -> Option<SmallFs> {
        let dir = TempDir::new("smallfs");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.path()])
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallFs(dir)),
            _ => None,
        }
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Sends puts of `full.k` at timestamps `from..from + n` with value
/// `timestamp + plus`, and sorts the answers: acknowledged ones go into
/// `model` (timestamp → value), refused ones into `refused`.
fn put_and_sort(stream: &mut TcpStream, from: i64, n: i64, plus: f64, model: &mut Model, refused: &mut Vec<i64>) {
    let value = |i: i64| i as f64 + plus;
    let puts: String = (from..from + n)
        .map(|i| format!("put full.k {:?} {i}\n", value(i)))
        .collect();
    stream.write_all(puts.as_bytes()).unwrap();
    let answers = read_answers(stream, n as usize);
    let mut i = from;
    let mut rest = answers.as_str();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("ok\n\n") {
            model.insert(("full.k".to_owned(), i), value(i).to_bits());
            rest = after;
        } else {
            assert!(rest.starts_with("error\nnot stored: "), "{rest:.80}");
            refused.push(i);
            rest = &rest[rest.find("\n\n").unwrap() + 2..];
        }
        i += 1;
    }
    assert_eq!(i, from + n);
}

#[test]
fn a_full_disk_never_gets_a_false_ok_and_refused_puts_leave_no_trace() {
    let Some(fs) = SmallFs::mount("1m") else {
        eprintln!("SKIPPED a_full_disk_never_gets_a_false_ok_and_refused_puts_leave_no_trace: cannot mount a tmpfs (needs root)");
        return;
    };
    let data = fs.0 .0.join("data");
    let filler = fs.0 .0.join("filler");
    std::fs::write(&filler, vec![0u8; 256 * 1024]).unwrap();
    let data = data.to_str().unwrap();
    let server = TestServer::start(&["--data-dir", data, "--fsync", "always"]);
    let mut stream = server.connect();
    let mut model = Model::new();
    let mut refused = Vec::new();
    let mut next = 0;
    while refused.len() < 500 && next < 200_000 {
        put_and_sort(&mut stream, next, 1000, 0.0, &mut model, &mut refused);
        next += 1000;
    }
    assert!(refused.len() >= 500 && !model.is_empty(), "the disk never filled");
    // Overwrites of acknowledged points while the disk is full: a refused
    // one must not change what is stored (nor, through a later snapshot,
    // what is on disk).
    let mut refused_overwrites = Vec::new();
    put_and_sort(&mut stream, 0, 200, 0.5, &mut model, &mut refused_overwrites);
    assert!(!refused_overwrites.is_empty());
    // Reads go on, and show exactly the acknowledged puts.
    assert_same(&everything(&server), &model, "while the disk is full");
    // Space again: puts are stored again.
    std::fs::remove_file(&filler).unwrap();
    let mut later_refused = Vec::new();
    put_and_sort(&mut stream, next, 100, 0.0, &mut model, &mut later_refused);
    assert_eq!(later_refused, [0i64; 0]);
    drop(stream);
    server.stop();

    let server = TestServer::start(&["--data-dir", data]);
    assert_same(&everything(&server), &model, "after restart");
    server.stop();
}

#[test]
fn a_log_cut_short_in_its_header_is_rewritten_and_appends_go_on() {
    let (dir, mut model) = directory_of_records("short-header", 10);
    // A crash while compaction was creating the next log.
    std::fs::write(dir.0.join("log-0000000002"), &LOG_MAGIC[..5]).unwrap();
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "after the short log");
    records_one_by_one(&server, 20, &mut model);
    assert!(server.stop().contains("a log cut short in its header"));
    let server = durable(&dir, &[]);
    assert_same(&everything(&server), &model, "appends to the rewritten log");
}
