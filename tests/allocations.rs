//! A put allocates nothing: once a connection and its series are warm, a
//! server answering puts, one at a time or pipelined, with lines split
//! across reads, makes no heap allocation at all, in memory or with the log
//! (`--fsync never`). Counted by a global allocator, so this file is a test
//! binary of its own with one test: nothing else runs in the process while
//! it counts, and the client side of the window allocates nothing either
//! (its requests are built before, its answers read into a buffer made
//! before).

mod common;

use common::TempDir;
use metricsd::journal::{self, Fsync};
use metricsd::server::{Config, Server};
use metricsd::store::CHUNK_POINTS;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Counts every allocation and reallocation in the process.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is passed on unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Puts sent in each window: fewer than a chunk of the store holds, so that
/// the chunk begun in the warm-up has room for all of them (a series
/// allocates one 4 KiB chunk per CHUNK_POINTS points: amortized, not per
/// put).
const PUTS: usize = 200;
const _: () = assert!(PUTS + WARM_IN_LAST_CHUNK <= CHUNK_POINTS);
/// Points the warm-up leaves in the chunk the window fills.
const WARM_IN_LAST_CHUNK: usize = 10;
/// Puts per pipelined write.
const BATCH: usize = 20;

/// `put k <value> <timestamp>\n` for timestamps `from..from + n`.
fn puts(from: usize, n: usize) -> Vec<Vec<u8>> {
    (from..from + n)
        .map(|t| format!("put k {}.25 {t}\n", t % 1000).into_bytes())
        .collect()
}

/// Sends `lines` and reads `ok\n\n` for each: half of them one at a time,
/// then one split in two writes, then the rest in pipelined batches.
fn exchange(client: &mut TcpStream, lines: &[Vec<u8>], answers: &mut [u8]) {
    let (single, rest) = lines.split_at(lines.len() / 2);
    for line in single {
        client.write_all(line).unwrap();
        client.read_exact(&mut answers[..4]).unwrap();
        assert_eq!(&answers[..4], b"ok\n\n");
    }
    let (split, rest) = rest.split_first().unwrap();
    let (head, tail) = split.split_at(split.len() / 2);
    client.write_all(head).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    client.write_all(tail).unwrap();
    client.read_exact(&mut answers[..4]).unwrap();
    for batch in rest.chunks(BATCH) {
        for line in batch {
            client.write_all(line).unwrap();
        }
        let answers = &mut answers[..4 * batch.len()];
        client.read_exact(answers).unwrap();
        assert!(answers.chunks(4).all(|a| a == b"ok\n\n"));
    }
}

/// Allocations made by a running server while it answers `PUTS` puts to a
/// key that already has points, on a connection that already sent some.
fn allocations_per_window(config: Config) -> u64 {
    let server = Server::bind(config).unwrap();
    let addr = server.local_addr();
    let handle = server.handle();
    let thread = std::thread::spawn(move || server.run());
    let mut client = TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answers = vec![0u8; 4 * BATCH];
    // Warm-up: the connection's buffers, the key, a chunk with room.
    let warm = 2 * CHUNK_POINTS + WARM_IN_LAST_CHUNK;
    exchange(&mut client, &puts(0, warm), &mut answers);
    let window = puts(warm, PUTS);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    exchange(&mut client, &window, &mut answers);
    let made = ALLOCATIONS.load(Ordering::SeqCst) - before;
    handle.shutdown();
    thread.join().unwrap().unwrap();
    made
}

#[test]
fn warm_puts_allocate_nothing() {
    let in_memory = Config {
        listen: "127.0.0.1:0".into(),
        ..Config::default()
    };
    assert_eq!(allocations_per_window(in_memory), 0, "in memory, {PUTS} puts");

    let dir = TempDir::new("allocations");
    let logged = Config {
        listen: "127.0.0.1:0".into(),
        storage: Some(journal::Options {
            fsync: Fsync::Never,
            ..journal::Options::new(&dir.0)
        }),
        ..Config::default()
    };
    assert_eq!(allocations_per_window(logged), 0, "logged, {PUTS} puts");
}
