//! Compaction: replace the logs with a snapshot without stopping the loop.
//!
//! When it begins, a fresh log N+1 already takes every new put. The
//! snapshot is then encoded on the loop thread a slice per turn, a walk of
//! the store in key order resumed where the last slice stopped
//! ([`Store::walk_parts`]: sealed chunks copied as they are, other points as
//! points), so no turn spends more than a slice on it, and written to
//! `snapshot-N+1.tmp`. A thread then syncs it, renames it into place, syncs
//! the directory and removes the older files.
//!
//! Puts that arrive while it is written may or may not be in it (they are
//! if they sort after where the walk has reached). That is harmless: each of
//! those puts is also in log N+1, which recovery replays on top of the
//! snapshot in order, and a put of a (key, timestamp) replaces the value
//! whatever was there. Slices run between loop turns, after the turn's
//! commit, so a put refused and rolled back is never in a snapshot.
//!
//! A crash at any point leaves a consistent set: before the rename, the
//! `.tmp` is removed at start-up and logs N and N+1 are replayed; after it,
//! snapshot N+1 and log N+1 are loaded and the older files removed.

use super::files::{self, DataDir};
use super::format::{self, SnapshotEncoder, SNAPSHOT_MAGIC};
use crate::store::{Cursor, Part, Store};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Snapshot bytes encoded and written per loop turn: 512 KiB is about
/// 30,000 plain points or some 250,000 in sealed chunks (copied, not
/// encoded), a fraction of a millisecond to encode and hand to the page
/// cache, so requests wait at most that long behind it (measured figures in
/// BENCHMARKS.md), while 5M points take only about 160 turns (as plain
/// points; a few dozen as chunks).
const SLICE_BYTES: usize = 512 * 1024;

/// Test hook: with this variable set, the process aborts after the
/// snapshot is written and synced but before it is renamed into place, the
/// one crash window a kill from outside can hardly hit on purpose.
pub const CRASH_BEFORE_RENAME_VAR: &str = "METRICSD_CRASH_BEFORE_SNAPSHOT_RENAME";

pub enum Progress {
    /// A slice was written; more to come next turn.
    Working,
    /// The snapshot is being synced and renamed off the loop.
    Waiting,
    /// Finished: the snapshot's size, or why it failed.
    Done(io::Result<u64>),
}

/// A snapshot file created, before the compaction begins.
pub struct Prepared {
    tmp_path: PathBuf,
    file: File,
    salt: u32,
}

pub struct Compaction {
    generation: u64,
    started: Instant,
    phase: Phase,
}

enum Phase {
    Writing(Writer),
    Finishing(JoinHandle<io::Result<u64>>),
    /// Its result has been handed out (or it is being moved between phases).
    Over,
}

struct Writer {
    tmp_path: PathBuf,
    file: File,
    encoder: SnapshotEncoder,
    /// Where the last slice stopped; None before the first.
    cursor: Option<Cursor>,
    buf: Vec<u8>,
    written: u64,
    worst_slice: Duration,
}

