//! Durability: every accepted put is appended to a log before it is
//! acknowledged; start-up replays the log; compaction replaces a grown log
//! with a snapshot.
//!
//! | module | job |
//! | --- | --- |
//! | `format` | the bytes of log and snapshot files (records with CRC-32), no I/O |
//! | `files` | the data directory: lock, file names, directory fsync, reading records back |
//! | `recover` | start-up: snapshot + logs → store; torn tails cut, damage refused or repaired |
//! | `sync` | the background fsync of `--fsync everysec` |
//! | `compact` | writing a snapshot a slice per loop turn, finished off the loop |
//!
//! The engine owns a [`Journal`]. Puts parsed during a loop turn are
//! applied to the store and encoded into a [`Batch`]; their `ok`s wait in
//! the sessions' output. At the end of the turn [`Journal::commit`]
//! appends the batch with one write (and with `--fsync always` one fsync: a
//! group commit), and only then are the `ok`s released, or turned into
//! errors if the write failed ([`AppendError`] says why; each protocol
//! words it). Redis' AOF does the same in `beforeSleep`.

mod compact;
mod files;
pub mod format;
mod recover;
mod sync;

pub use format::{Batch, Undone};

use crate::store::Store;
use compact::Compaction;
use files::DataDir;
use format::Damage;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use sync::Syncer;

pub use crate::config::Fsync;

/// How a durable server keeps its data.
#[derive(Debug, Clone)]
pub struct Options {
    pub dir: PathBuf,
    pub fsync: Fsync,
    /// Start even if a file is damaged before its end, keeping what comes
    /// before the damage.
    pub repair: bool,
    /// The log is compacted once it is at least this large and at least as
    /// large as the snapshot it started from.
    pub compact_min_bytes: u64,
}

pub use crate::config::{DEFAULT_COMPACT_MIN_BYTES, DEFAULT_DATA_DIR};

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Options {
            dir: dir.into(),
            fsync: crate::config::DEFAULT_FSYNC,
            repair: false,
            compact_min_bytes: DEFAULT_COMPACT_MIN_BYTES,
        }
    }
}

/// Why the data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot lock data directory {}: it is in use by another metricsd (pid {holder}); stop that one, \
         or give this one another --data-dir",
        dir.display()
    )]
    Locked { dir: PathBuf, holder: String },
    /// Something other than a directory stands where the data directory
    /// (`dir`) or one of the directories above it (`file`) should be.
    #[error("cannot create data directory {}: {}", dir.display(), in_the_way(dir, file))]
    FileInTheWay { dir: PathBuf, file: PathBuf },
    /// Setting up the data directory failed; `doing` says what was being
    /// done to `path` (`create data directory`, `open the lock file`).
    #[error("cannot {doing} {}: {source}", path.display())]
    Dir {
        doing: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{} is not a metricsd data file of this version", file.display())]
    NotOurs { file: PathBuf },
    #[error(
        "{} is damaged at byte {offset} ({damage}) and good records follow, so this is not a torn \
         write; start with --repair to keep what comes before the damage and drop the rest of the file",
        file.display()
    )]
    Corrupt { file: PathBuf, offset: u64, damage: Damage },
}

impl Error {
    fn io(path: &Path, source: io::Error) -> Error {
        Error::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn dir<'p>(doing: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> Error + 'p {
        move |source| Error::Dir {
            doing,
            path: path.to_owned(),
            source,
        }
    }
}

/// `a file is in the way`, naming the file when it is not the data
/// directory itself but a directory above it.
fn in_the_way(dir: &Path, file: &Path) -> String {
    match dir == file {
        true => "a file is in the way".to_owned(),
        false => format!("a file is in the way: {}", file.display()),
    }
}

/// Why the log could not take a batch of puts, and so why puts are refused.
/// Cheap to clone (the I/O error is shared): one failure answers every put
/// of the turn and every put refused after it. Words, not wire text: each
/// protocol says "not stored" its own way.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// Writing the batch (or, with `--fsync always`, syncing it) failed.
    #[error("cannot write the log: {0}")]
    Write(Arc<io::Error>),
    /// The background fsync failed: puts are refused until restart, since
    /// Linux reports a failed writeback once and then "succeeds" with a
    /// hole in the file (PostgreSQL's "fsyncgate").
    #[error("cannot sync the log: {0}")]
    Sync(Arc<io::Error>),
    /// A failed append could not be cut back off the log: appending more
    /// would bury bad bytes in its middle, so puts are refused until restart.
    #[error("the log is damaged after a failed write ({0})")]
    Damaged(Arc<io::Error>),
    /// The data directory (absolute path) or its lock file is no longer the
    /// one opened: puts would go to files nobody will read, while another
    /// server may use the path. Refused until restart.
    #[error("data directory {} was removed or replaced", .0.display())]
    DirectoryGone(Arc<Path>),
}

