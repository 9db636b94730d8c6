//! The data directory: its lock, the names of its files, syncing the
//! directory itself, and reading a file's records back.
//!
//! ```text
//! DIR/LOCK                       held (flock) while a server uses DIR; holds its pid
//! DIR/log-0000000007             puts since snapshot 7 was begun
//! DIR/snapshot-0000000007        every point as of when log 7 was begun (or later)
//! DIR/snapshot-0000000008.tmp    a snapshot being written; never read
//! ```
//!
//! Generation N's snapshot plus logs N, N+1, ... is the whole data set.

use super::format::{self, Damage, Scan, FILE_HEADER_BYTES, HEADER_BYTES, MAX_BODY_BYTES};
use super::Error;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const LOCK_FILE: &str = "LOCK";
const LOG_PREFIX: &str = "log-";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const TMP_SUFFIX: &str = ".tmp";

/// A data directory this process holds the lock of.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Holds the advisory lock for as long as the server lives; the kernel
    /// drops it when the process dies, so a crash never leaves DIR locked.
    _lock: File,
    /// `path` made absolute when locked, for [`DataDir::is_ours`] and the
    /// messages about it.
    absolute: PathBuf,
    /// (device, inode) of the directory and of its lock file when locked.
    identity: [(u64, u64); 2],
}

/// Generations found in a data directory, each list ascending.
#[derive(Debug, Default)]
pub struct Listing {
    pub logs: Vec<u64>,
    pub snapshots: Vec<u64>,
    /// Unfinished snapshots left by a crash.
    pub temporary: Vec<PathBuf>,
}

impl DataDir {
    /// Creates the directory if missing and takes its lock, or says which
    /// process holds it.
    pub fn lock(path: &Path) -> Result<DataDir, Error> {
        if !path.is_dir() {
            fs::create_dir_all(path).map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory => {
                    match path.ancestors().find(|a| a.exists() && !a.is_dir()) {
                        Some(file) => Error::FileInTheWay {
                            dir: path.to_owned(),
                            file: file.to_owned(),
                        },
                        None => Error::dir("create data directory", path)(e),
                    }
                }
                _ => Error::dir("create data directory", path)(e),
            })?;
            // The new directory's own entry, for `--fsync always`'s first puts.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent).map_err(Error::dir("sync the directory", parent))?;
            }
        }
        let lock_path = path.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(Error::dir("open the lock file", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                return Err(Error::Locked {
                    dir: path.to_owned(),
                    holder: holder.trim().to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::dir("lock", &lock_path)(e)),
        }
        // The pid is for the message a second server prints; failing to write
        // it costs only that.
        let _ = lock
            .set_len(0)
            .and_then(|()| lock.write_all(format!("{}\n", std::process::id()).as_bytes()));
        let absolute = std::path::absolute(path).map_err(|e| Error::io(path, e))?;
        let dir = fs::metadata(&absolute).map_err(|e| Error::io(&absolute, e))?;
        let locked = lock.metadata().map_err(|e| Error::io(&lock_path, e))?;
        Ok(DataDir {
            path: path.to_owned(),
            _lock: lock,
            identity: [(dir.dev(), dir.ino()), (locked.dev(), locked.ino())],
            absolute,
        })
    }

    /// The directory's absolute path (as given, not resolving symbolic
    /// links), for messages.
    pub fn absolute(&self) -> &Path {
        &self.absolute
    }

    /// Whether the directory and its lock file are still the ones this
    /// server locked. Not when either was removed (`rm -rf DIR`) or
    /// replaced: then another server could lock the path, and what is
    /// written here is in files nobody will find. Two `stat`s.
    pub fn is_ours(&self) -> bool {
        let same = |path: &Path, identity: (u64, u64)| match fs::metadata(path) {
            Ok(meta) => (meta.dev(), meta.ino()) == identity,
            Err(e) => !matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory),
        };
        same(&self.absolute, self.identity[0]) && same(&self.absolute.join(LOCK_FILE), self.identity[1])
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn log_path(&self, generation: u64) -> PathBuf {
        self.path.join(format!("{LOG_PREFIX}{generation:010}"))
    }

    pub fn snapshot_path(&self, generation: u64) -> PathBuf {
        self.path.join(format!("{SNAPSHOT_PREFIX}{generation:010}"))
    }

    pub fn snapshot_tmp_path(&self, generation: u64) -> PathBuf {
        self.path.join(format!("{SNAPSHOT_PREFIX}{generation:010}{TMP_SUFFIX}"))
    }

    /// The logs and snapshots in the directory; other files are ignored.
    pub fn list(&self) -> Result<Listing, Error> {
        let mut listing = Listing::default();
        let entries = fs::read_dir(&self.path).map_err(Error::dir("list data directory", &self.path))?;
        for entry in entries {
            let entry = entry.map_err(Error::dir("list data directory", &self.path))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_prefix(SNAPSHOT_PREFIX) {
                if stem.strip_suffix(TMP_SUFFIX).and_then(parse_generation).is_some() {
                    listing.temporary.push(entry.path());
                } else if let Some(generation) = parse_generation(stem) {
                    listing.snapshots.push(generation);
                }
            } else if let Some(generation) = name.strip_prefix(LOG_PREFIX).and_then(parse_generation) {
                listing.logs.push(generation);
            }
        }
        listing.logs.sort_unstable();
        listing.snapshots.sort_unstable();
        Ok(listing)
    }

    /// Makes creations, renames and removals of files in the directory
    /// durable: fsync of a file does not cover its directory entry.
    pub fn sync(&self) -> io::Result<()> {
        sync_dir(&self.path)
    }

    /// Creates a new file with a header of `magic` and a fresh salt (which
    /// it returns), open for appending; with `sync`, synced with its
    /// directory entry before it is returned.
    pub fn create(&self, path: &Path, magic: &[u8; 16], sync: bool) -> io::Result<(File, u32)> {
        let mut file = OpenOptions::new().create_new(true).append(true).open(path)?;
        let (header, salt) = format::new_file_header(magic);
        let written = file.write_all(&header).and_then(|()| match sync {
            true => file.sync_all().and_then(|()| self.sync()),
            false => Ok(()),
        });
        if let Err(e) = written {
            // A file without its whole header (a full disk) must not stay
            // to be taken for damage at the next start.
            drop(file);
            let _ = fs::remove_file(path);
            return Err(e);
        }
        Ok((file, salt))
    }
}

