//! The bytes of the data files, with no I/O: records, the batch of puts a
//! loop turn appends to the log, and the series of a snapshot.
//!
//! Both kinds of file are a 20-byte header, then records:
//!
//! ```text
//! header = magic[16] (the kind and version)  salt:u32le (random per file)
//! record = length:u32le  crc:u32le  body[length]
//! crc    = CRC-32 (IEEE) seeded with the salt, of the 4 length bytes and the body
//! body   = kind:u8 ...
//!   PUTS   (log)       { key_len:varint key:utf8 timestamp:i64le value:f64le }+
//!   DELETE (log)       { key_len:varint key:utf8 }+
//!   SERIES (snapshot)  key_len:varint key:utf8 { timestamp:i64le value:f64le }+
//!   CHUNKS (snapshot)  key_len:varint key:utf8 { min_ts:i64le span:varint count:varint
//!                                                bits_len:varint bits[bits_len] }+
//!   END    (snapshot)  series:varint points:varint
//! ```
//!
//! The checksum covers the length too, so a torn or overwritten length is
//! caught like a torn body. The salt is why a client cannot forge a record:
//! a put carries 16 bytes of its own choosing (timestamp and value), enough
//! for a whole small record with a valid plain CRC, which recovery would
//! take for a good record after a torn tail and refuse to start. Without
//! the salt, nobody outside the server can compute a valid checksum.
//!
//! A log is a series of PUTS and DELETE records, one or more per loop
//! turn, replayed in order (a DELETE removes every point of its keys put
//! before it; a put after it stores afresh); a snapshot is SERIES and
//! CHUNKS records in key order (a long series spans several) and one END
//! record whose counts prove it complete.
//!
//! A CHUNKS entry is a sealed chunk of the store as it is in memory
//! ([`crate::store::chunk`]: its bits, first timestamp, `span` = last -
//! first, point count), so a snapshot costs about what memory does, some 2
//! bytes a point instead of 16, and loads without encoding anything. The
//! points of a series outside sealed chunks (its head) go in SERIES
//! records. Snapshot format 2 (`METRICSD-SNAP-2`) has both kinds; format 1,
//! written before chunks, has SERIES records only and is still read.
//! Integers are little-endian; varints are unsigned LEB128.

use crate::store::chunk::Chunk;

/// First bytes of a log file.
pub const LOG_MAGIC: &[u8; 16] = b"METRICSD-LOG-v1\n";
/// First bytes of a snapshot file, format 2 (with CHUNKS records). A new
/// magic rather than a new kind in the old one: a release that reads only
/// format 1 then says the file is not of its version, instead of taking the
/// unknown records for damage that `--repair` would drop.
pub const SNAPSHOT_MAGIC: &[u8; 16] = b"METRICSD-SNAP-2\n";
/// First bytes of a snapshot file of format 1 (SERIES records only), read
/// and never written.
pub const SNAPSHOT_MAGIC_V1: &[u8; 16] = b"METRICSD-SNAP-1\n";

/// A file's header: its magic and its salt.
pub const FILE_HEADER_BYTES: usize = 20;

/// The header of a new file: `magic`, then a fresh random salt (returned).
pub fn new_file_header(magic: &[u8; 16]) -> ([u8; FILE_HEADER_BYTES], u32) {
    use std::hash::{BuildHasher, Hasher};
    // std's RandomState is seeded from the OS's randomness: no dependency.
    let salt = std::collections::hash_map::RandomState::new().build_hasher().finish() as u32;
    let mut header = [0; FILE_HEADER_BYTES];
    header[..16].copy_from_slice(magic);
    header[16..].copy_from_slice(&salt.to_le_bytes());
    (header, salt)
}

/// The salt of a file header, if it is one of `magic`'s.
pub fn parse_file_header(header: &[u8], magic: &[u8; 16]) -> Option<u32> {
    if header.len() != FILE_HEADER_BYTES || &header[..16] != magic {
        return None;
    }
    Some(u32::from_le_bytes([header[16], header[17], header[18], header[19]]))
}