/// Figures about the journal, for logging and `stats`.
#[derive(Debug, Clone, Default)]
pub struct Status {
    pub generation: u64,
    pub log_bytes: u64,
    pub last_fsync: Option<std::time::SystemTime>,
    pub last_compaction: Option<std::time::SystemTime>,
    pub compactions: u64,
}

/// The open data directory and the log being appended to.
pub struct Journal {
    dir: DataDir,
    fsync: Fsync,
    log: File,
    generation: u64,
    /// Bytes of the log holding whole records that were written without
    /// error; a failed append is cut back to this.
    log_len: u64,
    /// The salt of the log's checksums.
    salt: u32,
    /// Logs switched away from whose puts no durable snapshot covers yet
    /// (a compaction is running, failed or was abandoned): synced at a
    /// graceful stop with the current one, whatever the fsync policy.
    previous_logs: Vec<File>,
    /// Size of the snapshot the current log started from.
    snapshot_bytes: u64,
    compact_min_bytes: u64,
    syncer: Option<Syncer>,
    compacting: Compacting,
    /// Why every put is refused until restart: a failed append could not
    /// be cut back (appending more would leave bad bytes in the middle of
    /// the log), or the data directory was removed or replaced.
    broken: Option<AppendError>,
    status: Status,
}

/// Where the journal is with compaction, between turns.
enum Compacting {
    /// None is going on. One starts when the log has outgrown the snapshot
    /// (and `--compact-min-bytes`), or at the next turn when `urgent`: the
    /// snapshot was cut by `--repair` or is of an older format, so it is
    /// replaced whatever the log's size. `not_before` is set after a
    /// failure.
    Waiting { urgent: bool, not_before: Option<Instant> },
    /// One is going on; `urgent` is kept for a retry if it fails.
    Running { compaction: Compaction, urgent: bool },
    /// The server is stopping: none starts any more, and one that was
    /// already being finished off the loop is let finish.
    Stopped { finishing: Option<Compaction> },
}

/// A compaction that failed is tried again after this long, so a full disk
/// is not hammered with snapshot writes every loop turn.
const COMPACTION_RETRY: Duration = Duration::from_secs(30);

impl Journal {
    /// Locks the data directory and rebuilds the store from it.
    pub fn open(options: &Options) -> Result<(Journal, Store), Error> {
        Journal::open_into(options, Store::new())
    }

    /// [`Journal::open`] into `store` (empty): what its policy does not keep
    /// is not loaded.
    pub fn open_into(options: &Options, store: Store) -> Result<(Journal, Store), Error> {
        let dir = DataDir::lock(&options.dir)?;
        let recovered = recover::recover(&dir, options.repair, store)?;
        let log_path = dir.log_path(recovered.generation);
        let (log, log_len, salt) = match recovered.log {
            Some((len, salt)) => {
                let file = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&log_path)
                    .map_err(|e| Error::io(&log_path, e))?;
                (file, len, salt)
            }
            None => {
                let (file, salt) = dir
                    .create(&log_path, format::LOG_MAGIC, true)
                    .map_err(|e| Error::io(&log_path, e))?;
                (file, format::FILE_HEADER_BYTES as u64, salt)
            }
        };
        let syncer = match options.fsync {
            Fsync::EverySec => Some(Syncer::start(&log).map_err(|e| Error::io(&log_path, e))?),
            _ => None,
        };
        let journal = Journal {
            status: Status {
                generation: recovered.generation,
                log_bytes: log_len,
                ..Status::default()
            },
            dir,
            fsync: options.fsync,
            log,
            generation: recovered.generation,
            log_len,
            salt,
            previous_logs: Vec::new(),
            snapshot_bytes: recovered.snapshot_bytes,
            compact_min_bytes: options.compact_min_bytes,
            syncer,
            compacting: Compacting::Waiting {
                urgent: recovered.snapshot_repaired || recovered.snapshot_outdated,
                not_before: None,
            },
            broken: None,
        };
        Ok((journal, recovered.store))
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Why puts must be refused before they are applied, if they must: the
    /// background fsync is failing, or the log could not be repaired after a
    /// failed append.
    pub fn refusal(&self) -> Option<AppendError> {
        if let Some(broken) = &self.broken {
            return Some(broken.clone());
        }
        self.syncer.as_ref().and_then(Syncer::failure)
    }