pub fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

fn parse_generation(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// What [`RecordReader::next`] found.
#[derive(Debug)]
pub enum Step<'a> {
    /// A record with a good checksum (its body).
    Record(&'a [u8]),
    /// The clean end of the file.
    End,
    /// Bytes at [`RecordReader::offset`] that are not a whole good record.
    Bad(Damage),
}

impl RecordReader {
    /// Goes back to the start of the record [`RecordReader::next`] just
    /// returned, when its body turned out not to decode.
    pub fn unread(&mut self, body_len: usize) {
        self.start -= HEADER_BYTES + body_len;
    }
}

/// Reads a data file's records in order through a bounded buffer, so that a
/// log of any size is replayed without loading it whole.
pub struct RecordReader {
    file: File,
    magic: &'static [u8; 16],
    salt: u32,
    size: u64,
    buf: Vec<u8>,
    /// Start of the unread bytes in `buf`.
    start: usize,
    /// File offset of `buf[0]`.
    base: u64,
}

/// Bytes read per refill: large reads for a fast replay, a small fixed
/// memory cost beside the store being built.
const READ_CHUNK: usize = 4 << 20;

impl RecordReader {
    /// Opens `path` and reads its header, which must be one of `magics`
    /// (the versions of a kind of file that are read; [`RecordReader::magic`]
    /// says which it is).
    pub fn open(path: &Path, magics: &[&'static [u8; 16]]) -> Result<RecordReader, Error> {
        let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut header = [0; FILE_HEADER_BYTES];
        let (magic, salt) = file
            .read_exact(&mut header)
            .ok()
            .and_then(|()| {
                magics
                    .iter()
                    .find_map(|&magic| format::parse_file_header(&header, magic).map(|salt| (magic, salt)))
            })
            .ok_or_else(|| Error::NotOurs { file: path.to_owned() })?;
        Ok(RecordReader {
            file,
            magic,
            salt,
            size,
            buf: Vec::new(),
            start: 0,
            base: FILE_HEADER_BYTES as u64,
        })
    }

    /// The magic the file starts with: its kind and version.
    pub fn magic(&self) -> &'static [u8; 16] {
        self.magic
    }

    /// The salt of the file's checksums.
    pub fn salt(&self) -> u32 {
        self.salt
    }

    /// File offset of the next unread byte: after the last good record.
    pub fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next record, the end, or what is wrong with the bytes at
    /// [`RecordReader::offset`].
    pub fn next(&mut self) -> io::Result<Step<'_>> {
        loop {
            match format::scan(&self.buf[self.start..], self.salt) {
                Scan::Record { len, .. } => {
                    let body = self.start + HEADER_BYTES..self.start + len;
                    self.start += len;
                    return Ok(Step::Record(&self.buf[body]));
                }
                Scan::Corrupt(damage) => return Ok(Step::Bad(damage)),
                Scan::Incomplete => {
                    if !self.fill()? {
                        return Ok(if self.start == self.buf.len() {
                            Step::End
                        } else {
                            Step::Bad(Damage::Short)
                        });
                    }
                }
            }
        }
    }

    /// Whether any good record starts after the bad bytes at
    /// [`RecordReader::offset`]: if none does, they are a torn tail; if one
    /// does, the file is damaged in the middle. Consumes the reader.
    ///
    /// Every later byte offset is tried. Lengths that would run past the end
    /// of the file or past [`MAX_BODY_BYTES`], or bodies of an unknown kind,
    /// are rejected before any checksum is computed, so garbage costs little
    /// to look through. Checksums are seeded with the file's secret salt, so
    /// bytes a client chose (a put's timestamp and value) cannot pass for a
    /// good record and turn a torn tail into a refusal to start.
    pub fn good_record_after(mut self) -> io::Result<Option<u64>> {
        loop {
            self.start += 1;
            if self.offset() + HEADER_BYTES as u64 > self.size {
                return Ok(None);
            }
            if !self.have(HEADER_BYTES + 1)? {
                return Ok(None);
            }
            let at = &self.buf[self.start..];
            let len = u32::from_le_bytes([at[0], at[1], at[2], at[3]]) as u64;
            let fits =
                len > 0 && len <= MAX_BODY_BYTES as u64 && self.offset() + HEADER_BYTES as u64 + len <= self.size;
            if !fits || !format::is_known_kind(at[HEADER_BYTES]) {
                continue;
            }
            if !self.have(HEADER_BYTES + len as usize)? {
                continue;
            }
            if let Scan::Record { .. } = format::scan(&self.buf[self.start..], self.salt) {
                return Ok(Some(self.offset()));
            }
        }
    }

    /// Makes at least `want` unread bytes available unless the file ends first.
    fn have(&mut self, want: usize) -> io::Result<bool> {
        while self.buf.len() - self.start < want {
            if !self.fill()? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Reads more of the file after the unread bytes; false at end of file.
    fn fill(&mut self) -> io::Result<bool> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.base += self.start as u64;
            self.start = 0;
        }
        let old = self.buf.len();
        // No more than the file holds: a small file costs no 4 MiB buffer
        // (zeroed, once per refill), and the bytes looked for at its end
        // are not asked of the disk again and again.
        let left = self.size.saturating_sub(self.base + old as u64);
        let want = READ_CHUNK.min(usize::try_from(left).unwrap_or(READ_CHUNK));
        if want == 0 {
            return Ok(false);
        }
        self.buf.resize(old + want, 0);
        let n = loop {
            match self.file.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        Ok(n > 0)
    }
}

/// Cuts a file back to `len` bytes, durably.
pub fn truncate(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}
