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
use super::format::{
    self, Damage, LogEntry, SnapshotRecord, FILE_HEADER_BYTES, LOG_MAGIC, SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_V1,
};
use super::Error;
use crate::store::chunk::Chunk;
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
    /// The snapshot is of format 1 (points, not chunks): a new one should
    /// be written soon, at an eighth of its size or less.
    pub snapshot_outdated: bool,
    /// Size of the snapshot loaded (0 without one).
    pub snapshot_bytes: u64,
}

/// Loads everything in `dir` into `store` (empty, with the policy that
/// decides what it keeps: expired points are not loaded).
pub fn recover(dir: &DataDir, repair: bool, mut store: Store) -> Result<Recovered, Error> {
    let started = Instant::now();
    let listing = dir.list()?;
    for path in &listing.temporary {
        log::warn!("removing {}: a snapshot whose writing was interrupted", path.display());
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    let base = listing.snapshots.last().copied();
    let mut loaded = Loaded::default();
    if let Some(generation) = base {
        let path = dir.snapshot_path(generation);
        loaded = load_snapshot(&path, repair, &mut store)?;
        log::info!(
            "loaded {}: {} points in {} series",
            path.display(),
            store.point_count(),
            store.series_count()
        );
        if loaded.outdated {
            log::info!(
                "{} is of snapshot format 1: a compaction rewrites it in format 2 now",
                path.display()
            );
        }
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
        let path = dir.log_path(generation);
        let replayed = replay_log(&path, repair, &mut store)?;
        if let Some(Cut {
            at,
            dropped,
            damage,
            reason,
        }) = replayed.cut
        {
            match reason {
                CutReason::TornTail => log::warn!(
                    "{}: cut a torn tail of {dropped} bytes at byte {at} ({damage}): a write the crash interrupted",
                    path.display()
                ),
                CutReason::Repair => log::warn!(
                    "--repair: {} is damaged at byte {at} ({damage}); kept the {} records before it, dropped {dropped} bytes",
                    path.display(),
                    replayed.records
                ),
            }
        }
        records += replayed.records;
        log = Some((replayed.len, replayed.salt));
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
        snapshot_bytes: loaded.bytes,
        snapshot_repaired: loaded.repaired,
        snapshot_outdated: loaded.outdated,
    })
}

fn remove_superseded(path: &Path) -> Result<(), Error> {
    log::info!("removing {}: superseded by a newer snapshot", path.display());
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))
}

/// What loading a snapshot found.
#[derive(Debug, Default)]
struct Loaded {
    /// Its size.
    bytes: u64,
    /// `--repair` dropped part of it.
    repaired: bool,
    /// It is of format 1.
    outdated: bool,
}

/// Loads a snapshot into `store`. A snapshot is renamed into place only
/// once complete and synced, so any bad byte in it is damage, never a torn
/// write.
fn load_snapshot(path: &Path, repair: bool, store: &mut Store) -> Result<Loaded, Error> {
    let mut reader = RecordReader::open(path, &[SNAPSHOT_MAGIC, SNAPSHOT_MAGIC_V1])?;
    let outdated = reader.magic() == SNAPSHOT_MAGIC_V1;
    let size = reader.size();
    let (mut series, mut points) = (0u64, 0u64);
    let mut last_key: Option<Box<str>> = None;
    let io = |e| Error::io(path, e);
    let damaged = |at, damage| {
        damaged(path, at, damage, repair, size).map(|repaired| Loaded {
            bytes: size,
            repaired,
            outdated,
        })
    };
    let damage = loop {
        let at = reader.offset();
        match reader.next().map_err(io)? {
            Step::Record(body) => {
                let len = body.len();
                match format::decode_snapshot(body) {
                    Ok(SnapshotRecord::End {
                        series: want_series,
                        points: want_points,
                    }) => {
                        if (want_series, want_points) != (series, points) {
                            return damaged(at, Damage::EndMismatch);
                        }
                        match reader.next().map_err(io)? {
                            Step::End => {
                                return Ok(Loaded {
                                    bytes: size,
                                    repaired: false,
                                    outdated,
                                })
                            }
                            _ => return damaged(at, Damage::AfterEnd),
                        }
                    }
                    Ok(record) => match load_series(record, outdated, store) {
                        Ok((key, n)) => {
                            if last_key.as_deref() != Some(key) {
                                series += 1;
                                last_key = Some(key.into());
                            }
                            points += n;
                        }
                        Err(damage) => {
                            reader.unread(len);
                            break damage;
                        }
                    },
                    Err(damage) => {
                        reader.unread(len);
                        break damage;
                    }
                }
            }
            // Without its END record the snapshot is cut short.
            Step::End => break Damage::NoEnd,
            Step::Bad(damage) => break damage,
        }
    };
    let at = reader.offset();
    damaged(at, damage)
}