impl Compaction {
    /// Creates `snapshot-<generation>.tmp` with its header: the part of
    /// beginning that can fail, done before the caller switches logs, so a
    /// full disk does not leave a new log behind at every retry.
    pub fn prepare(dir: &DataDir, generation: u64) -> io::Result<Prepared> {
        let tmp_path = dir.snapshot_tmp_path(generation);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp_path)?;
        let (header, salt) = format::new_file_header(SNAPSHOT_MAGIC);
        if let Err(e) = file.write_all(&header) {
            drop(file);
            let _ = std::fs::remove_file(&tmp_path);
            return Err(e);
        }
        Ok(Prepared { tmp_path, file, salt })
    }

    /// Begins the snapshot of everything stored, once the caller has
    /// switched appends to log `generation`: every put of the older logs is
    /// in the store, so the walk will reach it.
    pub fn begin(prepared: Prepared, generation: u64, old_log_bytes: u64) -> Compaction {
        log::info!("compaction {generation} begins: the log had grown to {old_log_bytes} bytes");
        Compaction {
            generation,
            started: Instant::now(),
            phase: Phase::Writing(Writer {
                tmp_path: prepared.tmp_path,
                file: prepared.file,
                encoder: SnapshotEncoder::new(prepared.salt),
                cursor: None,
                buf: Vec::with_capacity(SLICE_BYTES + 4096),
                written: format::FILE_HEADER_BYTES as u64,
                worst_slice: Duration::ZERO,
            }),
        }
    }

    /// Removes a prepared snapshot that will not be written.
    pub fn discard(prepared: Prepared) {
        drop(prepared.file);
        let _ = std::fs::remove_file(&prepared.tmp_path);
    }

    pub fn finishing(&self) -> bool {
        matches!(self.phase, Phase::Finishing(_))
    }

    /// Writes the next slice, or looks whether the finishing thread is done.
    pub fn step(&mut self, store: &Store, dir: &DataDir) -> Progress {
        match &mut self.phase {
            Phase::Writing(writer) => {
                let slice_started = Instant::now();
                let done = match writer.slice(store) {
                    Ok(done) => done,
                    Err(e) => {
                        let _ = std::fs::remove_file(&writer.tmp_path);
                        return Progress::Done(Err(e));
                    }
                };
                writer.worst_slice = writer.worst_slice.max(slice_started.elapsed());
                if !done {
                    return Progress::Working;
                }
                log::info!(
                    "compaction {}: snapshot of {} bytes encoded in {} ms (longest slice {} µs); syncing it",
                    self.generation,
                    writer.written,
                    self.started.elapsed().as_millis(),
                    writer.worst_slice.as_micros()
                );
                match self.finish_off_loop(dir) {
                    Ok(()) => Progress::Waiting,
                    Err(e) => Progress::Done(Err(e)),
                }
            }
            Phase::Finishing(thread) => {
                if !thread.is_finished() {
                    return Progress::Waiting;
                }
                let result = match std::mem::replace(&mut self.phase, Phase::Over) {
                    Phase::Finishing(thread) => thread
                        .join()
                        .unwrap_or_else(|_| Err(io::Error::other("the snapshot thread panicked"))),
                    _ => Err(io::Error::other("compaction phase lost")),
                };
                if let Ok(bytes) = &result {
                    log::info!(
                        "compaction {} done in {} ms: snapshot of {bytes} bytes",
                        self.generation,
                        self.started.elapsed().as_millis()
                    );
                }
                Progress::Done(result)
            }
            Phase::Over => Progress::Done(Err(io::Error::other("compaction already over"))),
        }
    }

    /// Hands the written snapshot to a thread that syncs, renames and cleans up.
    fn finish_off_loop(&mut self, dir: &DataDir) -> io::Result<()> {
        let listing = dir.list().map_err(io::Error::other)?;
        let generation = self.generation;
        let superseded: Vec<PathBuf> = (listing.logs.iter().filter(|&&g| g < generation))
            .map(|&g| dir.log_path(g))
            .chain(
                listing
                    .snapshots
                    .iter()
                    .filter(|&&g| g < generation)
                    .map(|&g| dir.snapshot_path(g)),
            )
            .collect();
        let final_path = dir.snapshot_path(generation);
        let dir_path = dir.path().to_owned();
        let crash_before_rename = std::env::var_os(CRASH_BEFORE_RENAME_VAR).is_some();
        let Phase::Writing(writer) = std::mem::replace(&mut self.phase, Phase::Over) else {
            return Err(io::Error::other("compaction is not writing"));
        };
        let thread = std::thread::Builder::new()
            .name("metricsd-snapshot".into())
            .spawn(move || {
                let Writer {
                    tmp_path,
                    file,
                    written,
                    ..
                } = writer;
                let result = (|| {
                    file.sync_all()?;
                    drop(file);
                    if crash_before_rename {
                        eprintln!("{CRASH_BEFORE_RENAME_VAR} is set: aborting before the rename");
                        std::process::abort();
                    }
                    std::fs::rename(&tmp_path, &final_path)?;
                    files::sync_dir(&dir_path)?;
                    for path in &superseded {
                        match std::fs::remove_file(path) {
                            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                            _ => {}
                        }
                    }
                    files::sync_dir(&dir_path)?;
                    Ok(written)
                })();
                if result.is_err() {
                    let _ = std::fs::remove_file(&tmp_path);
                }
                result
            })?;
        self.phase = Phase::Finishing(thread);
        Ok(())
    }

    /// At shutdown: a snapshot still being encoded is dropped (the logs hold
    /// everything); one being finished is waited for.
    pub fn abandon(self) {
        match self.phase {
            Phase::Writing(writer) => {
                log::info!("compaction {} abandoned at shutdown", self.generation);
                drop(writer.file);
                let _ = std::fs::remove_file(&writer.tmp_path);
            }
            Phase::Finishing(thread) => {
                let _ = thread.join();
            }
            Phase::Over => {}
        }
    }
}

impl Writer {
    /// Encodes and writes one slice; returns whether the snapshot is complete.
    fn slice(&mut self, store: &Store) -> io::Result<bool> {
        let (encoder, buf) = (&mut self.encoder, &mut self.buf);
        self.cursor = store.walk_parts(self.cursor.take(), |key, part| {
            match part {
                Part::Sealed(chunk) => encoder.push_chunk(buf, key, chunk),
                Part::Points(points) => points.iter().for_each(|&point| encoder.push(buf, key, point)),
            }
            buf.len() < SLICE_BYTES
        });
        let done = self.cursor.is_none();
        if done {
            self.encoder.finish(&mut self.buf);
        } else {
            self.encoder.flush(&mut self.buf);
        }
        self.file.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(done)
    }
}
