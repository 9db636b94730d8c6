//! Test support owned by the crate's test suites: compiled into the unit
//! tests (`#[cfg(test)]` in lib.rs) and, by `#[path]`, into the integration
//! tests (tests/common), so that both reproduce randomised runs the same
//! way. No dependency, nothing of the crate: it stands alone.
#![allow(dead_code)] // each test suite uses its own subset

use std::time::{Duration, Instant};

/// A tiny deterministic generator (xorshift64), so randomised tests
/// reproduce from their seed.
pub struct XorShift(pub u64);

impl XorShift {
    /// A generator for `seed` (any value; zero is avoided internally).
    pub fn seeded(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Between two looks at a condition being waited for: short beside any
/// deadline, and a look (a syscall or a round trip) costs little.
const POLL: Duration = Duration::from_millis(5);

/// Looks at `probe` until it gives a value, for at most `timeout`; None if
/// it never did. The one waiting loop of the tests: they wait for a
/// condition, bounded by a deadline, never for a fixed time.
pub fn poll_until<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A directory of its own under the system's temporary directory, removed
/// when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("metricsd-test-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().expect("temp path is UTF-8")
    }

    /// Names of the files in the directory, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read dir")
            .map(|e| e.expect("dir entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