/// Stores the points of a SERIES or CHUNKS record; returns its key and
/// point count. A chunk whose bits do not decode is damage; the chunks
/// before it in the record are kept (with `--repair`, what precedes the
/// damage).
fn load_series<'a>(record: SnapshotRecord<'a>, outdated: bool, store: &mut Store) -> Result<(&'a str, u64), Damage> {
    match record {
        SnapshotRecord::Series { key, points } => {
            store.put_points(key, format::points(points));
            Ok((key, (points.len() / 16) as u64))
        }
        // Format 1 has no chunks: one there is a forgery or a bug.
        SnapshotRecord::Chunks { key, chunks, points } if !outdated => {
            for entry in format::chunks(chunks) {
                let chunk = Chunk::from_parts(entry.min_ts, entry.max_ts, entry.count, entry.bits.into())
                    .map_err(|_| Damage::BadBody)?;
                store.adopt_chunk(key, chunk).map_err(|_| Damage::BadBody)?;
            }
            Ok((key, points))
        }
        _ => Err(Damage::BadBody),
    }
}

/// A snapshot with damage at `at`: refused, or with `--repair` kept up to
/// it (returns true).
fn damaged(path: &Path, at: u64, damage: Damage, repair: bool, size: u64) -> Result<bool, Error> {
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
    Ok(true)
}

/// What replaying one log found.
#[derive(Debug, PartialEq)]
struct Replayed {
    /// Its good length: after cutting a torn tail, or with `--repair` damage.
    len: u64,
    /// Records replayed.
    records: u64,
    salt: u32,
    /// The bad bytes cut off its end, if any.
    cut: Option<Cut>,
}

/// Bad bytes cut off the end of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cut {
    /// Where the bad bytes began: the log's new length.
    at: u64,
    /// How many bytes were cut.
    dropped: u64,
    damage: Damage,
    reason: CutReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CutReason {
    /// No good record follows: a write a crash interrupted.
    TornTail,
    /// Good records follow, and `--repair` allowed dropping them.
    Repair,
}