/// Record header: length and checksum.
pub const HEADER_BYTES: usize = 8;
/// A record body is closed once it passes this size, so that one record is
/// cheap to check and to hold in memory while reading, and a torn write
/// loses at most one record's worth. 1 MiB is about 35,000 puts of
/// 10-byte keys, more than one busy loop turn produces.
pub const TARGET_BODY_BYTES: usize = 1 << 20;
/// Longest body a reader accepts: the target plus one entry with the longest
/// key `--max-line-bytes` allows (64 MiB), with room for the varint and the
/// point. Anything longer is not a record, which bounds what a corrupt length
/// can make a reader look at.
pub const MAX_BODY_BYTES: usize = TARGET_BODY_BYTES + (64 << 20) + 32;

const KIND_PUTS: u8 = 1;
const KIND_SERIES: u8 = 2;
const KIND_END: u8 = 3;
const KIND_DELETE: u8 = 4;
/// 5, not 4: 4 is taken by the log's DELETE records.
const KIND_CHUNKS: u8 = 5;
/// One point: timestamp and value.
const POINT_BYTES: usize = 16;

/// What the front of a buffer holds.
#[derive(Debug, PartialEq)]
pub enum Scan<'a> {
    /// A whole record with a good checksum; `len` is its size with header.
    Record { body: &'a [u8], len: usize },
    /// The buffer ends inside a record that may still be good.
    Incomplete,
    /// Not a record: an impossible length or a checksum mismatch.
    Corrupt(Damage),
}

/// What is wrong with the bytes where reading a data file stopped: why they
/// are not a record, or a record not what it says. Recovery names it in its
/// warnings and in [`super::Error::Corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// The file ends inside a record: a torn write, or a file cut short.
    #[error("the file ends inside a record")]
    Short,
    /// The length field is zero or above [`MAX_BODY_BYTES`].
    #[error("impossible record length")]
    BadLength,
    /// The checksum does not match.
    #[error("checksum mismatch")]
    BadChecksum,
    /// The checksum matches but the body does not decode (unknown kind,
    /// short entry, a key that is not UTF-8): written by something else.
    #[error("record body does not decode")]
    BadBody,
    /// A snapshot ends, cleanly between records, without its END record.
    #[error("the snapshot ends without its END record")]
    NoEnd,
    /// A snapshot's END record counts other series or points than the
    /// records before it hold.
    #[error("the END record's counts do not match the snapshot's records")]
    EndMismatch,
    /// A snapshot has bytes after its END record.
    #[error("bytes follow the END record")]
    AfterEnd,
}

/// Whether `kind` is the first byte of a body this format writes.
pub fn is_known_kind(kind: u8) -> bool {
    matches!(kind, KIND_PUTS | KIND_SERIES | KIND_END | KIND_DELETE | KIND_CHUNKS)
}

/// Looks at the record at the front of `buf`, in a file of `salt`.
pub fn scan(buf: &[u8], salt: u32) -> Scan<'_> {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Scan::Incomplete;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_BODY_BYTES {
        return Scan::Corrupt(Damage::BadLength);
    }
    let Some(body) = buf.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Scan::Incomplete;
    };
    if checksum(salt, &header[..4], body) != crc {
        return Scan::Corrupt(Damage::BadChecksum);
    }
    Scan::Record {
        body,
        len: HEADER_BYTES + len,
    }
}

fn checksum(salt: u32, len: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(salt);
    hasher.update(len);
    hasher.update(body);
    hasher.finalize()
}

/// Starts a record at the end of `buf`: a header to fill in, and its kind.
fn open_record(buf: &mut Vec<u8>, kind: u8) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; HEADER_BYTES]);
    buf.push(kind);
    at
}

/// Fills in the header of the record at `at`, whose body runs to `end`.
fn seal_record(buf: &mut [u8], at: usize, end: usize, salt: u32) {
    // A body stays under MAX_BODY_BYTES, far below u32::MAX.
    let len = ((end - at - HEADER_BYTES) as u32).to_le_bytes();
    let crc = checksum(salt, &len, &buf[at + HEADER_BYTES..end]);
    buf[at..at + 4].copy_from_slice(&len);
    buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The puts and deletes of one loop turn, encoded as log records, waiting
/// to be written, and what each put replaced in the store, to undo them if
/// the write fails.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    /// Where each record starts in `buf`; sealed only when written, with
    /// the salt of the log they go to.
    records: Vec<usize>,
    undo: Vec<Undo>,
}

