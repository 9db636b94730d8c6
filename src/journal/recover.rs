//! Start-up: rebuild the store from the newest snapshot and the logs after
//! it, cut torn tails, and refuse (or, with `--repair`, cut) damage.
//!
//! A torn tail is what a crash in the middle of an append leaves: bad bytes
//! at the end of a log with no good record after them. Those puts were never
//! acknowledged (`--fsync always`) or were within the window the fsync
//! policy allows to lose, so they are cut with a warning. Bad bytes with a
//! good record after them are not a torn write but damage, and starting
//! without them would silently drop acknowledged data: that needs the
//! operator's `--repair`.

use super::files::{self, DataDir, RecordReader, Step};
use super::format::{self, Damage, SnapshotRecord, FILE_HEADER_BYTES, LOG_MAGIC, SNAPSHOT_MAGIC};
use super::Error;
use crate::store::Store;
use std::path::Path;
use std::time::Instant;

/// What recovery rebuilt and where appending goes on.
pub struct Recovered {
    pub store: Store,
    /// The generation of the newest log: appends go on there.
    pub generation: u64,
    /// Its length after any torn tail was cut, and its salt; None if it has
    /// to be created.
    pub log: Option<(u64, u32)>,
    /// `--repair` dropped part of the snapshot: a new one should be written
    /// soon, or every start would find the damage again.
    pub snapshot_repaired: bool,
    /// Size of the snapshot loaded (0 without one).
    pub snapshot_bytes: u64,
}

/// Loads everything in `dir`.
pub fn recover(dir: &DataDir, repair: bool) -> Result<Recovered, Error> {
    let started = Instant::now();
    let listing = dir.list()?;
    for path in &listing.temporary {
        log::warn!("removing {}: a snapshot whose writing was interrupted", path.display());
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    let base = listing.snapshots.last().copied();
    let mut store = Store::new();
    let mut snapshot_bytes = 0;
    let mut snapshot_repaired = false;
    if let Some(generation) = base {
        let path = dir.snapshot_path(generation);
        (snapshot_bytes, snapshot_repaired) = load_snapshot(&path, repair, &mut store)?;
        log::info!(
            "loaded {}: {} points in {} series",
            path.display(),
            store.point_count(),
            store.series_count()
        );
    }
    // Files older than the snapshot are already in it: a crash came between
    // the snapshot's rename and their removal.
    for old in listing.snapshots.iter().filter(|&&g| Some(g) < base) {
        remove_superseded(&dir.snapshot_path(*old))?;
    }
    let base = base.unwrap_or(0);
    for old in listing.logs.iter().filter(|&&g| g < base) {
        remove_superseded(&dir.log_path(*old))?;
    }
    let logs: Vec<u64> = listing.logs.iter().copied().filter(|&g| g >= base).collect();
    let mut records = 0;
    let mut log = None;
    for &generation in &logs {
        let (len, count, salt) = replay_log(&dir.log_path(generation), repair, &mut store)?;
        records += count;
        log = Some((len, salt));
    }
    log::info!(
        "recovered {} points in {} series ({} log records from {} log files) in {} ms",
        store.point_count(),
        store.series_count(),
        records,
        logs.len(),
        started.elapsed().as_millis()
    );
    Ok(Recovered {
        store,
        generation: logs.last().copied().unwrap_or(base.max(1)),
        log,
        snapshot_bytes,
        snapshot_repaired,
    })
}

fn remove_superseded(path: &Path) -> Result<(), Error> {
    log::info!("removing {}: superseded by a newer snapshot", path.display());
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))
}