    /// Appends the turn's batch (and with `--fsync always` syncs it). On
    /// failure nothing of the batch stays in the log and the error says
    /// why; the caller then takes the puts back out of the store. The
    /// caller clears the batch.
    pub fn commit(&mut self, batch: &mut Batch) -> Result<(), AppendError> {
        if batch.is_empty() {
            return Ok(());
        }
        let salt = self.salt;
        self.append(batch.sealed(salt))
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), AppendError> {
        if self.fsync == Fsync::Always {
            // An `ok` after this fsync promises the put is on disk: not if
            // the file is one nobody will find.
            self.check_dir();
        }
        if let Some(broken) = &self.broken {
            return Err(broken.clone());
        }
        let written = self.log.write_all(bytes).and_then(|()| match self.fsync {
            Fsync::Always => self.log.sync_data(),
            Fsync::EverySec | Fsync::Never => Ok(()),
        });
        match written {
            Ok(()) => {
                self.log_len += bytes.len() as u64;
                self.status.log_bytes = self.log_len;
                match (&self.syncer, self.fsync) {
                    (Some(syncer), _) => syncer.mark_dirty(),
                    (None, Fsync::Always) => self.status.last_fsync = Some(std::time::SystemTime::now()),
                    _ => {}
                }
                Ok(())
            }
            Err(e) => {
                let reason = AppendError::Write(Arc::new(e));
                // Part of the batch may be in the file: cut it, or the next
                // append would bury a torn record in the middle of the log.
                if let Err(cut) = self.log.set_len(self.log_len) {
                    log::error!(
                        "cannot cut a failed append off {}: {cut}; refusing puts until restart",
                        self.dir.log_path(self.generation).display()
                    );
                    self.broken = Some(AppendError::Damaged(Arc::new(cut)));
                }
                Err(reason)
            }
        }
    }

    /// Looks whether the data directory is still the one locked (the loop
    /// calls this every second, and `--fsync always` before each write);
    /// once it is not, every put is refused until restart, and that is
    /// logged once.
    pub fn check_dir(&mut self) {
        if matches!(self.broken, Some(AppendError::DirectoryGone(_))) || self.dir.is_ours() {
            return;
        }
        let path = self.dir.absolute();
        log::error!(
            "data directory {} was removed or replaced: refusing every put until metricsd is restarted",
            path.display()
        );
        self.broken = Some(AppendError::DirectoryGone(Arc::from(path)));
    }

    /// Work between turns: starts a compaction when the log has grown, and
    /// moves one going on a slice further. Returns whether it wants the loop
    /// to come back soon (a snapshot is being written).
    pub fn tick(&mut self, store: &Store) -> bool {
        if let Compacting::Waiting { urgent, not_before } = self.compacting {
            let gone = matches!(self.broken, Some(AppendError::DirectoryGone(_)));
            if gone || !self.wants_compaction(urgent, not_before) {
                return false;
            }
            match self.start_compaction() {
                Ok(compaction) => self.compacting = Compacting::Running { compaction, urgent },
                Err(e) => {
                    log::warn!(
                        "cannot start a compaction: {e}; next try in {}s",
                        COMPACTION_RETRY.as_secs()
                    );
                    let not_before = Some(Instant::now() + COMPACTION_RETRY);
                    self.compacting = Compacting::Waiting { urgent, not_before };
                    return false;
                }
            }
        }
        let (compaction, urgent) = match &mut self.compacting {
            Compacting::Running { compaction, urgent } => (compaction, *urgent),
            Compacting::Stopped {
                finishing: Some(compaction),
            } => (compaction, false),
            Compacting::Waiting { .. } | Compacting::Stopped { finishing: None } => return false,
        };
        let next = match compaction.step(store, &self.dir) {
            compact::Progress::Working => return true,
            compact::Progress::Waiting => return false,
            compact::Progress::Done(Ok(bytes)) => {
                self.snapshot_bytes = bytes;
                // The snapshot covers them now, and they are removed.
                self.previous_logs.clear();
                self.status.compactions += 1;
                self.status.last_compaction = Some(std::time::SystemTime::now());
                Compacting::Waiting {
                    urgent: false,
                    not_before: None,
                }
            }
            compact::Progress::Done(Err(e)) => {
                log::warn!("compaction failed: {e}; next try in {}s", COMPACTION_RETRY.as_secs());
                let not_before = Some(Instant::now() + COMPACTION_RETRY);
                Compacting::Waiting { urgent, not_before }
            }
        };
        self.compacting = match self.compacting {
            Compacting::Stopped { .. } => Compacting::Stopped { finishing: None },
            _ => next,
        };
        false
    }