/// How to take one change back: its key (in the batch's buffer) and what
/// it was.
#[derive(Debug, Clone, Copy)]
struct Undo {
    key_at: usize,
    key_len: usize,
    change: Change,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Change {
    /// A put at `timestamp` that replaced `replaced` (None: the point was new).
    Put { timestamp: i64, replaced: Option<f64> },
    /// A delete: what it removed is kept by the caller, who took it.
    Delete,
}

/// One change of a batch to take back, last first (see [`Batch::undo`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Undone<'a> {
    /// Put `replaced` back at `timestamp` of `key`, or remove the point if None.
    Put {
        key: &'a str,
        timestamp: i64,
        replaced: Option<f64>,
    },
    /// Give `key` back the points its delete took.
    Delete { key: &'a str },
}

/// One entry of a log record, in the order it was appended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogEntry<'a> {
    Put { key: &'a str, timestamp: i64, value: f64 },
    Delete { key: &'a str },
}

impl Batch {
    /// Adds one put, already applied to the store, where it replaced
    /// `replaced`.
    pub fn push(&mut self, key: &str, timestamp: i64, value: f64, replaced: Option<f64>) {
        let key_at = self.push_key(KIND_PUTS, key);
        put_point(&mut self.buf, (timestamp, value));
        self.undo.push(Undo {
            key_at,
            key_len: key.len(),
            change: Change::Put { timestamp, replaced },
        });
    }

    /// Adds one delete of `key`, already applied to the store; the caller
    /// keeps what it removed, for [`Undone::Delete`].
    pub fn push_delete(&mut self, key: &str) {
        let key_at = self.push_key(KIND_DELETE, key);
        self.undo.push(Undo {
            key_at,
            key_len: key.len(),
            change: Change::Delete,
        });
    }

    /// Appends an entry's key to an open record of `kind`, opening one if
    /// the last is of another kind or full (so entries stay in order
    /// across records); returns where the key's bytes are.
    fn push_key(&mut self, kind: u8, key: &str) -> usize {
        let open = self
            .records
            .last()
            .filter(|&&at| self.buf[at + HEADER_BYTES] == kind)
            .map(|&at| self.buf.len() - at - HEADER_BYTES);
        if open.is_none_or(|body| body >= TARGET_BODY_BYTES) {
            self.records.push(open_record(&mut self.buf, kind));
        }
        put_varint(&mut self.buf, key.len() as u64);
        let key_at = self.buf.len();
        self.buf.extend_from_slice(key.as_bytes());
        key_at
    }

    /// Puts and deletes added since the last [`Batch::clear`].
    pub fn len(&self) -> usize {
        self.undo.len()
    }

    pub fn is_empty(&self) -> bool {
        self.undo.is_empty()
    }

    /// The complete records, checksummed with the `salt` of the log they
    /// are for, ready to append.
    pub fn sealed(&mut self, salt: u32) -> &[u8] {
        for (i, &at) in self.records.iter().enumerate() {
            let end = self.records.get(i + 1).copied().unwrap_or(self.buf.len());
            seal_record(&mut self.buf, at, end, salt);
        }
        &self.buf
    }

    /// The changes from last to first, to take them back in that order.
    pub fn undo(&self) -> impl Iterator<Item = Undone<'_>> + '_ {
        self.undo.iter().rev().map(|u| {
            let key = &self.buf[u.key_at..u.key_at + u.key_len];
            // Copied from a &str by `push_key`.
            let key = std::str::from_utf8(key).unwrap_or_default();
            match u.change {
                Change::Put { timestamp, replaced } => Undone::Put {
                    key,
                    timestamp,
                    replaced,
                },
                Change::Delete => Undone::Delete { key },
            }
        })
    }

    /// Empties the batch, keeping buffers of ordinary size for the next turn.
    pub fn clear(&mut self) {
        // A burst's multi-megabyte buffer is not kept for a quiet server.
        const KEEP_BYTES: usize = 64 * 1024;
        self.records.clear();
        self.undo.clear();
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
            self.undo = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

/// Decodes the body of a log record (PUTS or DELETE), calling `apply` for
/// each entry in order; returns how many there were.
pub fn decode_log(body: &[u8], mut apply: impl FnMut(LogEntry<'_>)) -> Result<usize, Damage> {
    let (&kind, mut rest) = body.split_first().ok_or(Damage::BadBody)?;
    if kind != KIND_PUTS && kind != KIND_DELETE {
        return Err(Damage::BadBody);
    }
    let mut count = 0;
    while !rest.is_empty() {
        let key;
        (key, rest) = take_key(rest)?;
        if kind == KIND_DELETE {
            apply(LogEntry::Delete { key });
        } else {
            let point = rest.get(..POINT_BYTES).ok_or(Damage::BadBody)?;
            let (timestamp, value) = get_point(point);
            apply(LogEntry::Put { key, timestamp, value });
            rest = &rest[POINT_BYTES..];
        }
        count += 1;
    }
    Ok(count)
}

/// Encodes a snapshot: SERIES and CHUNKS records for points and chunks fed
/// key by key in key order, then END.
#[derive(Debug)]
pub struct SnapshotEncoder {
    salt: u32,
    /// Where the open record starts in the buffer, and its kind.
    open_at: Option<(usize, u8)>,
    /// The key of the open record.
    key: Option<std::sync::Arc<str>>,
    series: u64,
    points: u64,
}

impl SnapshotEncoder {
    /// An encoder for a snapshot file of `salt`.
    pub fn new(salt: u32) -> Self {
        SnapshotEncoder {
            salt,
            open_at: None,
            key: None,
            series: 0,
            points: 0,
        }
    }

    /// Adds one point of `key`; points and chunks of a key come together,
    /// ascending.
    pub fn push(&mut self, buf: &mut Vec<u8>, key: &std::sync::Arc<str>, point: (i64, f64)) {
        self.open(buf, key, KIND_SERIES);
        put_point(buf, point);
        self.points += 1;
    }

    /// Adds one sealed chunk of `key`, its bits as they are.
    pub fn push_chunk(&mut self, buf: &mut Vec<u8>, key: &std::sync::Arc<str>, chunk: &Chunk) {
        self.open(buf, key, KIND_CHUNKS);
        buf.extend_from_slice(&chunk.min_ts().to_le_bytes());
        put_varint(buf, chunk.max_ts().wrapping_sub(chunk.min_ts()) as u64);
        put_varint(buf, chunk.len() as u64);
        put_varint(buf, chunk.bytes().len() as u64);
        buf.extend_from_slice(chunk.bytes());
        self.points += chunk.len() as u64;
    }

    /// Makes the open record one of `kind` for `key` with room left,
    /// opening a new one if needed.
    fn open(&mut self, buf: &mut Vec<u8>, key: &std::sync::Arc<str>, kind: u8) {
        let same_key = self.key.as_ref().is_some_and(|open| open == key);
        if !same_key {
            self.series += 1;
        }
        let fits = self
            .open_at
            .is_some_and(|(at, open)| open == kind && buf.len() - at - HEADER_BYTES < TARGET_BODY_BYTES);
        if !same_key || !fits {
            self.flush(buf);
            self.open_at = Some((open_record(buf, kind), kind));
            put_varint(buf, key.len() as u64);
            buf.extend_from_slice(key.as_bytes());
            self.key = Some(std::sync::Arc::clone(key));
        }
    }

    /// Closes the open record so `buf` holds only whole records; more points
    /// of the same key may follow in a new record.
    pub fn flush(&mut self, buf: &mut [u8]) {
        if let Some((at, _)) = self.open_at.take() {
            let end = buf.len();
            seal_record(buf, at, end, self.salt);
        }
    }

    /// Ends the snapshot with its END record; returns (series, points).
    pub fn finish(&mut self, buf: &mut Vec<u8>) -> (u64, u64) {
        self.flush(buf);
        self.open_at = Some((open_record(buf, KIND_END), KIND_END));
        put_varint(buf, self.series);
        put_varint(buf, self.points);
        self.flush(buf);
        (self.series, self.points)
    }
}

/// A decoded snapshot record.
#[derive(Debug, PartialEq)]
pub enum SnapshotRecord<'a> {
    /// Points of one key; `points` is a whole number of 16-byte points.
    Series {
        key: &'a str,
        points: &'a [u8],
    },
    /// Sealed chunks of one key, whole entries (read them with [`chunks`]),
    /// `points` their points.
    Chunks {
        key: &'a str,
        chunks: &'a [u8],
        points: u64,
    },
    End {
        series: u64,
        points: u64,
    },
}

/// One entry of a CHUNKS record: a sealed chunk's parts, for
/// [`Chunk::from_parts`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChunkEntry<'a> {
    pub min_ts: i64,
    pub max_ts: i64,
    pub count: u16,
    pub bits: &'a [u8],
}

/// Decodes the body of a snapshot record.
pub fn decode_snapshot(body: &[u8]) -> Result<SnapshotRecord<'_>, Damage> {
    match body.first() {
        Some(&KIND_SERIES) => {
            let (key, points) = take_key(&body[1..])?;
            if points.is_empty() || points.len() % POINT_BYTES != 0 {
                return Err(Damage::BadBody);
            }
            Ok(SnapshotRecord::Series { key, points })
        }
        Some(&KIND_CHUNKS) => {
            let (key, chunks) = take_key(&body[1..])?;
            let (mut rest, mut points) = (chunks, 0u64);
            while !rest.is_empty() {
                let entry;
                (entry, rest) = take_chunk(rest)?;
                points += u64::from(entry.count);
            }
            if points == 0 {
                return Err(Damage::BadBody);
            }
            Ok(SnapshotRecord::Chunks { key, chunks, points })
        }
        Some(&KIND_END) => {
            let (series, rest) = take_varint(&body[1..])?;
            let (points, rest) = take_varint(rest)?;
            if !rest.is_empty() {
                return Err(Damage::BadBody);
            }
            Ok(SnapshotRecord::End { series, points })
        }
        _ => Err(Damage::BadBody),
    }
}

/// The points of a SERIES record.
pub fn points(bytes: &[u8]) -> impl Iterator<Item = (i64, f64)> + '_ {
    bytes.chunks_exact(POINT_BYTES).map(get_point)
}

/// The entries of a CHUNKS record that [`decode_snapshot`] accepted.
pub fn chunks(bytes: &[u8]) -> impl Iterator<Item = ChunkEntry<'_>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let (entry, after) = take_chunk(rest).ok()?;
        rest = after;
        Some(entry)
    })
}