/// Loads a snapshot into `store`; returns its size and whether `--repair`
/// dropped part of it. A snapshot is renamed into place only once complete
/// and synced, so any bad byte in it is damage, never a torn write.
fn load_snapshot(path: &Path, repair: bool, store: &mut Store) -> Result<(u64, bool), Error> {
    let mut reader = RecordReader::open(path, SNAPSHOT_MAGIC)?;
    let size = reader.size();
    let (mut series, mut points) = (0u64, 0u64);
    let mut last_key: Option<Box<str>> = None;
    let io = |e| Error::io(path, e);
    let damage = loop {
        let at = reader.offset();
        match reader.next().map_err(io)? {
            Step::Record(body) => match format::decode_snapshot(body) {
                Ok(SnapshotRecord::Series { key, points: bytes }) => {
                    if last_key.as_deref() != Some(key) {
                        series += 1;
                        last_key = Some(key.into());
                    }
                    points += (bytes.len() / 16) as u64;
                    store.put_points(key, format::points(bytes));
                }
                Ok(SnapshotRecord::End {
                    series: want_series,
                    points: want_points,
                }) => {
                    if (want_series, want_points) != (series, points) {
                        return damaged(path, at, Damage::EndMismatch, repair, size);
                    }
                    match reader.next().map_err(io)? {
                        Step::End => return Ok((size, false)),
                        _ => return damaged(path, at, Damage::AfterEnd, repair, size),
                    }
                }
                Err(damage) => {
                    let len = body.len();
                    reader.unread(len);
                    break damage;
                }
            },
            // Without its END record the snapshot is cut short.
            Step::End => break Damage::NoEnd,
            Step::Bad(damage) => break damage,
        }
    };
    let at = reader.offset();
    damaged(path, at, damage, repair, size)
}

/// A snapshot with damage at `at`: refused, or with `--repair` kept up to it.
fn damaged(path: &Path, at: u64, damage: Damage, repair: bool, size: u64) -> Result<(u64, bool), Error> {
    if !repair {
        return Err(Error::Corrupt {
            file: path.to_owned(),
            offset: at,
            damage,
        });
    }
    log::warn!(
        "--repair: {} is damaged at byte {at} ({damage}); kept the points before it, dropped the {} bytes after",
        path.display(),
        size - at
    );
    Ok((size, true))
}

/// Replays one log into `store`; returns its good length (after cutting a
/// torn tail, or with `--repair` damage), how many records it held, and
/// its salt.
fn replay_log(path: &Path, repair: bool, store: &mut Store) -> Result<(u64, u64, u32), Error> {
    let io = |e| Error::io(path, e);
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len < FILE_HEADER_BYTES as u64 {
        // A crash while the log was being created, before its header was
        // whole: it holds no puts.
        log::warn!(
            "{}: a log cut short in its header ({len} bytes); rewriting it empty",
            path.display()
        );
        let (header, salt) = format::new_file_header(LOG_MAGIC);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(io)?;
        std::io::Write::write_all(&mut file, &header).map_err(io)?;
        file.sync_all().map_err(io)?;
        return Ok((FILE_HEADER_BYTES as u64, 0, salt));
    }
    let mut reader = RecordReader::open(path, LOG_MAGIC)?;
    let salt = reader.salt();
    let mut records = 0;
    let damage = loop {
        match reader.next().map_err(io)? {
            Step::Record(body) => {
                // Checked whole before any of it is applied, so a record is
                // replayed entirely or not at all.
                if let Err(damage) = format::decode_puts(body, |_, _, _| {}) {
                    let len = body.len();
                    reader.unread(len);
                    break damage;
                }
                let _ = format::decode_puts(body, |key, timestamp, value| {
                    store.put(key, timestamp, value);
                });
                records += 1;
            }
            Step::End => return Ok((reader.offset(), records, salt)),
            Step::Bad(damage) => break damage,
        }
    };
    let (at, size) = (reader.offset(), reader.size());
    let dropped = size - at;
    match reader.good_record_after().map_err(io)? {
        None => log::warn!(
            "{}: cut a torn tail of {dropped} bytes at byte {at} ({damage}): a write the crash interrupted",
            path.display()
        ),
        Some(_) if repair => log::warn!(
            "--repair: {} is damaged at byte {at} ({damage}); kept the {records} records before it, dropped {dropped} bytes",
            path.display()
        ),
        Some(_) => {
            return Err(Error::Corrupt {
                file: path.to_owned(),
                offset: at,
                damage,
            })
        }
    }
    files::truncate(path, at).map_err(io)?;
    Ok((at, records, salt))
}
