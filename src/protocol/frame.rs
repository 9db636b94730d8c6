//! Cutting a byte stream into request lines, with a bound on line length.
//!
//! The framer never needs a line to be buffered whole: a line that grows past
//! the bound is reported once as [`Framed::TooLong`] and its remaining bytes
//! are skipped up to and including its `\n`, however many reads that takes.
//! It also remembers how much of an incomplete line it has already searched,
//! so a peer trickling a long line byte by byte costs linear, not quadratic,
//! work.

use memchr::memchr;

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A complete line, without its `\n` (a trailing `\r` is left for the
    /// request parser, which knows what it means).
    Line(&'a [u8]),
    /// The line in progress is longer than the bound. It is answered once; the
    /// framer drops the rest of it through its `\n`.
    TooLong,
    /// No complete line yet. Bytes reported as consumed with it are discarded
    /// tail of an overlong line; the rest must be offered again with more
    /// input appended.
    Incomplete,
}

/// Per-connection framing state.
#[derive(Debug, Clone)]
pub struct LineFramer {
    max_line: usize,
    /// Inside an overlong line: drop bytes until its `\n`.
    discarding: bool,
    /// Bytes at the front of the last incomplete buffer known to hold no `\n`.
    scanned: usize,
}

impl LineFramer {
    /// A framer accepting lines of up to `max_line` bytes before their `\n`
    /// (a `\r` before the `\n` counts).
    pub fn new(max_line: usize) -> Self {
        LineFramer {
            max_line,
            discarding: false,
            scanned: 0,
        }
    }

    /// The longest line accepted.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Whether the framer is skipping the rest of an overlong line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Looks at the front of `buf` and returns what is there and how many
    /// bytes of `buf` it used up.
    ///
    /// After [`Framed::Incomplete`] with `n` consumed, the next call must be
    /// given `buf[n..]` with any new input appended: the framer trusts that the
    /// bytes it already searched come first again.
    pub fn next<'a>(&mut self, buf: &'a [u8]) -> (Framed<'a>, usize) {
        let mut skipped = 0;
        if self.discarding {
            match memchr(b'\n', buf) {
                Some(i) => {
                    self.discarding = false;
                    skipped = i + 1;
                }
                None => return (Framed::Incomplete, buf.len()),
            }
        }
        let rest = &buf[skipped..];
        // Only the first max_line + 1 bytes can hold the `\n` of a line that
        // is within the bound; the rest is never searched for a legal line.
        // Saturating: `Server::bind` takes any non-zero limit, and with
        // `usize::MAX` a plain `+ 1` overflowed (a panic in debug builds, and a
        // window of 0 in release, so that no line was ever framed). Found by
        // the `parse_request` fuzz target.
        let window = rest.len().min(self.max_line.saturating_add(1));
        let from = self.scanned.min(window);
        match memchr(b'\n', &rest[from..window]) {
            Some(i) => {
                self.scanned = 0;
                let end = from + i;
                (Framed::Line(&rest[..end]), skipped + end + 1)
            }
            None if rest.len() > self.max_line => {
                self.scanned = 0;
                // The overlong line may end inside this very buffer.
                match memchr(b'\n', &rest[window..]) {
                    Some(i) => (Framed::TooLong, skipped + window + i + 1),
                    None => {
                        self.discarding = true;
                        (Framed::TooLong, buf.len())
                    }
                }
            }
            None => {
                self.scanned = window;
                (Framed::Incomplete, skipped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::testing::{cuts, frame_in_pieces, positions, stream};
    use proptest::prelude::*;

    #[test]
    fn lines_and_incomplete_tail() {
        let mut f = LineFramer::new(100);
        let buf = b"get a\nput b 1 2\r\nget";
        assert_eq!(f.next(buf), (Framed::Line(b"get a"), 6));
        assert_eq!(f.next(&buf[6..]), (Framed::Line(b"put b 1 2\r"), 11));
        assert_eq!(f.next(&buf[17..]), (Framed::Incomplete, 0));
    }

    #[test]
    fn line_of_exactly_max_is_accepted_one_more_is_not() {
        let mut f = LineFramer::new(5);
        assert_eq!(f.next(b"12345\n"), (Framed::Line(b"12345"), 6));
        assert_eq!(f.next(b"123456\nget a\n"), (Framed::TooLong, 7));
        assert!(!f.is_discarding());
        assert_eq!(f.next(b"get a\n"), (Framed::Line(b"get a"), 6));
    }

    #[test]
    fn largest_limit_frames_lines() {
        // Regression: `max_line + 1` overflowed for usize::MAX.
        let mut f = LineFramer::new(usize::MAX);
        assert_eq!(f.next(b"get a"), (Framed::Incomplete, 0));
        assert_eq!(f.next(b"get a\nput"), (Framed::Line(b"get a"), 6));
        assert_eq!(f.next(b"put"), (Framed::Incomplete, 0));
        assert!(!f.is_discarding());
    }

    #[test]
    fn overlong_line_is_discarded_across_buffers() {
        let mut f = LineFramer::new(4);
        assert_eq!(f.next(b"abcdefgh"), (Framed::TooLong, 8));
        assert!(f.is_discarding());
        assert_eq!(f.next(b"ijkl"), (Framed::Incomplete, 4));
        assert_eq!(f.next(b"mn\nget"), (Framed::Incomplete, 3));
        assert!(!f.is_discarding());
        assert_eq!(f.next(b"get\n"), (Framed::Line(b"get"), 4));
    }

    #[test]
    fn incomplete_line_is_not_rescanned() {
        let mut f = LineFramer::new(1000);
        let mut buf = Vec::new();
        for _ in 0..10 {
            buf.extend_from_slice(b"aaaa");
            assert_eq!(f.next(&buf), (Framed::Incomplete, 0));
            assert_eq!(f.scanned, buf.len());
        }
        buf.push(b'\n');
        assert_eq!(f.next(&buf), (Framed::Line(&[b'a'; 40][..]), 41));
    }

    #[test]
    fn every_split_point_frames_the_same() {
        let input: &[u8] = b"put a 1 2\n\nget a\r\n  \nTOOLONGLINE_TOOLONGLINE\nget *\nx";
        let whole = frame_in_pieces(16, input, &[]);
        assert_eq!(
            whole,
            vec![
                Framed::Line(b"put a 1 2"),
                Framed::Line(b""),
                Framed::Line(b"get a\r"),
                Framed::Line(b"  "),
                Framed::TooLong,
                Framed::Line(b"get *"),
            ]
        );
        for i in 0..=input.len() {
            assert_eq!(frame_in_pieces(16, input, &[i]), whole, "split at {i}");
            for j in i..=input.len() {
                assert_eq!(frame_in_pieces(16, input, &[i, j]), whole, "split at {i},{j}");
            }
        }
        let every_byte: Vec<usize> = (1..input.len()).collect();
        assert_eq!(frame_in_pieces(16, input, &every_byte), whole);
    }

    /// What framing `input` must give, from the definition: every line
    /// through its `\n`, overlong ones as `TooLong`; an unterminated tail
    /// is `TooLong` once it is over the limit, and nothing before.
    fn expected_frames(max: usize, input: &[u8]) -> Vec<Framed<'_>> {
        let mut lines: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        let tail = lines.pop().filter(|tail| tail.len() > max).map(|_| Framed::TooLong);
        let framed = lines.into_iter().map(|line| {
            if line.len() <= max {
                Framed::Line(line)
            } else {
                Framed::TooLong
            }
        });
        framed.chain(tail).collect()
    }

    fn line_limit() -> impl Strategy<Value = usize> {
        prop_oneof![8 => 1..40usize, 1 => Just(65536), 1 => Just(usize::MAX)]
    }

    proptest! {
        /// However a connection's input is cut into reads, the framer
        /// reports the same lines and overlong lines, and they are the ones
        /// the definition gives.
        #[test]
        fn framing_does_not_depend_on_cuts(max in line_limit(), input in stream(12, 300), cuts in cuts()) {
            let whole = frame_in_pieces(max, &input, &[]);
            prop_assert_eq!(&whole, &expected_frames(max, &input));
            prop_assert_eq!(frame_in_pieces(max, &input, &positions(&cuts, input.len())), whole);
        }
    }
}