/// One entry of a CHUNKS record, its fields checked as fields (its bits are
/// checked when decoded).
fn take_chunk(buf: &[u8]) -> Result<(ChunkEntry<'_>, &[u8]), Damage> {
    let min_ts = buf.get(..8).ok_or(Damage::BadBody)?;
    let min_ts = i64::from_le_bytes(min_ts.try_into().map_err(|_| Damage::BadBody)?);
    let (span, rest) = take_varint(&buf[8..])?;
    let max_ts = min_ts.checked_add_unsigned(span).ok_or(Damage::BadBody)?;
    let (count, rest) = take_varint(rest)?;
    let count = u16::try_from(count).map_err(|_| Damage::BadBody)?;
    let (len, rest) = take_varint(rest)?;
    let len = usize::try_from(len).map_err(|_| Damage::BadBody)?;
    if count == 0 || len > rest.len() {
        return Err(Damage::BadBody);
    }
    let entry = ChunkEntry {
        min_ts,
        max_ts,
        count,
        bits: &rest[..len],
    };
    Ok((entry, &rest[len..]))
}

fn take_key(buf: &[u8]) -> Result<(&str, &[u8]), Damage> {
    let (len, rest) = take_varint(buf)?;
    let len = usize::try_from(len).map_err(|_| Damage::BadBody)?;
    if len == 0 || len > rest.len() {
        return Err(Damage::BadBody);
    }
    let key = std::str::from_utf8(&rest[..len]).map_err(|_| Damage::BadBody)?;
    Ok((key, &rest[len..]))
}