    /// Whether a snapshot is being finished off the loop (the loop should
    /// look again before long even when idle).
    pub fn finishing(&self) -> bool {
        match &self.compacting {
            Compacting::Running { compaction, .. }
            | Compacting::Stopped {
                finishing: Some(compaction),
            } => compaction.finishing(),
            Compacting::Waiting { .. } | Compacting::Stopped { finishing: None } => false,
        }
    }

    fn wants_compaction(&self, urgent: bool, not_before: Option<Instant>) -> bool {
        let grown = self.log_len >= self.compact_min_bytes.max(self.snapshot_bytes);
        (grown || urgent) && not_before.is_none_or(|at| Instant::now() >= at)
    }

    /// Begins generation N+1: a fresh log takes the appends from now on,
    /// and snapshot N+1 is written of everything stored so far.
    ///
    /// Only `--fsync always` syncs the new log and the directory here, on
    /// the loop (its puts must be durable from the first): with `everysec`
    /// the fsync thread does it within the second, and with `never` the
    /// snapshot's finishing thread syncs the directory before the rename.
    fn start_compaction(&mut self) -> io::Result<Compaction> {
        let generation = self.generation + 1;
        let prepared = Compaction::prepare(&self.dir, generation)?;
        let path = self.dir.log_path(generation);
        let (log, salt) = match self.dir.create(&path, format::LOG_MAGIC, self.fsync == Fsync::Always) {
            Ok(created) => created,
            Err(e) => {
                Compaction::discard(prepared);
                return Err(e);
            }
        };
        if let Some(syncer) = &self.syncer {
            if let Err(e) = syncer.switch(&log, self.dir.path()) {
                // Nothing was appended to it: a retry creates it afresh.
                drop(log);
                let _ = std::fs::remove_file(&path);
                Compaction::discard(prepared);
                return Err(e);
            }
        }
        let old_log_len = self.log_len;
        self.previous_logs.push(std::mem::replace(&mut self.log, log));
        self.salt = salt;
        self.generation = generation;
        self.log_len = format::FILE_HEADER_BYTES as u64;
        self.status.generation = generation;
        self.status.log_bytes = self.log_len;
        Ok(Compaction::begin(prepared, generation, old_log_len))
    }

    /// The server is stopping: a snapshot still being encoded is dropped
    /// (the logs hold everything) and none is started any more, so the
    /// stop is not held up by one.
    pub fn stop_compacting(&mut self) {
        let finishing = match std::mem::replace(&mut self.compacting, Compacting::Stopped { finishing: None }) {
            Compacting::Running { compaction, .. }
            | Compacting::Stopped {
                finishing: Some(compaction),
            } => {
                if compaction.finishing() {
                    Some(compaction)
                } else {
                    compaction.abandon();
                    None
                }
            }
            Compacting::Waiting { .. } | Compacting::Stopped { finishing: None } => None,
        };
        self.compacting = Compacting::Stopped { finishing };
    }

    /// Test hook: the log's handle is swapped for a read-only one, so the
    /// next append fails as a full or failing disk would make it.
    #[cfg(test)]
    pub fn break_log_for_test(&mut self) {
        let path = self.dir.log_path(self.generation);
        self.log = File::open(&path).expect("reopen the log read-only");
    }

    pub fn status(&self) -> Status {
        let mut status = self.status.clone();
        if let Some(syncer) = &self.syncer {
            status.last_fsync = syncer.last_sync();
        }
        status
    }

    /// Graceful shutdown: syncs every log whose puts no durable snapshot
    /// covers yet, whatever the fsync policy. A snapshot being finished
    /// off the loop is left to finish (or not: a crash at any step of it
    /// recovers), so its fsync of a large file cannot hold the stop up.
    pub fn close(mut self) -> io::Result<()> {
        self.stop_compacting();
        if let Some(syncer) = self.syncer.take() {
            syncer.stop();
        }
        for log in &self.previous_logs {
            log.sync_data()?;
        }
        self.log.sync_data()
    }
}
