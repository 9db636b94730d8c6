//! The bytes of the data files, with no I/O: records, the batch of puts a
//! loop turn appends to the log, and the series of a snapshot.
//!
//! Both kinds of file are a 16-byte header naming the kind and version, then
//! records:
//!
//! ```text
//! record = length:u32le  crc:u32le  body[length]
//! crc    = CRC-32 (IEEE) of the 4 length bytes followed by the body
//! body   = kind:u8 ...
//!   PUTS   (log)       { key_len:varint key:utf8 timestamp:i64le value:f64le }+
//!   SERIES (snapshot)  key_len:varint key:utf8 { timestamp:i64le value:f64le }+
//!   END    (snapshot)  series:varint points:varint
//! ```
//!
//! The checksum covers the length too, so a torn or overwritten length is
//! caught like a torn body. A log is a series of PUTS records, one or more
//! per loop turn; a snapshot is SERIES records in key order (a long series
//! spans several) and one END record whose counts prove it complete.
//! Integers are little-endian; varints are unsigned LEB128.

use std::fmt;

/// First bytes of a log file.
pub const LOG_MAGIC: &[u8; 16] = b"METRICSD-LOG-v1\n";
/// First bytes of a snapshot file.
pub const SNAPSHOT_MAGIC: &[u8; 16] = b"METRICSD-SNAP-1\n";

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

/// Why bytes are not a record, or a record's body not what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The length field is zero or above [`MAX_BODY_BYTES`].
    BadLength,
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matches but the body does not decode (unknown kind,
    /// short entry, a key that is not UTF-8): written by something else.
    BadBody,
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Damage::BadLength => "impossible record length",
            Damage::BadChecksum => "checksum mismatch",
            Damage::BadBody => "record body does not decode",
        })
    }
}

/// Whether `kind` is the first byte of a body this format writes.
pub fn is_known_kind(kind: u8) -> bool {
    matches!(kind, KIND_PUTS | KIND_SERIES | KIND_END)
}

/// Looks at the record at the front of `buf`.
pub fn scan(buf: &[u8]) -> Scan<'_> {
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
    if checksum(&header[..4], body) != crc {
        return Scan::Corrupt(Damage::BadChecksum);
    }
    Scan::Record {
        body,
        len: HEADER_BYTES + len,
    }
}

fn checksum(len: &[u8], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(body);
    hasher.finalize()
}

/// Appends records to a buffer: [`RecordWriter::open`] reserves a header,
/// the caller appends the body, [`RecordWriter::seal`] fills the header in.
#[derive(Debug, Default)]
struct RecordWriter {
    /// Where the open record's header starts in the buffer.
    open_at: Option<usize>,
}

impl RecordWriter {
    fn open(&mut self, buf: &mut Vec<u8>, kind: u8) {
        debug_assert!(self.open_at.is_none());
        self.open_at = Some(buf.len());
        buf.extend_from_slice(&[0; HEADER_BYTES]);
        buf.push(kind);
    }

    /// Bytes of body in the open record.
    fn body_len(&self, buf: &[u8]) -> usize {
        self.open_at.map_or(0, |at| buf.len() - at - HEADER_BYTES)
    }

