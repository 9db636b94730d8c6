//! Numbers written the way graphite-web's Python writes them, so that series
//! names (`scale(a.b,0.5)`, `constantLine(100.0)`) and CSV values come out
//! as graphite-web's do.

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
