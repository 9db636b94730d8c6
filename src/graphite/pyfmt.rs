//! Numbers written the way graphite-web's Python writes them, so that series
//! names (`scale(a.b,0.5)`, `constantLine(100.0)`) and CSV values come out
//! as graphite-web's do.

use crate::protocol::number::write_short_decimal;

/// The digits and decimal exponent of `x` rounded as `{:.prec$e}` (or the
/// shortest round-trip digits without `prec`): ("15", -7) for 1.5e-7.
fn digits_and_exponent(x: f64, precision: Option<usize>) -> (String, i32) {
    let text = match precision {
        Some(p) => format!("{:.*e}", p, x.abs()),
        None => format!("{:e}", x.abs()),
    };
    let (mantissa, exponent) = text.split_once('e').expect("`{:e}` writes an exponent");
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    (digits, exponent.parse().expect("`{:e}` writes an integer exponent"))
}

/// `d.ddd` from digits, without trailing zeros (and without the point if
/// nothing follows it), then Python's exponent: `e+16`, `e-07`.
fn scientific(digits: &str, exponent: i32, keep_point_zero: bool) -> String {
    let (first, rest) = digits.split_at(1);
    let rest = rest.trim_end_matches('0');
    let mut out = first.to_string();
    if !rest.is_empty() {
        out.push('.');
        out.push_str(rest);
    } else if keep_point_zero {
        // repr writes 1e+16, not 1.0e+16: nothing to add.
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    out.push_str(&format!("e{sign}{:02}", exponent.abs()));
    out
}

/// Digits placed around the decimal point for `digits × 10^(exponent + 1 -
/// len)`, written in fixed notation.
fn fixed(digits: &str, exponent: i32) -> String {
    let len = digits.len() as i32;
    if exponent < 0 {
        format!("0.{}{}", "0".repeat((-exponent - 1) as usize), digits)
    } else if exponent + 1 >= len {
        format!("{}{}", digits, "0".repeat((exponent + 1 - len) as usize))
    } else {
        let (int, frac) = digits.split_at((exponent + 1) as usize);
        format!("{int}.{frac}")
    }
}

fn special(x: f64) -> Option<String> {
    match x {
        _ if x.is_nan() => Some("nan".into()),
        _ if x.is_infinite() => Some(if x > 0.0 { "inf" } else { "-inf" }.into()),
        _ => None,
    }
}

/// Python's `repr(float)`: the shortest text that reads back, fixed for
/// exponents from -4 to 15 (always with a fraction: `100.0`), scientific
/// otherwise (`1e+16`, `1.5e-07`).
pub fn repr(x: f64) -> String {
    let mut out = Vec::with_capacity(24);
    write_repr(&mut out, x);
    // Only ASCII is written.
    String::from_utf8(out).unwrap_or_default()
}

/// [`repr`] appended to `out`, the way a `/render` answer writes each of its
/// values.
///
/// Żmij (the `zmij` crate, which `protocol::number` uses for `get`) writes
/// exactly Python's text for every finite value but those of magnitude in
/// [1e-5, 1e-4): it picks the same shortest digits (Python's `repr`, David
/// Gay's `dtoa` mode 0, also breaks a tie to even: `1000000000000000.2` for
/// 1e15 + 0.25, where Rust's `{:?}` writes `.3`), places the point the same
/// way for decimal exponents -4 to 15 (`100.0`, `0.0001`), and writes
/// the others as `1e+16` and `1.5e-07`, with a sign (Żmij writes one
/// exponent digit, `1.5e-7`, where Python writes two). Żmij keeps exponent -5 positional (`0.00001`) where Python
/// switches to `1e-05`: those, and the non-finite values, take the general
/// path. Why: the general path (`{:e}` through `core::fmt`, then string
/// surgery) took some 2,900 instructions a value, half of a `/render`
/// answer's cost; Żmij takes about 240 (callgrind, BENCHMARKS.md). Short
/// decimals, most metrics values, go first to
/// [`write_short_decimal`], which takes about 40.
#[inline]
pub fn write_repr(out: &mut Vec<u8>, x: f64) {
    if write_short_decimal(out, x) {
        return;
    }
    if x.is_finite() && !(1e-5..1e-4).contains(&x.abs()) {
        let mut buffer = zmij::Buffer::new();
        let text = buffer.format_finite(x).as_bytes();
        // Żmij writes one exponent digit where it can (`1e-7`), Python at
        // least two (`1e-07`); only exponents -6 to -9 have one.
        match text.len().checked_sub(3).filter(|_| x != 0.0 && x.abs() < 1e-5) {
            Some(at) if text[at..at + 2] == *b"e-" => {
                out.extend_from_slice(&text[..at + 2]);
                out.push(b'0');
                out.push(text[at + 2]);
            }
            _ => out.extend_from_slice(text),
        }
    } else {
        out.extend_from_slice(repr_general(x).as_bytes());
    }
}

/// [`repr`] the slow and obvious way: Rust's shortest digits, laid out by
/// Python's rules.
fn repr_general(x: f64) -> String {
    if let Some(text) = special(x) {
        return text;
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let (digits, exponent) = digits_and_exponent(x, None);
    let body = if (-4..16).contains(&exponent) {
        let text = fixed(&digits, exponent);
        if text.contains('.') {
            text
        } else {
            text + ".0"
        }
    } else {
        scientific(&digits, exponent, false)
    };
    format!("{sign}{body}")
}

/// Python's `"%g" % x`: six significant digits, trailing zeros dropped,
/// scientific below 1e-4 and from 1e6.
pub fn format_g(x: f64) -> String {
    if let Some(text) = special(x) {
        return text;
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let (digits, exponent) = digits_and_exponent(x, Some(5));
    let body = if (-4..6).contains(&exponent) {
        let text = fixed(&digits, exponent);
        match text.contains('.') {
            true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
            false => text,
        }
    } else {
        scientific(&digits, exponent, false)
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repr_matches_python() {
        for (x, text) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (100.0, "100.0"),
            (23.7, "23.7"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e20, "1.2345e+20"),
            (-2.5, "-2.5"),
            (123456789.125, "123456789.125"),
            (1e300, "1e+300"),
            (f64::NAN, "nan"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(repr(x), text, "{x:e}");
        }
    }

    #[test]
    fn the_fast_path_writes_what_the_general_one_does() {
        // Every decimal exponent from -330 to 310, short and 17-digit
        // values, both signs, and the edges of the positional range.
        let mut values = vec![
            0.0,
            -0.0,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e-5,
            9.999e-5,
            1e-4,
            1e16,
            9999999999999998.0,
        ];
        for exp in -330..310 {
            for mantissa in [1.0, 1.5, 2.5, 9.999999999999998, 1.2345678901234567] {
                values.push(mantissa * 10f64.powi(exp));
                values.push(-mantissa * 10f64.powi(exp));
            }
        }
        // Short decimals and their neighbours, around 1e-4 and 1e15 too.
        for digits in [1u64, 5, 25, 237, 9999, 12345, 100_001, 999_999_999_999_999] {
            for k in 0..8 {
                let x = digits as f64 / 10f64.powi(k);
                values.extend([x, -x, x.next_up(), x.next_down()]);
            }
        }
        for x in values.into_iter().filter(|x| x.is_finite()) {
            let mut fast = Vec::new();
            write_repr(&mut fast, x);
            let fast = String::from_utf8(fast).unwrap();
            // Ties aside (there the general path, Rust's digits, rounds up
            // and Python to even), both write the same text.
            if !fast.contains("1000000000000000.") {
                assert_eq!(fast, repr_general(x), "{x:e}");
            }
        }
    }

    #[test]
    fn ties_round_to_even_as_python_does() {
        // Python 3: repr(1e15 + 0.25) == '1000000000000000.2'.
        assert_eq!(repr(1e15 + 0.25), "1000000000000000.2");
        assert_eq!(repr(1.2345678901234568e17), "1.2345678901234568e+17");
        assert_eq!(repr(1.234e-5), "1.234e-05");
    }

    #[test]
    fn format_g_matches_python() {
        for (x, text) in [
            (0.0, "0"),
            (2.0, "2"),
            (0.5, "0.5"),
            (-1.5, "-1.5"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (1e6, "1e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (0.000123456789, "0.000123457"),
            (1.23456789, "1.23457"),
            (999999.5, "1e+06"),
            (f64::INFINITY, "inf"),
        ] {
            assert_eq!(format_g(x), text, "{x:e}");
        }
    }
}