fn put_point(buf: &mut Vec<u8>, (timestamp, value): (i64, f64)) {
    buf.extend_from_slice(&timestamp.to_le_bytes());
    buf.extend_from_slice(&value.to_bits().to_le_bytes());
}

fn get_point(bytes: &[u8]) -> (i64, f64) {
    let mut timestamp = [0; 8];
    let mut value = [0; 8];
    timestamp.copy_from_slice(&bytes[..8]);
    value.copy_from_slice(&bytes[8..POINT_BYTES]);
    (i64::from_le_bytes(timestamp), f64::from_bits(u64::from_le_bytes(value)))
}

fn put_varint(buf: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        buf.push((n as u8) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

fn take_varint(buf: &[u8]) -> Result<(u64, &[u8]), Damage> {
    let mut n = 0u64;
    // A u64 takes at most 10 groups of 7 bits.
    for (i, &byte) in buf.iter().enumerate().take(10) {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((n, &buf[i + 1..]));
        }
    }
    Err(Damage::BadBody)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const SALT: u32 = 0x5eed_cafe;

    #[test]
    fn a_record_checks_only_under_its_own_salt() {
        let mut batch = Batch::default();
        batch.push("k", 1, 1.0, None);
        let bytes = batch.sealed(SALT).to_vec();
        assert!(matches!(scan(&bytes, SALT), Scan::Record { .. }));
        assert_eq!(scan(&bytes, SALT ^ 1), Scan::Corrupt(Damage::BadChecksum));
        let (header, salt) = new_file_header(LOG_MAGIC);
        assert_eq!(parse_file_header(&header, LOG_MAGIC), Some(salt));
        assert_eq!(parse_file_header(&header, SNAPSHOT_MAGIC), None);
        assert_ne!(
            new_file_header(LOG_MAGIC).1,
            new_file_header(LOG_MAGIC).1,
            "salts repeat"
        );
    }

    #[test]
    fn undo_lists_each_put_last_first_with_what_it_replaced() {
        let mut batch = Batch::default();
        batch.push("a", 1, 1.0, None);
        batch.push("ключ", 2, 2.0, Some(0.5));
        batch.push_delete("a");
        let undo: Vec<_> = batch.undo().collect();
        let put = |key, timestamp, replaced| Undone::Put {
            key,
            timestamp,
            replaced,
        };
        assert_eq!(
            undo,
            [
                Undone::Delete { key: "a" },
                put("ключ", 2, Some(0.5)),
                put("a", 1, None)
            ]
        );
        batch.clear();
        assert_eq!(batch.undo().count(), 0);
    }

    fn records(mut buf: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            match scan(buf, SALT) {
                Scan::Record { body, len } => {
                    out.push(body);
                    buf = &buf[len..];
                }
                other => panic!("{other:?} at {} bytes from the end", buf.len()),
            }
        }
        out
    }

    #[test]
    fn a_batch_round_trips() {
        let mut batch = Batch::default();
        let puts = [
            ("a", 1, 0.5),
            ("palm.cpu", -7, -0.0),
            ("ключ", i64::MAX, 1e300),
            ("a", i64::MIN, 5e-324),
        ];
        for (key, ts, value) in puts {
            batch.push(key, ts, value, None);
        }
        assert_eq!(batch.len(), 4);
        let bytes = batch.sealed(SALT).to_vec();
        let mut seen = Vec::new();
        for body in records(&bytes) {
            decode_log(body, |entry| match entry {
                LogEntry::Put { key, timestamp, value } => seen.push((key.to_owned(), timestamp, value.to_bits())),
                LogEntry::Delete { .. } => panic!("no delete was pushed"),
            })
            .unwrap();
        }
        let want: Vec<_> = puts.iter().map(|&(k, t, v)| (k.to_owned(), t, v.to_bits())).collect();
        assert_eq!(seen, want);
        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.sealed(SALT).is_empty());
    }

    #[test]
    fn puts_and_deletes_round_trip_in_their_order() {
        let mut batch = Batch::default();
        batch.push("a", 1, 1.0, None);
        batch.push("b", 1, 2.0, None);
        batch.push_delete("a");
        batch.push_delete("ключ");
        batch.push("a", 2, 3.0, None);
        assert_eq!(batch.len(), 5);
        let bytes = batch.sealed(SALT).to_vec();
        let bodies = records(&bytes);
        // A record holds one kind: puts, deletes, puts.
        assert_eq!(bodies.len(), 3);
        let mut seen = Vec::new();
        for body in bodies {
            decode_log(body, |entry| seen.push(format!("{entry:?}"))).unwrap();
        }
        assert_eq!(
            seen,
            [
                r#"Put { key: "a", timestamp: 1, value: 1.0 }"#,
                r#"Put { key: "b", timestamp: 1, value: 2.0 }"#,
                r#"Delete { key: "a" }"#,
                r#"Delete { key: "ключ" }"#,
                r#"Put { key: "a", timestamp: 2, value: 3.0 }"#,
            ]
        );
    }

    #[test]
    fn a_big_batch_is_cut_into_bounded_records() {
        let mut batch = Batch::default();
        let key = "k".repeat(100);
        let n = 3 * TARGET_BODY_BYTES / 100;
        for i in 0..n {
            batch.push(&key, i as i64, 1.0, None);
        }
        let bytes = batch.sealed(SALT).to_vec();
        let bodies = records(&bytes);
        assert!(bodies.len() >= 3, "{} records", bodies.len());
        assert!(bodies.iter().all(|b| b.len() < TARGET_BODY_BYTES + 200));
        let total: usize = bodies.iter().map(|b| decode_log(b, |_| {}).unwrap()).sum();
        assert_eq!(total, n);
    }

    #[test]
    fn every_torn_prefix_is_incomplete_and_every_flipped_bit_is_caught() {
        let mut batch = Batch::default();
        batch.push("palm.cpu", 1150864247, 23.7, None);
        batch.push("eardrum.cpu", 1150864250, 3.0, None);
        let bytes = batch.sealed(SALT).to_vec();
        for cut in 0..bytes.len() {
            assert_eq!(scan(&bytes[..cut], SALT), Scan::Incomplete, "cut at {cut}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(scan(&bad, SALT), Scan::Corrupt(_) | Scan::Incomplete),
                "bit {bit} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn impossible_lengths_are_corrupt_at_once() {
        assert_eq!(scan(&[0; 64], SALT), Scan::Corrupt(Damage::BadLength));
        let mut huge = vec![0xff; 8];
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(scan(&huge, SALT), Scan::Corrupt(Damage::BadLength));
    }

    #[test]
    fn a_snapshot_round_trips_with_long_series_split() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut buf = Vec::new();
        let mut encoder = SnapshotEncoder::new(SALT);
        let long = TARGET_BODY_BYTES / 16 + 10;
        for t in 0..long {
            encoder.push(&mut buf, &a, (t as i64, t as f64));
        }
        encoder.flush(&mut buf);
        encoder.push(&mut buf, &b, (-1, 0.25));
        assert_eq!(encoder.finish(&mut buf), (2, long as u64 + 1));

        let mut got: Vec<(String, i64, f64)> = Vec::new();
        let mut end = None;
        for body in records(&buf) {
            match decode_snapshot(body).unwrap() {
                SnapshotRecord::Series { key, points: bytes } => {
                    got.extend(points(bytes).map(|(t, v)| (key.to_owned(), t, v)))
                }
                SnapshotRecord::End { series, points } => end = Some((series, points)),
                SnapshotRecord::Chunks { .. } => panic!("no chunks were pushed"),
            }
        }
        assert_eq!(end, Some((2, long as u64 + 1)));
        assert_eq!(got.len(), long + 1);
        assert_eq!(got[long], ("b".to_owned(), -1, 0.25));
        assert!(got[..long]
            .iter()
            .enumerate()
            .all(|(i, p)| p.0 == "a" && p.1 == i as i64));
    }

    #[test]
    fn chunks_round_trip_beside_points_and_count_in_the_end_record() {
        let key: Arc<str> = "k".into();
        let first: Vec<(i64, f64)> = (0..240).map(|i| (i64::MIN + 10 * i, i as f64)).collect();
        let second: Vec<(i64, f64)> = (0..3).map(|i| (i64::MAX - 2 + i, 0.1)).collect();
        let chunks = [Chunk::encode(&first).unwrap(), Chunk::encode(&second).unwrap()];
        let mut buf = Vec::new();
        let mut encoder = SnapshotEncoder::new(SALT);
        // Chunk, points, chunk of one key: three records, one series.
        encoder.push_chunk(&mut buf, &key, &chunks[0]);
        encoder.push(&mut buf, &key, (5, 0.5));
        encoder.push_chunk(&mut buf, &key, &chunks[1]);
        assert_eq!(encoder.finish(&mut buf), (1, 244));
        let bodies = records(&buf);
        assert_eq!(bodies.len(), 4);
        match decode_snapshot(bodies[0]).unwrap() {
            SnapshotRecord::Chunks {
                key,
                chunks: bytes,
                points,
            } => {
                assert_eq!((key, points), ("k", 240));
                let entries: Vec<ChunkEntry> = super::chunks(bytes).collect();
                let c = &chunks[0];
                let want = ChunkEntry {
                    min_ts: c.min_ts(),
                    max_ts: c.max_ts(),
                    count: 240,
                    bits: c.bytes(),
                };
                assert_eq!(entries, [want]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode_snapshot(bodies[1]),
            Ok(SnapshotRecord::Series { key: "k", .. })
        ));
        match decode_snapshot(bodies[2]).unwrap() {
            SnapshotRecord::Chunks {
                chunks: bytes, points, ..
            } => {
                assert_eq!(points, 3);
                let entry = super::chunks(bytes).next().unwrap();
                assert_eq!((entry.min_ts, entry.max_ts, entry.count), (i64::MAX - 2, i64::MAX, 3));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decode_snapshot(bodies[3]),
            Ok(SnapshotRecord::End { series: 1, points: 244 })
        );
    }

    #[test]
    fn chunk_entries_with_impossible_fields_are_bad() {
        // min_ts, span, count, bits length, bits.
        let entry = |min: i64, span: &[u8], count: &[u8], len: &[u8], bits: &[u8]| {
            let mut body = vec![KIND_CHUNKS, 1, b'k'];
            body.extend_from_slice(&min.to_le_bytes());
            for field in [span, count, len, bits] {
                body.extend_from_slice(field);
            }
            body
        };
        let good = entry(0, &[10], &[2], &[1], &[0]);
        assert!(matches!(
            decode_snapshot(&good),
            Ok(SnapshotRecord::Chunks { points: 2, .. })
        ));
        for (what, body) in [
            ("a span past i64::MAX", entry(i64::MAX, &[1], &[2], &[1], &[0])),
            ("no points", entry(0, &[0], &[0], &[0], &[])),
            ("a count above u16", entry(0, &[10], &[0x80, 0x80, 0x04], &[1], &[0])),
            ("bits past the end", entry(0, &[10], &[2], &[2], &[0])),
            ("a cut timestamp", good[..8].to_vec()),
            ("a cut varint", entry(0, &[0x80], &[], &[], &[])),
            ("no entry", vec![KIND_CHUNKS, 1, b'k']),
        ] {
            assert_eq!(decode_snapshot(&body), Err(Damage::BadBody), "{what}");
        }
    }

    #[test]
    fn bodies_that_do_not_decode_are_bad() {
        assert_eq!(decode_log(&[KIND_SERIES], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_log(&[], |_| {}), Err(Damage::BadBody));
        // A key length past the end, a key that is not UTF-8, a short point.
        assert_eq!(decode_log(&[KIND_PUTS, 9, b'a'], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_log(&[KIND_DELETE, 9, b'a'], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_log(&[KIND_PUTS, 1, 0xff, 0, 0], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_log(&[KIND_DELETE, 1, 0xff], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_log(&[KIND_PUTS, 1, b'a', 0, 0], |_| {}), Err(Damage::BadBody));
        assert_eq!(decode_snapshot(&[KIND_SERIES, 1, b'a', 1]), Err(Damage::BadBody));
        assert_eq!(decode_snapshot(&[KIND_END, 1, 1, 0]), Err(Damage::BadBody));
        assert_eq!(decode_snapshot(&[]), Err(Damage::BadBody));
        // Eleven continuation bytes are no u64.
        assert_eq!(take_varint(&[0x80; 11]), Err(Damage::BadBody));
    }
}
