//! `--fsync everysec`: a thread that syncs the log once a second, so the
//! event loop never waits for the disk (Redis does the same in its bio
//! thread).
//!
//! When a sync fails, puts are refused until restart. After a failed
//! fsync, Linux marks the pages it could not write clean and reports the
//! error once: a later fsync "succeeds" with a hole in the log, which the
//! next start would take for damage (PostgreSQL's "fsyncgate"). A restart
//! replays the log as it really is on disk.

use super::AppendError;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// The policy's promise: at most about this much of acknowledged puts is
/// only in the page cache.
const INTERVAL: Duration = Duration::from_secs(1);

pub struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    /// Set by the loop after each append: a flag, not the mutex, so the loop
    /// never waits for a sync in progress.
    dirty: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    file: Arc<File>,
    /// The log a compaction switched away from, still to be synced once,
    /// with the directory that now holds a new log.
    previous: Option<(Arc<File>, PathBuf)>,
    stop: bool,
    failure: Option<AppendError>,
    last_sync: Option<SystemTime>,
}

impl Syncer {
    pub fn start(log: &File) -> io::Result<Syncer> {
        let shared = Arc::new(Shared {
            dirty: AtomicBool::new(false),
            state: Mutex::new(State {
                file: Arc::new(log.try_clone()?),
                previous: None,
                stop: false,
                failure: None,
                last_sync: None,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new().name("metricsd-fsync".into()).spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared)
        })?;
        Ok(Syncer {
            shared,
            thread: Some(thread),
        })
    }

    pub fn mark_dirty(&self) {
        self.shared.dirty.store(true, Ordering::Release);
    }

    /// From now on syncs `log`, a new file in `dir`; the old log is synced
    /// one last time, and `dir` for the new file's entry.
    pub fn switch(&self, log: &File, dir: &Path) -> io::Result<()> {
        let file = Arc::new(log.try_clone()?);
        let mut state = self.shared.lock();
        let old = std::mem::replace(&mut state.file, file);
        state.previous = Some((old, dir.to_owned()));
        self.mark_dirty();
        Ok(())
    }

    /// Why puts must be refused: the last sync failed.
    pub fn failure(&self) -> Option<AppendError> {
        self.shared.lock().failure.clone()
    }

    pub fn last_sync(&self) -> Option<SystemTime> {
        self.shared.lock().last_sync
    }

    /// Stops the thread after the sync it may be doing.
    pub fn stop(mut self) {
        self.signal_stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    fn signal_stop(&self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
    }
}

impl Drop for Syncer {
    /// A server dropped without a graceful stop (bound but never run, or
    /// its loop failed) does not leave the thread behind.
    fn drop(&mut self) {
        self.signal_stop();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; if it did, the state is
        // still plain data worth using.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn run(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        let due = Instant::now() + INTERVAL;
        while !state.stop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            state = shared
                .wake
                .wait_timeout(state, due - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if state.stop {
            return;
        }
        let dirty = shared.dirty.swap(false, Ordering::AcqRel) || state.failure.is_some();
        let previous = state.previous.take();
        if !dirty && previous.is_none() {
            continue;
        }
        let file = Arc::clone(&state.file);
        drop(state);
        let result = match previous {
            Some((old, dir)) => old
                .sync_data()
                .and_then(|()| file.sync_data())
                .and_then(|()| super::files::sync_dir(&dir)),
            None => file.sync_data(),
        };
        state = shared.lock();
        match result {
            Ok(()) => state.last_sync = Some(SystemTime::now()),
            Err(e) => {
                if state.failure.is_none() {
                    log::error!("cannot sync the log: {e}; refusing puts until metricsd is restarted");
                }
                state.failure = Some(AppendError::Sync(Arc::new(e)));
            }
        }
    }
}