    fn seal(&mut self, buf: &mut [u8]) {
        if let Some(at) = self.open_at.take() {
            // A body stays under MAX_BODY_BYTES, far below u32::MAX.
            let len = (buf.len() - at - HEADER_BYTES) as u32;
            let len = len.to_le_bytes();
            let crc = checksum(&len, &buf[at + HEADER_BYTES..]);
            buf[at..at + 4].copy_from_slice(&len);
            buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// The puts of one loop turn, encoded as log records, waiting to be written.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    record: RecordWriter,
    puts: usize,
}

impl Batch {
    /// Adds one put.
    pub fn push(&mut self, key: &str, timestamp: i64, value: f64) {
        if self.record.body_len(&self.buf) >= TARGET_BODY_BYTES {
            self.record.seal(&mut self.buf);
        }
        if self.record.open_at.is_none() {
            self.record.open(&mut self.buf, KIND_PUTS);
        }
        put_varint(&mut self.buf, key.len() as u64);
        self.buf.extend_from_slice(key.as_bytes());
        put_point(&mut self.buf, (timestamp, value));
        self.puts += 1;
    }

    /// Puts added since the last [`Batch::clear`].
    pub fn len(&self) -> usize {
        self.puts
    }

    pub fn is_empty(&self) -> bool {
        self.puts == 0
    }

    /// The complete records, ready to append to a log.
    pub fn sealed(&mut self) -> &[u8] {
        self.record.seal(&mut self.buf);
        &self.buf
    }

    /// Empties the batch, keeping a buffer of ordinary size for the next turn.
    pub fn clear(&mut self) {
        // A burst's multi-megabyte buffer is not kept for a quiet server.
        const KEEP_BYTES: usize = 64 * 1024;
        debug_assert!(self.record.open_at.is_none(), "clear after sealed");
        self.record = RecordWriter::default();
        self.puts = 0;
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
    }
}

/// Decodes the body of a PUTS record, calling `put` for each entry in order.
pub fn decode_puts(body: &[u8], mut put: impl FnMut(&str, i64, f64)) -> Result<usize, Damage> {
    let mut rest = expect_kind(body, KIND_PUTS)?;
    let mut count = 0;
    while !rest.is_empty() {
        let key;
        (key, rest) = take_key(rest)?;
        let point = rest.get(..POINT_BYTES).ok_or(Damage::BadBody)?;
        let (timestamp, value) = get_point(point);
        put(key, timestamp, value);
        rest = &rest[POINT_BYTES..];
        count += 1;
    }
    Ok(count)
}

/// Encodes a snapshot: SERIES records for points fed key by key in key
/// order, then END.
#[derive(Debug, Default)]
pub struct SnapshotEncoder {
    record: RecordWriter,
    /// The key of the open SERIES record.
    key: Option<std::sync::Arc<str>>,
    series: u64,
    points: u64,
}

impl SnapshotEncoder {
    /// Adds one point of `key`; points of a key come together, ascending.
    pub fn push(&mut self, buf: &mut Vec<u8>, key: &std::sync::Arc<str>, point: (i64, f64)) {
        let same_key = self.key.as_ref().is_some_and(|open| open == key);
        if !same_key {
            self.series += 1;
        }
        if !same_key || self.record.open_at.is_none() || self.record.body_len(buf) >= TARGET_BODY_BYTES {
            self.record.seal(buf);
            self.record.open(buf, KIND_SERIES);
            put_varint(buf, key.len() as u64);
            buf.extend_from_slice(key.as_bytes());
            self.key = Some(std::sync::Arc::clone(key));
        }
        put_point(buf, point);
        self.points += 1;
    }

    /// Closes the open record so `buf` holds only whole records; more points
    /// of the same key may follow in a new record.
    pub fn flush(&mut self, buf: &mut [u8]) {
        self.record.seal(buf);
    }

    /// Ends the snapshot with its END record; returns (series, points).
    pub fn finish(mut self, buf: &mut Vec<u8>) -> (u64, u64) {
        self.record.seal(buf);
        self.record.open(buf, KIND_END);
        put_varint(buf, self.series);
        put_varint(buf, self.points);
        self.record.seal(buf);
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
    End {
        series: u64,
        points: u64,
    },
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

fn expect_kind(body: &[u8], kind: u8) -> Result<&[u8], Damage> {
    match body.split_first() {
        Some((&k, rest)) if k == kind => Ok(rest),
        _ => Err(Damage::BadBody),
    }
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

    fn records(mut buf: &[u8]) -> Vec<&[u8]> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            match scan(buf) {
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
            batch.push(key, ts, value);
        }
        assert_eq!(batch.len(), 4);
        let bytes = batch.sealed().to_vec();
        let mut seen = Vec::new();
        for body in records(&bytes) {
            decode_puts(body, |k, t, v| seen.push((k.to_owned(), t, v.to_bits()))).unwrap();
        }
        let want: Vec<_> = puts.iter().map(|&(k, t, v)| (k.to_owned(), t, v.to_bits())).collect();
        assert_eq!(seen, want);
        batch.clear();
        assert!(batch.is_empty());
        assert!(batch.sealed().is_empty());
    }

    #[test]
    fn a_big_batch_is_cut_into_bounded_records() {
        let mut batch = Batch::default();
        let key = "k".repeat(100);
        let n = 3 * TARGET_BODY_BYTES / 100;
        for i in 0..n {
            batch.push(&key, i as i64, 1.0);
        }
        let bytes = batch.sealed().to_vec();
        let bodies = records(&bytes);
        assert!(bodies.len() >= 3, "{} records", bodies.len());
        assert!(bodies.iter().all(|b| b.len() < TARGET_BODY_BYTES + 200));
        let total: usize = bodies.iter().map(|b| decode_puts(b, |_, _, _| {}).unwrap()).sum();
        assert_eq!(total, n);
    }

    #[test]
    fn every_torn_prefix_is_incomplete_and_every_flipped_bit_is_caught() {
        let mut batch = Batch::default();
        batch.push("palm.cpu", 1150864247, 23.7);
        batch.push("eardrum.cpu", 1150864250, 3.0);
        let bytes = batch.sealed().to_vec();
        for cut in 0..bytes.len() {
            assert_eq!(scan(&bytes[..cut]), Scan::Incomplete, "cut at {cut}");
        }
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(
                matches!(scan(&bad), Scan::Corrupt(_) | Scan::Incomplete),
                "bit {bit} flipped went unnoticed"
            );
        }
    }

    #[test]
    fn impossible_lengths_are_corrupt_at_once() {
        assert_eq!(scan(&[0; 64]), Scan::Corrupt(Damage::BadLength));
        let mut huge = vec![0xff; 8];
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(scan(&huge), Scan::Corrupt(Damage::BadLength));
    }

    #[test]
    fn a_snapshot_round_trips_with_long_series_split() {
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        let mut buf = Vec::new();
        let mut encoder = SnapshotEncoder::default();
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
    fn bodies_that_do_not_decode_are_bad() {
        assert_eq!(decode_puts(&[KIND_SERIES], |_, _, _| {}), Err(Damage::BadBody));
        // A key length past the end, a key that is not UTF-8, a short point.
        assert_eq!(decode_puts(&[KIND_PUTS, 9, b'a'], |_, _, _| {}), Err(Damage::BadBody));
        assert_eq!(
            decode_puts(&[KIND_PUTS, 1, 0xff, 0, 0], |_, _, _| {}),
            Err(Damage::BadBody)
        );
        assert_eq!(
            decode_puts(&[KIND_PUTS, 1, b'a', 0, 0], |_, _, _| {}),
            Err(Damage::BadBody)
        );
        assert_eq!(decode_snapshot(&[KIND_SERIES, 1, b'a', 1]), Err(Damage::BadBody));
        assert_eq!(decode_snapshot(&[KIND_END, 1, 1, 0]), Err(Damage::BadBody));
        assert_eq!(decode_snapshot(&[]), Err(Damage::BadBody));
        // Eleven continuation bytes are no u64.
        assert_eq!(take_varint(&[0x80; 11]), Err(Damage::BadBody));
    }
}