/// Replays one log into `store`, cutting a torn tail (or with `--repair`
/// damage) off its end.
fn replay_log(path: &Path, repair: bool, store: &mut Store) -> Result<Replayed, Error> {
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
        return Ok(Replayed {
            len: FILE_HEADER_BYTES as u64,
            records: 0,
            salt,
            cut: None,
        });
    }
    let mut reader = RecordReader::open(path, &[LOG_MAGIC])?;
    let salt = reader.salt();
    let mut records = 0;
    let damage = loop {
        match reader.next().map_err(io)? {
            Step::Record(body) => {
                // Checked whole before any of it is applied, so a record is
                // replayed entirely or not at all.
                if let Err(damage) = format::decode_log(body, |_| {}) {
                    let len = body.len();
                    reader.unread(len);
                    break damage;
                }
                let _ = format::decode_log(body, |entry| match entry {
                    LogEntry::Put { key, timestamp, value } => {
                        store.load(key, timestamp, value);
                    }
                    LogEntry::Delete { key } => {
                        store.take_series(key);
                    }
                });
                records += 1;
            }
            Step::End => {
                return Ok(Replayed {
                    len: reader.offset(),
                    records,
                    salt,
                    cut: None,
                })
            }
            Step::Bad(damage) => break damage,
        }
    };
    let (at, size) = (reader.offset(), reader.size());
    let reason = match reader.good_record_after().map_err(io)? {
        None => CutReason::TornTail,
        Some(_) if repair => CutReason::Repair,
        Some(_) => {
            return Err(Error::Corrupt {
                file: path.to_owned(),
                offset: at,
                damage,
            })
        }
    };
    files::truncate(path, at).map_err(io)?;
    Ok(Replayed {
        len: at,
        records,
        salt,
        cut: Some(Cut {
            at,
            dropped: size - at,
            damage,
            reason,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{Batch, Fsync, Journal, Options};
    use crate::store::mix::Mix;
    use crate::store::Part;
    use crate::test_support::{poll_until, TempDir, XorShift};
    use format::{SnapshotEncoder, HEADER_BYTES};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    fn log_path(dir: &TempDir, generation: u64) -> PathBuf {
        dir.0.join(format!("log-{generation:010}"))
    }

    fn snapshot_path(dir: &TempDir, generation: u64) -> PathBuf {
        dir.0.join(format!("snapshot-{generation:010}"))
    }

    type Put = (&'static str, i64, f64);

    /// The bytes of a log whose records are `batches` (one record each),
    /// and where each record starts.
    fn log_bytes(batches: &[&[Put]]) -> (Vec<u8>, Vec<usize>) {
        let (header, salt) = format::new_file_header(LOG_MAGIC);
        let mut bytes = header.to_vec();
        let mut starts = Vec::new();
        for puts in batches {
            let mut batch = Batch::default();
            for &(key, timestamp, value) in *puts {
                batch.push(key, timestamp, value, None);
            }
            starts.push(bytes.len());
            bytes.extend_from_slice(batch.sealed(salt));
        }
        (bytes, starts)
    }

    /// The bytes of a snapshot of `points` (in key order, ascending within
    /// a key), and where each record starts (the END record last).
    fn snapshot_bytes(points: &[Put]) -> (Vec<u8>, Vec<usize>) {
        let (header, salt) = format::new_file_header(SNAPSHOT_MAGIC);
        let mut bytes = header.to_vec();
        let mut encoder = SnapshotEncoder::new(salt);
        let mut starts = Vec::new();
        let mut last_key: Option<Arc<str>> = None;
        for &(key, timestamp, value) in points {
            if last_key.as_deref() != Some(key) {
                encoder.flush(&mut bytes);
                starts.push(bytes.len());
                last_key = Some(key.into());
            }
            encoder.push(&mut bytes, last_key.as_ref().unwrap(), (timestamp, value));
        }
        encoder.flush(&mut bytes);
        starts.push(bytes.len());
        encoder.finish(&mut bytes);
        (bytes, starts)
    }

    /// Every point of `store`, in key and timestamp order, values as bits.
    fn dump(store: &Store) -> Vec<(String, i64, u64)> {
        let mut points = Vec::new();
        store.walk(None, |key, (timestamp, value)| {
            points.push((key.to_string(), timestamp, value.to_bits()));
            true
        });
        points
    }

    /// What `dump` shows of a store after `puts` in order: last write wins.
    fn model(puts: &[Put]) -> Vec<(String, i64, u64)> {
        let mut store = Store::new();
        for &(key, timestamp, value) in puts {
            store.put(key, timestamp, value);
        }
        dump(&store)
    }

    fn recover_dir(dir: &TempDir, repair: bool) -> Result<Recovered, Error> {
        let locked = DataDir::lock(&dir.0)?;
        recover(&locked, repair, Store::new())
    }

    fn options(dir: &TempDir) -> Options {
        Options {
            fsync: Fsync::Never,
            ..Options::new(&dir.0)
        }
    }

    const FRONT: [&[Put]; 2] = [
        &[("palm.cpu", 1, 0.5), ("eardrum.cpu", 2, -3.0)],
        &[("palm.cpu", 1, 7.25)],
    ];
    /// Several entries, so a cut inside it leaves whole entries before the
    /// cut that must not be replayed either.
    const LAST: &[Put] = &[("palm.cpu", 3, 1.0), ("ключ", -4, 1e300), ("eardrum.cpu", 2, 9.0)];

    #[test]
    fn a_torn_tail_cut_at_every_byte_of_the_last_record_keeps_the_records_before_it() {
        let dir = TempDir::new("torn");
        let (bytes, starts) = log_bytes(&[FRONT[0], FRONT[1], LAST]);
        let last = starts[2];
        let front: Vec<Put> = FRONT.concat();
        let later = ("later", 5, 2.5);
        for cut in last + 1..bytes.len() {
            // What recovery reports: the good length and the bytes it dropped.
            std::fs::write(log_path(&dir, 1), &bytes[..cut]).unwrap();
            let mut store = Store::new();
            let replayed = replay_log(&log_path(&dir, 1), false, &mut store).unwrap();
            let cut_report = replayed.cut.expect("a cut");
            assert_eq!(
                (replayed.len, replayed.records, cut_report.at, cut_report.dropped),
                (last as u64, 2, last as u64, (cut - last) as u64),
                "cut at {cut}"
            );
            assert_eq!(cut_report.reason, CutReason::TornTail, "cut at {cut}");
            assert_eq!(cut_report.damage, Damage::Short, "cut at {cut}");
            assert_eq!(dump(&store), model(&front), "cut at {cut}");
            assert_eq!(std::fs::metadata(log_path(&dir, 1)).unwrap().len(), last as u64);

            // And the log takes appends after it: a restart sees both.
            std::fs::write(log_path(&dir, 1), &bytes[..cut]).unwrap();
            let (mut journal, store) = Journal::open(&options(&dir)).unwrap();
            assert_eq!(dump(&store), model(&front), "cut at {cut}");
            let mut batch = Batch::default();
            batch.push(later.0, later.1, later.2, None);
            journal.commit(&mut batch).unwrap();
            journal.close().unwrap();
            let (journal, store) = Journal::open(&options(&dir)).unwrap();
            assert_eq!(
                dump(&store),
                model(&[front.as_slice(), &[later]].concat()),
                "cut at {cut}"
            );
            journal.close().unwrap();
            assert_eq!(dir.files(), ["LOCK", "log-0000000001"]);
            std::fs::remove_file(log_path(&dir, 1)).unwrap();
        }
        // Cut exactly before it, there is nothing to cut.
        std::fs::write(log_path(&dir, 1), &bytes[..last]).unwrap();
        let replayed = replay_log(&log_path(&dir, 1), false, &mut Store::new()).unwrap();
        assert_eq!((replayed.len, replayed.cut), (last as u64, None));
    }

    /// The field of a one-put PUTS record (with a one-byte key length) that
    /// byte `i` of the record belongs to.
    fn put_record_field(i: usize, key_len: usize) -> &'static str {
        match i {
            0..4 => "length",
            4..8 => "checksum",
            8 => "kind",
            9 => "key length",
            _ if i < 10 + key_len => "key",
            _ if i < 10 + key_len + 8 => "timestamp",
            _ => "value",
        }
    }

    #[test]
    fn a_flipped_bit_in_any_field_of_a_log_record_is_damage() {
        let dir = TempDir::new("flip-log");
        let target: Put = ("palm.cpu", 1150864247, 23.7);
        let (bytes, starts) = log_bytes(&[FRONT[0], &[target], FRONT[1]]);
        let (at, end) = (starts[1], starts[2]);
        assert_eq!(
            end - at,
            HEADER_BYTES + 2 + target.0.len() + 16,
            "one put, one-byte key length"
        );
        let mut fields = std::collections::BTreeSet::new();
        for bit in at * 8..end * 8 {
            let field = put_record_field(bit / 8 - at, target.0.len());
            fields.insert(field);
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let whole = || format!("bit {} of the {field}", bit - at * 8);

            // Good records follow: refused, pointing at the damaged record,
            // and the file is left as it was.
            std::fs::write(log_path(&dir, 1), &bad).unwrap();
            match recover_dir(&dir, false) {
                Err(Error::Corrupt { offset, damage, .. }) => {
                    assert_eq!(offset, at as u64, "{}", whole());
                    let expected: &[Damage] = match field {
                        // Longer than the file, or than any record; shorter
                        // and the checksum no longer covers the same bytes.
                        "length" => &[Damage::Short, Damage::BadLength, Damage::BadChecksum],
                        _ => &[Damage::BadChecksum],
                    };
                    assert!(expected.contains(&damage), "{}: {damage:?}", whole());
                }
                Err(e) => panic!("{}: {e}", whole()),
                Ok(_) => panic!("{} went unnoticed", whole()),
            }
            assert_eq!(std::fs::read(log_path(&dir, 1)).unwrap(), bad, "{}", whole());

            // With --repair: the records before it, the file cut there.
            let recovered = recover_dir(&dir, true).unwrap();
            assert_eq!(dump(&recovered.store), model(FRONT[0]), "{}", whole());
            assert_eq!(std::fs::metadata(log_path(&dir, 1)).unwrap().len(), at as u64);

            // As the last record: a torn tail, cut without --repair.
            std::fs::write(log_path(&dir, 1), &bad[..end]).unwrap();
            let recovered = recover_dir(&dir, false).unwrap();
            assert_eq!(dump(&recovered.store), model(FRONT[0]), "{}", whole());
            assert_eq!(recovered.log.map(|(len, _)| len), Some(at as u64), "{}", whole());
        }
        assert_eq!(fields.len(), 7, "{fields:?}");
    }

    #[test]
    fn a_record_with_a_good_checksum_that_does_not_decode_is_damage_and_replayed_not_at_all() {
        let dir = TempDir::new("bad-body");
        // Two puts: damage in the second must not let the first through.
        let target: &[Put] = &[("k", 1, 1.0), ("j", 2, 2.0)];
        let (bytes, starts) = log_bytes(&[FRONT[0], target, FRONT[1]]);
        let (at, end) = (starts[1], starts[2]);
        let salt = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        // Each field of the body made impossible, the checksum made to
        // match: an unknown kind, the kind of a snapshot record, key
        // lengths past the end of the body, keys that are not UTF-8.
        let second = 10 + 1 + 16;
        for (offset, byte) in [
            (8, 0x7f),
            (8, 2),
            (9, 0x7f),
            (10, 0xff),
            (second, 0x7f),
            (second + 1, 0xff),
        ] {
            let what = format!("byte {offset} set to {byte:#x}");
            let mut bad = bytes.clone();
            bad[at + offset] = byte;
            let body = bad[at + HEADER_BYTES..end].to_vec();
            let mut hasher = crc32fast::Hasher::new_with_initial(salt);
            hasher.update(&bad[at..at + 4]);
            hasher.update(&body);
            bad[at + 4..at + 8].copy_from_slice(&hasher.finalize().to_le_bytes());
            std::fs::write(log_path(&dir, 1), &bad).unwrap();
            match recover_dir(&dir, false) {
                Err(Error::Corrupt { offset: o, damage, .. }) => {
                    assert_eq!((o, damage), (at as u64, Damage::BadBody), "{what}")
                }
                Err(e) => panic!("{what}: {e}"),
                Ok(_) => panic!("{what} went unnoticed"),
            }
            let recovered = recover_dir(&dir, true).unwrap();
            assert_eq!(dump(&recovered.store), model(FRONT[0]), "{what}, --repair");
            // As the last record: cut as a torn tail, and none of it replayed.
            std::fs::write(log_path(&dir, 1), &bad[..end]).unwrap();
            let recovered = recover_dir(&dir, false).unwrap();
            assert_eq!(dump(&recovered.store), model(FRONT[0]), "{what}, last");
        }
        // Unchanged, the same bytes are a good log.
        std::fs::write(log_path(&dir, 1), &bytes).unwrap();
        let recovered = recover_dir(&dir, false).unwrap();
        assert_eq!(dump(&recovered.store), model(&[FRONT[0], target, FRONT[1]].concat()));
    }

    const SNAPSHOT: &[Put] = &[("a", 1, 1.0), ("a", 2, 2.0), ("b", 1, 3.0), ("c", -1, 4.0)];

    /// Writes `bytes` as snapshot 1 and checks that recovery refuses it as
    /// damaged at `at` (where bit `bit` was flipped).
    #[track_caller]
    fn assert_snapshot_refused_at(dir: &TempDir, bytes: &[u8], at: usize, bit: usize) {
        std::fs::write(snapshot_path(dir, 1), bytes).unwrap();
        match recover_dir(dir, false) {
            Err(Error::Corrupt { offset, .. }) => assert_eq!(offset, at as u64, "bit {bit}"),
            Err(e) => panic!("bit {bit}: {e}"),
            Ok(_) => panic!("bit {bit} flipped went unnoticed"),
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_snapshot_record_is_refused() {
        let dir = TempDir::new("flip-snapshot");
        let (bytes, starts) = snapshot_bytes(SNAPSHOT);
        // The series of "b", then the END record (its counts included).
        for (at, end) in [(starts[1], starts[2]), (starts[3], bytes.len())] {
            for bit in at * 8..end * 8 {
                let mut bad = bytes.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert_snapshot_refused_at(&dir, &bad, at, bit);
            }
        }
        // A snapshot is complete or damaged: cut short anywhere, even
        // between records, it is refused, not taken for a torn tail.
        for cut in FILE_HEADER_BYTES..bytes.len() {
            std::fs::write(snapshot_path(&dir, 1), &bytes[..cut]).unwrap();
            match recover_dir(&dir, false) {
                Err(Error::Corrupt { damage, .. }) => {
                    let want = match starts.contains(&cut) {
                        true => Damage::NoEnd,
                        false => Damage::Short,
                    };
                    assert_eq!(damage, want, "cut at {cut}");
                }
                Err(e) => panic!("cut at {cut}: {e}"),
                Ok(_) => panic!("a snapshot cut at {cut} was accepted"),
            }
        }
        std::fs::write(snapshot_path(&dir, 1), &bytes).unwrap();
        assert_eq!(dump(&recover_dir(&dir, false).unwrap().store), model(SNAPSHOT));
    }

    #[test]
    fn an_end_record_must_count_the_snapshot_and_end_it() {
        let dir = TempDir::new("end");
        let (bytes, starts) = snapshot_bytes(SNAPSHOT);
        let end_at = *starts.last().unwrap();
        // The END record of an empty snapshot: counts that do not match.
        let salt = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        let mut bad = bytes[..end_at].to_vec();
        SnapshotEncoder::new(salt).finish(&mut bad);
        std::fs::write(snapshot_path(&dir, 1), &bad).unwrap();
        match recover_dir(&dir, false) {
            Err(Error::Corrupt { offset, damage, .. }) => {
                assert_eq!((offset, damage), (end_at as u64, Damage::EndMismatch))
            }
            other => panic!("{:?}", other.map(|r| dump(&r.store))),
        }
        // A good snapshot with a record after its END.
        let mut bad = bytes.clone();
        bad.extend_from_slice(&bytes[starts[0]..starts[1]]);
        std::fs::write(snapshot_path(&dir, 1), &bad).unwrap();
        match recover_dir(&dir, false) {
            Err(Error::Corrupt { offset, damage, .. }) => {
                assert_eq!((offset, damage), (end_at as u64, Damage::AfterEnd))
            }
            other => panic!("{:?}", other.map(|r| dump(&r.store))),
        }
    }

    #[test]
    fn replay_is_the_newest_snapshot_then_its_logs_in_order_last_write_winning() {
        let dir = TempDir::new("order");
        // Generation 1, superseded by snapshot 2: never replayed, removed.
        std::fs::write(
            snapshot_path(&dir, 1),
            snapshot_bytes(&[("a", 1, -1.0), ("old", 1, -1.0)]).0,
        )
        .unwrap();
        std::fs::write(log_path(&dir, 1), log_bytes(&[&[("a", 1, -1.0), ("old", 2, -1.0)]]).0).unwrap();
        let snapshot: &[Put] = &[("a", 1, 20.0), ("a", 2, 20.0), ("b", 1, 20.0), ("e", 1, 20.0)];
        std::fs::write(snapshot_path(&dir, 2), snapshot_bytes(snapshot).0).unwrap();
        // Log 2 overrides the snapshot, later records and later entries of
        // one record override earlier ones.
        let log2: [&[Put]; 2] = [
            &[("a", 1, 21.0), ("b", 1, 21.0)],
            &[("b", 2, 23.0), ("a", 1, 22.0), ("b", 2, 24.0)],
        ];
        std::fs::write(log_path(&dir, 2), log_bytes(&log2).0).unwrap();
        // Generations compare as numbers: 10 comes after 9.
        let log9: &[Put] = &[("a", 1, 9.0), ("f", 1, 9.0)];
        let log10: &[Put] = &[("f", 1, 10.0)];
        std::fs::write(log_path(&dir, 9), log_bytes(&[log9]).0).unwrap();
        std::fs::write(log_path(&dir, 10), log_bytes(&[log10]).0).unwrap();

        let recovered = recover_dir(&dir, false).unwrap();
        let want = vec![
            ("a".to_string(), 1, 9.0f64.to_bits()),
            ("a".to_string(), 2, 20.0f64.to_bits()),
            ("b".to_string(), 1, 21.0f64.to_bits()),
            ("b".to_string(), 2, 24.0f64.to_bits()),
            ("e".to_string(), 1, 20.0f64.to_bits()),
            ("f".to_string(), 1, 10.0f64.to_bits()),
        ];
        assert_eq!(dump(&recovered.store), want);
        assert_eq!(
            dump(&recovered.store),
            model(&[snapshot, &log2.concat(), log9, log10].concat()),
            "the model agrees"
        );
        assert_eq!(recovered.generation, 10);
        assert_eq!(
            recovered.snapshot_bytes,
            std::fs::metadata(snapshot_path(&dir, 2)).unwrap().len()
        );
        drop(recovered);
        assert_eq!(
            dir.files(),
            [
                "LOCK",
                "log-0000000002",
                "log-0000000009",
                "log-0000000010",
                "snapshot-0000000002"
            ]
        );
    }

    /// A snapshot of `store` as a compaction writes it, a record per part
    /// (a chunk's record, or a run of points), and where each record starts
    /// (the END record last).
    fn snapshot_of(store: &Store, magic: &[u8; 16]) -> (Vec<u8>, Vec<usize>) {
        let (header, salt) = format::new_file_header(magic);
        let mut bytes = header.to_vec();
        let mut encoder = SnapshotEncoder::new(salt);
        let mut starts = Vec::new();
        store.walk_parts(None, |key, part| {
            encoder.flush(&mut bytes);
            starts.push(bytes.len());
            match part {
                Part::Sealed(chunk) => encoder.push_chunk(&mut bytes, key, chunk),
                Part::Points(points) => points.iter().for_each(|&p| encoder.push(&mut bytes, key, p)),
            }
            true
        });
        encoder.flush(&mut bytes);
        starts.push(bytes.len());
        encoder.finish(&mut bytes);
        (bytes, starts)
    }

    /// A store of `metrics` series of `points` points of the realistic mix,
    /// the first with a late point (a thawed chunk), and extremes.
    fn mixed_store(metrics: u64, points: usize) -> Store {
        let mix = Mix {
            seed: 3,
            start: 1_700_000_000,
        };
        let mut store = Store::new();
        for metric in 0..metrics {
            let key = mix.key(0, metric);
            for (t, v) in mix.series(0, metric).take(points) {
                store.put(&key, t, v);
            }
        }
        let late = mix.key(0, 0);
        let (t, _) = mix.series(0, 0).nth(100).unwrap();
        store.put(&late, t + 1, 0.5);
        for (t, v) in [(i64::MIN, -0.0), (-1, 5e-324), (i64::MAX, 1e300)] {
            store.put("edge", t, v);
        }
        store
    }

    #[test]
    fn a_store_of_chunks_round_trips_through_a_snapshot_of_format_2() {
        let dir = TempDir::new("v2");
        let store = mixed_store(20, 1000);
        let (bytes, _) = snapshot_of(&store, SNAPSHOT_MAGIC);
        let per_point = (bytes.len() as f64) / store.point_count() as f64;
        // The chunks' bits and a few hundred head points at 16 bytes.
        assert!(per_point < 4.0, "{per_point} bytes a point");
        std::fs::write(snapshot_path(&dir, 1), &bytes).unwrap();
        let recovered = recover_dir(&dir, false).unwrap();
        assert!(!recovered.snapshot_outdated);
        assert_eq!(dump(&recovered.store), dump(&store));
        assert_eq!(recovered.store.point_count(), store.point_count());
        // Kept as chunks: the loaded store takes no more memory.
        let allocated = |s: &Store| s.series_from(None).map(|(_, s)| s.allocated_bytes()).sum::<usize>();
        assert!(allocated(&recovered.store) <= allocated(&store));
    }

    #[test]
    fn format_1_still_loads_and_asks_for_a_rewrite_but_holds_no_chunks() {
        let dir = TempDir::new("v1");
        let (mut bytes, _) = snapshot_bytes(SNAPSHOT);
        bytes[..16].copy_from_slice(SNAPSHOT_MAGIC_V1);
        std::fs::write(snapshot_path(&dir, 1), &bytes).unwrap();
        let recovered = recover_dir(&dir, false).unwrap();
        assert!(recovered.snapshot_outdated);
        assert_eq!(dump(&recovered.store), model(SNAPSHOT));
        drop(recovered);
        // A CHUNKS record under format 1's magic: not what format 1 holds.
        let (mut bytes, starts) = snapshot_of(&mixed_store(3, 500), SNAPSHOT_MAGIC);
        bytes[..16].copy_from_slice(SNAPSHOT_MAGIC_V1);
        std::fs::write(snapshot_path(&dir, 1), &bytes).unwrap();
        let first_chunks = starts
            .iter()
            .copied()
            .find(|&at| bytes[at + HEADER_BYTES] == 5)
            .expect("a CHUNKS record");
        match recover_dir(&dir, false) {
            Err(Error::Corrupt { offset, damage, .. }) => {
                assert_eq!((offset, damage), (first_chunks as u64, Damage::BadBody))
            }
            other => panic!("{:?}", other.map(|r| r.store.point_count())),
        }
    }

    #[test]
    fn a_flipped_bit_in_a_chunk_record_is_refused_and_bad_chunk_bits_never_panic() {
        let dir = TempDir::new("flip-chunks");
        // Small, as every bit of a record is tried: a few chunks of each
        // value coding but XOR.
        let store = mixed_store(4, 500);
        let (bytes, starts) = snapshot_of(&store, SNAPSHOT_MAGIC);
        // The first CHUNKS record (kind 5 after the record header).
        let i = (0..starts.len() - 1)
            .find(|&i| bytes[starts[i] + HEADER_BYTES] == 5)
            .expect("a CHUNKS record");
        let (at, end) = (starts[i], starts[i + 1]);
        let salt = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        let (mut bad_bodies, mut loaded) = (0, 0);
        for bit in at * 8..end * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_snapshot_refused_at(&dir, &bad, at, bit);
            // The same bits under a checksum made to match (written by
            // something else, or a bug): damage, or points (a flipped value
            // bit is still a value), never a panic.
            if bit >= (at + HEADER_BYTES) * 8 {
                let mut hasher = crc32fast::Hasher::new_with_initial(salt);
                hasher.update(&bad[at..at + 4]);
                hasher.update(&bad[at + HEADER_BYTES..end]);
                bad[at + 4..at + 8].copy_from_slice(&hasher.finalize().to_le_bytes());
                std::fs::write(snapshot_path(&dir, 1), &bad).unwrap();
                match recover_dir(&dir, false) {
                    Err(Error::Corrupt { offset, damage, .. }) => {
                        bad_bodies += usize::from(offset == at as u64 && damage == Damage::BadBody)
                    }
                    Err(e) => panic!("bit {bit}: {e}"),
                    Ok(_) => loaded += 1,
                }
            }
        }
        assert!(bad_bodies > 100 && loaded > 0, "{bad_bodies} refused, {loaded} loaded");
        std::fs::write(snapshot_path(&dir, 1), &bytes).unwrap();
        assert_eq!(dump(&recover_dir(&dir, false).unwrap().store), dump(&store));
    }

    const KEYS: u64 = 400;
    /// Over two chunks a key, so puts during a compaction land in sealed
    /// chunks as well as heads.
    const TIMESTAMPS: u64 = 600;

    /// Random puts over a few hundred keys, and a delete now and then,
    /// applied to `store` and appended by `journal`, as a loop turn does.
    fn put_turn(journal: &mut Journal, store: &mut Store, rng: &mut XorShift, puts: usize) {
        let mut batch = Batch::default();
        for _ in 0..puts {
            let key = format!("k{:03}", rng.below(KEYS));
            if rng.below(40) == 0 {
                store.take_series(&key);
                batch.push_delete(&key);
                continue;
            }
            let (timestamp, value) = (rng.below(TIMESTAMPS) as i64, rng.below(1000) as f64);
            let replaced = store.put(&key, timestamp, value);
            batch.push(&key, timestamp, value, replaced);
        }
        journal.commit(&mut batch).unwrap();
    }

    #[test]
    fn what_a_compaction_and_the_puts_during_it_leave_replays_to_the_same_store() {
        let dir = TempDir::new("compact");
        let mut rng = XorShift::seeded(12);
        let options = Options {
            compact_min_bytes: 1,
            ..options(&dir)
        };
        let (mut journal, mut store) = Journal::open(&options).unwrap();
        // Every (key, timestamp) once, full-precision values (some 8
        // bytes a point in chunks): a snapshot of three slices or more
        // (about 2 MB), so puts land between slices, before and after where
        // its walk has reached.
        let mut batch = Batch::default();
        for key in 0..KEYS {
            let key = format!("k{key:03}");
            for timestamp in 0..TIMESTAMPS as i64 {
                let value = rng.next() as f64 / 7.0;
                store.put(&key, timestamp, value);
                batch.push(&key, timestamp, value, None);
            }
        }
        // A key deleted before the compaction begins: its delete is in the
        // log the snapshot replaces, so the snapshot must not hold it.
        for timestamp in 0..10 {
            store.put("gone", timestamp, 1.0);
            batch.push("gone", timestamp, 1.0, None);
        }
        store.take_series("gone");
        batch.push_delete("gone");
        journal.commit(&mut batch).unwrap();
        let mut slices = 0;
        while journal.tick(&store) {
            slices += 1;
            put_turn(&mut journal, &mut store, &mut rng, 100);
        }
        assert!(slices >= 2, "{slices} slices");
        // Finished off the loop; puts go on meanwhile.
        let done = poll_until(Duration::from_secs(20), || {
            journal.tick(&store);
            put_turn(&mut journal, &mut store, &mut rng, 10);
            (journal.status().compactions == 1).then_some(())
        });
        assert!(done.is_some(), "the compaction did not finish");
        put_turn(&mut journal, &mut store, &mut rng, 100);
        journal.close().unwrap();
        assert_eq!(dir.files(), ["LOCK", "log-0000000002", "snapshot-0000000002"]);

        let (journal, recovered) = Journal::open(&options).unwrap();
        assert_eq!(dump(&recovered), dump(&store));
        assert!(recovered.get("gone").is_none_or(|s| s.is_empty()));
        journal.close().unwrap();
    }
}
