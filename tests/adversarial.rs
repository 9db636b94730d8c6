//! The real event loop (in-process) with random output limits, a deep random
//! pipeline of puts and gets (keys longer than the room, shared prefixes,
//! extreme timestamps) written in random pieces, a reader reading in random
//! pieces, another connection reading meanwhile, and sometimes a half-close
//! after the last request: every answer must arrive byte for byte as if
//! answered whole, then (after a half-close) the close. A stall shows as a
//! read timeout. `ADV_SEEDS=400 cargo test --test adversarial` runs longer.

mod common;

use common::XorShift;
use metricsd::server::{Config, Limits, Server};
use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

type Model = BTreeMap<String, BTreeMap<i64, f64>>;

fn answer_get(model: &Model, key: Option<&str>) -> String {
    let mut out = String::from("ok\n");
    for (k, series) in model.iter().filter(|(k, _)| key.is_none_or(|q| q == k.as_str())) {
        for (t, v) in series {
            out.push_str(&format!("{k} {v:?} {t}\n"));
        }
    }
    out.push('\n');
    out
}

fn keys() -> Vec<String> {
    let mut k: Vec<String> = ["a", "a.b", "a.b.c", "ab", "b", "k\u{0436}", "zz"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    k.push("L".repeat(700));
    k.push(format!("{}x", "L".repeat(700)));
    k
}

/// Random requests and the exact answers a whole-answer server would give.
fn pipeline(rng: &mut XorShift) -> (Vec<u8>, String) {
    let keys = keys();
    let mut model = Model::new();
    let (mut requests, mut want) = (String::new(), String::new());
    for _ in 0..(50 + rng.below(300)) {
        let key = keys[rng.below(keys.len() as u64) as usize].clone();
        match rng.below(20) {
            0..=10 => {
                let t = match rng.below(8) {
                    0 => [i64::MIN, i64::MAX, 0, -1][rng.below(4) as usize],
                    _ => rng.below(400) as i64,
                };
                let v = [0.5, 2.0, -1e-7, 1e300][rng.below(4) as usize];
                requests.push_str(&format!("put {key} {v} {t}\n"));
                model.entry(key).or_default().insert(t, v);
                want.push_str(common::OK);
            }
            11..=14 => {
                requests.push_str(&format!("get {key}\n"));
                want.push_str(&answer_get(&model, Some(&key)));
            }
            15..=17 => {
                requests.push_str("get *\n");
                want.push_str(&answer_get(&model, None));
            }
            18 => {
                requests.push_str("get a b\n");
                want.push_str(common::ERR);
            }
            _ => requests.push('\n'),
        }
    }
    (requests.into_bytes(), want)
}

fn run_seed(seed: u64) {
    let mut rng = XorShift::seeded(seed);
    let max_pending_output = [1, 2, 3, 4, 5, 10, 17, 64, 100, 1000, 65536, 4 << 20][rng.below(12) as usize];
    let server = Server::bind(Config {
        listen: "127.0.0.1:0".into(),
        limits: Limits {
            max_line_bytes: 4096,
            max_pending_output,
        },
        ..Config::default()
    })
    .unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    let (requests, want) = pipeline(&mut rng);
    let half_close = rng.below(2) == 0;

    // Another connection that asks and reads meanwhile, to interleave with
    // the first one's slices.
    let mut other = TcpStream::connect(addr).unwrap();
    other.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let other_thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 4096];
        for _ in 0..20 {
            other.write_all(b"get *\nget a\n").unwrap();
            std::thread::sleep(Duration::from_millis(1));
            let _ = other.read(&mut buf);
        }
    });

    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut wrng = XorShift::seeded(seed ^ 0xDEAD_BEEF);
    let writer = std::thread::spawn(move || {
        let mut pos = 0;
        while pos < requests.len() {
            let n = (1 + wrng.below(3000) as usize).min(requests.len() - pos);
            w.write_all(&requests[pos..pos + n]).unwrap();
            pos += n;
            if wrng.below(8) == 0 {
                std::thread::sleep(Duration::from_micros(wrng.below(2000)));
            }
        }
        if half_close {
            w.shutdown(Shutdown::Write).unwrap();
        }
    });
    let mut got = Vec::with_capacity(want.len());
    let mut buf = vec![0u8; 65536];
    while got.len() < want.len() {
        let n = 1 + rng.below(65536) as usize;
        match s.read(&mut buf[..n]) {
            Ok(0) => break,
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "seed {seed}: stalled after {} of {} bytes (max_pending_output {max_pending_output}, half_close {half_close})",
                got.len(),
                want.len()
            ),
            Err(e) => panic!("seed {seed}: {e}"),
        }
        if rng.below(16) == 0 {
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        }
    }
    assert!(
        got == want.as_bytes(),
        "seed {seed}: answers differ (max_pending_output {max_pending_output}); got {} want {} bytes",
        got.len(),
        want.len()
    );
    writer.join().unwrap();
    if half_close {
        match s.read(&mut buf) {
            Ok(0) => {}
            other => panic!("seed {seed}: expected the close after a half-close, got {other:?}"),
        }
    } else {
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        assert!(s.read(&mut buf).is_err(), "seed {seed}: unsolicited bytes");
    }
    other_thread.join().unwrap();
    handle.shutdown();
    thread.join().unwrap().unwrap();
}

#[test]
fn random_pipelines_under_random_output_limits() {
    let seeds = std::env::var("ADV_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40u64);
    for seed in 1..=seeds {
        run_seed(seed);
    }
}
