//! Fuzzes the store's chunk codec two ways with every input.
//!
//! Round trip: the input read as points, 9 bytes each. Byte 0 picks how
//! the timestamp steps (low 2 bits: the usual 10 s, 10 s with jitter of up to
//! ±127 s, a 32-bit step, a 64-bit step) and what the value is (next 2
//! bits: any f64 bits, a decimal `i32 / 10^k`, the previous value again, the
//! previous value plus a small integer); bytes 1-8 give the numbers. The
//! chunk of those points must decode to the same timestamps and the same
//! value bits; and so must the open head those points are appended to one
//! by one (`store::head::Packed`), which must also refuse a point at or
//! before its last, and then seal into a chunk of the same points no
//! larger than the encoded one.
//!
//! Garbage: the input read as a chunk's stored parts (first timestamp,
//! span, count, bits). Decoding must end in points or an error, never
//! panic, never yield a point out of bounds or more points than the count; and
//! `Chunk::decode` finds the same points or an error.

#![no_main]

use libfuzzer_sys::fuzz_target;
use metricsd::store::chunk::{Chunk, Decoded, MAX_POINTS};
use metricsd::store::head::{Packed, PushError};

fuzz_target!(|data: &[u8]| {
    round_trip(data);
    garbage(data);
});

fn round_trip(data: &[u8]) {
    let mut points: Vec<(i64, f64)> = Vec::new();
    let mut t = i64::from_le_bytes(*data.first_chunk::<8>().unwrap_or(&[0; 8]));
    for field in data.chunks_exact(9).take(MAX_POINTS) {
        let number = u64::from_le_bytes(field[1..].try_into().expect("8 bytes"));
        let step = match field[0] & 3 {
            0 => 10,
            1 => (10 + i64::from(number as i8)).max(1) as u64,
            2 => u64::from(number as u32).max(1),
            _ => number.max(1),
        };
        let prev = points.last().map_or(0.0, |p| p.1);
        let value = match (field[0] >> 2) & 3 {
            0 => f64::from_bits(number),
            1 => f64::from(number as i32) / 10f64.powi(i32::from(field[0] >> 4) % 4),
            2 => prev,
            _ => prev + f64::from(number as i8),
        };
        if !points.is_empty() {
            match t.checked_add_unsigned(step) {
                Some(next) => t = next,
                None => break,
            }
        }
        points.push((t, value));
    }
    if points.is_empty() {
        return;
    }
    let chunk = Chunk::encode(&points).expect("ascending points encode");
    let back = chunk.decode().expect("a chunk just encoded decodes");
    assert_eq!(back.len(), points.len());
    for (a, b) in points.iter().zip(&back) {
        assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
    }
    let mut head = Packed::default();
    let mut bytes = 0;
    for &(t, v) in &points {
        bytes += head.push(t, v).expect("ascending points append");
    }
    assert_eq!(bytes, head.heap_bytes());
    let last = points[points.len() - 1];
    assert_eq!(head.push(last.0, last.1), Err(PushError::Unsorted));
    let back = head.to_vec();
    assert_eq!(back.len(), points.len());
    for (a, b) in points.iter().zip(&back) {
        assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
    }
    // Sealed (its XOR bits kept, or a smaller coding), the head is a chunk
    // of the same points, no larger than the one encoded from them, and is
    // left empty.
    let sealed = head.seal(&mut Decoded::default()).expect("a head of points seals");
    assert!(sealed.bytes().len() <= chunk.bytes().len());
    let back = sealed.decode().expect("a sealed head decodes");
    assert_eq!(back.len(), points.len());
    for (a, b) in points.iter().zip(&back) {
        assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
    }
    assert_eq!(head.len(), 0);
}

fn garbage(data: &[u8]) {
    let Some((head, bits)) = data.split_first_chunk::<18>() else {
        return;
    };
    let min = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
    let span = u64::from_le_bytes(head[8..16].try_into().expect("8 bytes"));
    let count = u16::from_le_bytes([head[16], head[17]]);
    let max = min.saturating_add_unsigned(span);
    let Ok(chunk) = Chunk::from_parts(min, max, count, bits.into()) else {
        return;
    };
    let mut points = chunk.iter();
    let mut n = 0;
    for (t, _) in points.by_ref() {
        assert!((min..=max).contains(&t));
        n += 1;
    }
    assert!(n <= usize::from(count));
    assert!(points.error().is_some() || n == usize::from(count));
    // The whole-chunk decoder, which checks its bits after its loop, agrees
    // with the iterator: the same points, or an error for both.
    match chunk.decode() {
        Ok(decoded) => {
            assert!(points.error().is_none());
            let iterated: Vec<(i64, u64)> = chunk.iter().map(|p| (p.0, p.1.to_bits())).collect();
            let decoded: Vec<(i64, u64)> = decoded.iter().map(|p| (p.0, p.1.to_bits())).collect();
            assert_eq!(iterated, decoded);
        }
        Err(_) => assert!(points.error().is_some()),
    }
}
