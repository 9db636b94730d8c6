//! graphite-web's `from`, `until` and `now` times (`render/attime.py`,
//! `parseATTime`), in UTC, with "now" supplied by the caller.
//!
//! A time is a reference and an optional offset, after the text is
//! lower-cased and stripped of `_`, `,` and spaces:
//! - all digits: seconds since the epoch, unless it reads as a plausible
//!   `YYYYMMDD` (year > 1900, month < 13, day < 32), which is a date;
//! - otherwise the text splits at its first `+` (or else its first `-`) into
//!   a reference and an offset. The reference is empty or `now`, or an
//!   optional time of day (`HH:MM`, `H:MMam`, `3pm`, `noon`, `midnight`,
//!   `teatime`) followed by an optional day (`today`, `yesterday`,
//!   `tomorrow`, `MM/DD/YY[YY]`, `YYYYMMDD`, a month name and day `jan15`,
//!   a weekday `monday` meaning its latest occurrence); a time of day without
//!   a day is on now's date, and a day without a time of day at midnight.
//! - an offset is a sign and one or more `<number><unit>`: units by prefix,
//!   `s` seconds, `min` minutes, `h` hours, `d` days, `w` weeks, `mon` months
//!   (30 days), `y` years (365 days). `-1h30min` is 90 minutes back; `-1m` is
//!   an error, as in graphite-web.

/// Why a time is refused; the text says what was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid time {text:?}: {reason}")]
pub struct TimeError {
    pub text: String,
    pub reason: &'static str,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;
/// Python's `datetime` range, which bounds graphite-web's times: 0001-01-01
/// to 9999-12-31 23:59:59.
const EARLIEST: i64 = -62_135_596_800;
const LATEST: i64 = 253_402_300_799;

/// Parses a graphite-web time to seconds since the epoch; `now` is the
/// current time in the same unit.
pub fn parse_time(text: &str, now: i64) -> Result<i64, TimeError> {
    let fail = |reason| TimeError {
        text: text.to_string(),
        reason,
    };
    let s: String = text
        .trim()
        .chars()
        .filter(|c| !matches!(c, '_' | ',' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !is_plausible_date(&s) {
        let seconds = s.parse::<i64>().map_err(|_| fail("timestamp out of range"))?;
        return in_range(seconds).ok_or(fail("timestamp out of range"));
    }
    let split = s.find('+').or_else(|| s.find('-')).unwrap_or(s.len());
    let (reference, offset) = s.split_at(split);
    let base = parse_reference(reference, now).map_err(fail)?;
    let delta = parse_offset(offset).map_err(fail)?;
    base.checked_add(delta)
        .and_then(in_range)
        .ok_or(fail("time out of range"))
}

fn in_range(seconds: i64) -> Option<i64> {
    (EARLIEST..=LATEST).contains(&seconds).then_some(seconds)
}

/// graphite-web's test for an 8-digit string that is a date, not a timestamp.
fn is_plausible_date(s: &str) -> bool {
    let number = |range: std::ops::Range<usize>| s[range].parse::<u32>().unwrap_or(0);
    s.len() == 8 && number(0..4) > 1900 && number(4..6) < 13 && number(6..8) < 32
}

fn digits(s: &str) -> Result<i64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a number");
    }
    s.parse().map_err(|_| "number out of range")
}

/// A reference: a time of day and a day, on now's date by default.
fn parse_reference(reference: &str, now: i64) -> Result<i64, &'static str> {
    if reference.is_empty() || reference == "now" {
        return Ok(now);
    }
    let mut rest = reference;
    let (mut hour, mut minute) = (0, 0);
    // HH:MM, then an optional am/pm.
    if let Some(i) = rest.find(':').filter(|&i| (1..3).contains(&i)) {
        hour = digits(&rest[..i])?;
        let after = &rest[i + 1..];
        let end = after.char_indices().nth(2).map_or(after.len(), |(at, _)| at);
        minute = digits(&after[..end])?;
        rest = &after[end..];
        if let Some(r) = rest.strip_prefix("am") {
            rest = r;
        } else if let Some(r) = rest.strip_prefix("pm") {
            hour = (hour + 12) % 24;
            rest = r;
        }
    }
    // Xam or XXam (12am is hour 12, as in graphite-web), then Xpm or XXpm.
    if let Some(i) = rest.find("am").filter(|&i| (1..3).contains(&i)) {
        hour = digits(&rest[..i])?;
        rest = &rest[i + 2..];
    }
    if let Some(i) = rest.find("pm").filter(|&i| (1..3).contains(&i)) {
        hour = (digits(&rest[..i])? + 12) % 24;
        rest = &rest[i + 2..];
    }
    for (word, h) in [("noon", 12), ("midnight", 0), ("teatime", 16)] {
        if let Some(r) = rest.strip_prefix(word) {
            (hour, minute) = (h, 0);
            rest = r;
            break;
        }
    }
    if hour > 23 || minute > 59 {
        return Err("invalid time of day");
    }
    let time_of_day = hour * HOUR + minute * MINUTE;
    let today = now.div_euclid(DAY);
    let day = match rest {
        "" | "today" => today,
        "yesterday" => today - 1,
        "tomorrow" => today + 1,
        _ if rest.matches('/').count() == 2 => {
            let mut parts = rest.split('/');
            let mut next = || digits(parts.next().unwrap_or(""));
            let (month, day, mut year) = (next()?, next()?, next()?);
            if year < 1900 {
                year += 1900;
            }
            if year < 1970 {
                year += 100;
            }
            date(year, month, day)?
        }
        _ if rest.len() == 8 && rest.bytes().all(|b| b.is_ascii_digit()) => {
            date(digits(&rest[..4])?, digits(&rest[4..6])?, digits(&rest[6..])?)?
        }
        _ if rest.get(..3).is_some_and(|m| MONTHS.contains(&m)) => {
            let month = MONTHS.iter().position(|m| rest.starts_with(m)).expect("checked above") as i64 + 1;
            let tail = |n: usize| rest.get(rest.len().saturating_sub(n)..).filter(|t| t.len() == n);
            let day = match (tail(2).map(digits), tail(1).map(digits)) {
                (Some(Ok(day)), _) | (_, Some(Ok(day))) => day,
                _ => return Err("day of month required after month name"),
            };
            date(civil_from_days(today).0, month, day)?
        }
        _ if rest.get(..3).is_some_and(|d| WEEKDAYS.contains(&d)) => {
            let wanted = WEEKDAYS
                .iter()
                .position(|d| rest.starts_with(d))
                .expect("checked above") as i64;
            // 1970-01-01 was a Thursday (index 4).
            let weekday = (today + 4).rem_euclid(7);
            today - (weekday - wanted).rem_euclid(7)
        }
        _ => return Err("unknown day reference"),
    };
    Ok(day * DAY + time_of_day)
}

/// An offset: a sign, then `<number><unit>` repeated.
pub(crate) fn parse_offset(offset: &str) -> Result<i64, &'static str> {
    let Some(first) = offset.chars().next() else {
        return Ok(0);
    };
    let (sign, mut rest) = match first {
        '+' => (1, &offset[1..]),
        '-' => (-1, &offset[1..]),
        c if c.is_ascii_digit() => (1, offset),
        _ => return Err("invalid offset"),
    };
    let mut total: i64 = 0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let number = digits(&rest[..number_end])?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let seconds = unit_seconds(&rest[..unit_end])?;
        rest = &rest[unit_end..];
        let step = number.checked_mul(seconds).ok_or("offset out of range")?;
        total = total.checked_add(sign * step).ok_or("offset out of range")?;
    }
    Ok(total)
}

/// graphite-web's `getUnitString`: units by prefix, in this order.
fn unit_seconds(unit: &str) -> Result<i64, &'static str> {
    let units = [
        ("s", 1),
        ("min", MINUTE),
        ("h", HOUR),
        ("d", DAY),
        ("w", 7 * DAY),
        ("mon", 30 * DAY),
        ("y", 365 * DAY),
    ];
    units
        .iter()
        .find(|(prefix, _)| unit.starts_with(prefix))
        .map(|&(_, seconds)| seconds)
        .ok_or("invalid offset unit")
}

/// Days since the epoch of a valid calendar date.
fn date(year: i64, month: i64, day: i64) -> Result<i64, &'static str> {
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("invalid date");
    }
    Ok(days_from_civil(year, month, day))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic
/// Gregorian date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's `civil_from_days`: (year, month, day) of a day count
/// since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// `strftime` in UTC for the fields graphite's answers use: `%Y`, `%m`,
/// `%d`, `%H`, `%M`, `%S` and `%a` (an English weekday); `%` before any
/// other character writes that character.
pub fn format_time(timestamp: i64, format: &str) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let days = timestamp.div_euclid(86400);
    let seconds = timestamp.rem_euclid(86400);
    let (year, month, day) = civil_from_days(days);
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('H') => out.push_str(&format!("{:02}", seconds / 3600)),
            Some('M') => out.push_str(&format!("{:02}", seconds / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", seconds % 60)),
            Some('a') => out.push_str(WEEKDAYS[days.rem_euclid(7) as usize]),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('Y') => out.push_str(&format!("{year}")),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-03-15 14:37:21 UTC, a Friday.
    const NOW: i64 = 1_710_513_441;
    /// 2024-03-15 00:00:00 UTC.
    const MIDNIGHT: i64 = 1_710_460_800;

    fn t(text: &str) -> Result<i64, &'static str> {
        parse_time(text, NOW).map_err(|e| e.reason)
    }

    #[test]
    fn utc_times() {
        let utc = |t| format_time(t, "%Y-%m-%d %H:%M:%S");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_710_513_441), "2024-03-15 14:37:21");
        assert_eq!(utc(-1), "1969-12-31 23:59:59");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(
            format_time(1_710_513_441, "%a %m/%d %Y %H:%M:%S%%%q"),
            "Fri 03/15 2024 14:37:21%q"
        );
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 3, 15) * DAY, MIDNIGHT);
        assert_eq!(days_from_civil(1, 1, 1) * DAY, EARLIEST);
        assert_eq!(days_from_civil(9999, 12, 31) * DAY + DAY - 1, LATEST);
        for days in [-719_162, -1, 0, 1, 11_016, 19_797, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(19_797), (2024, 3, 15));
    }

    #[test]
    fn now_and_relative_offsets() {
        assert_eq!(t("now"), Ok(NOW));
        assert_eq!(t(""), Ok(NOW));
        assert_eq!(t("NOW"), Ok(NOW));
        assert_eq!(t("-1h"), Ok(NOW - HOUR));
        assert_eq!(t("-7d"), Ok(NOW - 7 * DAY));
        assert_eq!(t("-30min"), Ok(NOW - 30 * MINUTE));
        assert_eq!(t("-30minutes"), Ok(NOW - 30 * MINUTE));
        assert_eq!(t("-1w"), Ok(NOW - 7 * DAY));
        assert_eq!(t("-1mon"), Ok(NOW - 30 * DAY));
        assert_eq!(t("-2months"), Ok(NOW - 60 * DAY));
        assert_eq!(t("-1y"), Ok(NOW - 365 * DAY));
        assert_eq!(t("-10s"), Ok(NOW - 10));
        assert_eq!(t("-10seconds"), Ok(NOW - 10));
        assert_eq!(t("+1d"), Ok(NOW + DAY));
        assert_eq!(t("now-1h"), Ok(NOW - HOUR));
        assert_eq!(t("now+5min"), Ok(NOW + 5 * MINUTE));
        assert_eq!(t("-1h30min"), Ok(NOW - 90 * MINUTE));
        assert_eq!(t(" -1 h "), Ok(NOW - HOUR));
        assert_eq!(t("-1_h"), Ok(NOW - HOUR));
    }

    #[test]
    fn bad_offsets() {
        assert_eq!(t("-1m"), Err("invalid offset unit"));
        assert_eq!(t("-1"), Err("invalid offset unit"));
        assert_eq!(t("-1x"), Err("invalid offset unit"));
        assert_eq!(t("-h"), Err("expected a number"));
        assert_eq!(t("-1h-2h"), Err("expected a number"));
        assert_eq!(t("-1h:"), Err("expected a number"));
        assert_eq!(t("-"), Ok(NOW));
        assert_eq!(t("-99999999999999999999s"), Err("number out of range"));
        assert_eq!(t("-9999999999999999s"), Err("time out of range"));
        assert_eq!(t("-999999999999999999y"), Err("offset out of range"));
    }

    #[test]
    fn epoch_seconds() {
        assert_eq!(t("1700000000"), Ok(1_700_000_000));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t("17000_00000"), Ok(1_700_000_000));
        assert_eq!(t("99999999999999"), Err("timestamp out of range"));
        assert_eq!(t("99999999999999999999999"), Err("timestamp out of range"));
        // Eight digits that read as a date are a date.
        assert_eq!(t("20240315"), Ok(MIDNIGHT));
        assert_eq!(t("19000101"), Ok(19_000_101));
        assert_eq!(t("20241301"), Ok(20_241_301));
    }

    #[test]
    fn absolute_dates_and_times() {
        assert_eq!(t("14:00_20240315"), Ok(MIDNIGHT + 14 * HOUR));
        assert_eq!(
            t("04:05_20240101"),
            Ok(days_from_civil(2024, 1, 1) * DAY + 4 * HOUR + 5 * MINUTE)
        );
        assert_eq!(t("20240315"), Ok(MIDNIGHT));
        assert_eq!(t("03/15/2024"), Ok(MIDNIGHT));
        assert_eq!(t("03/15/24"), Ok(MIDNIGHT));
        assert_eq!(t("03/15/99"), Ok(days_from_civil(1999, 3, 15) * DAY));
        assert_eq!(t("14:00_20240315-1d"), Ok(MIDNIGHT + 14 * HOUR - DAY));
        assert_eq!(t("20240315+12h"), Ok(MIDNIGHT + 12 * HOUR));
    }

    #[test]
    fn invalid_dates() {
        assert_eq!(t("20240230"), Err("invalid date"));
        assert_eq!(t("13/01/2024"), Err("invalid date"));
        assert_eq!(t("02/30/2024"), Err("invalid date"));
        assert_eq!(t("a/b/c"), Err("expected a number"));
        assert_eq!(t("25:00"), Err("invalid time of day"));
        assert_eq!(t("12:60"), Err("invalid time of day"));
        assert_eq!(t("x1:00"), Err("expected a number"));
        assert_eq!(t("yesterdayx"), Err("unknown day reference"));
        assert_eq!(t("feb"), Err("day of month required after month name"));
        assert_eq!(t("feb31"), Err("invalid date"));
        assert_eq!(t("garbage"), Err("unknown day reference"));
        assert_eq!(t("nów"), Err("unknown day reference"));
    }

    #[test]
    fn times_of_day_and_day_words() {
        assert_eq!(t("today"), Ok(MIDNIGHT));
        assert_eq!(t("yesterday"), Ok(MIDNIGHT - DAY));
        assert_eq!(t("tomorrow"), Ok(MIDNIGHT + DAY));
        assert_eq!(t("noon"), Ok(MIDNIGHT + 12 * HOUR));
        assert_eq!(t("noonyesterday"), Ok(MIDNIGHT - 12 * HOUR));
        assert_eq!(t("midnight"), Ok(MIDNIGHT));
        assert_eq!(t("teatime"), Ok(MIDNIGHT + 16 * HOUR));
        assert_eq!(t("3pm"), Ok(MIDNIGHT + 15 * HOUR));
        assert_eq!(t("3am"), Ok(MIDNIGHT + 3 * HOUR));
        assert_eq!(t("12am"), Ok(MIDNIGHT + 12 * HOUR));
        assert_eq!(t("12pm"), Ok(MIDNIGHT));
        assert_eq!(t("8:30pm"), Ok(MIDNIGHT + 20 * HOUR + 30 * MINUTE));
        assert_eq!(t("8:30amtomorrow"), Ok(MIDNIGHT + DAY + 8 * HOUR + 30 * MINUTE));
        assert_eq!(t("9:5"), Ok(MIDNIGHT + 9 * HOUR + 5 * MINUTE));
        assert_eq!(t("jan1"), Ok(days_from_civil(2024, 1, 1) * DAY));
        assert_eq!(t("january 15"), Ok(days_from_civil(2024, 1, 15) * DAY));
        assert_eq!(t("Dec31"), Ok(days_from_civil(2024, 12, 31) * DAY));
        // The latest such weekday, today included (NOW is a Friday).
        assert_eq!(t("friday"), Ok(MIDNIGHT));
        assert_eq!(t("thursday"), Ok(MIDNIGHT - DAY));
        assert_eq!(t("sat"), Ok(MIDNIGHT - 6 * DAY));
        assert_eq!(t("noonmonday"), Ok(MIDNIGHT - 4 * DAY + 12 * HOUR));
    }

    use proptest::prelude::*;

    proptest! {
        /// Any text is a time within Python's datetime range or an error.
        #[test]
        fn any_text_is_a_time_or_an_error(text in "[-+0-9a-z:/_ ]{0,24}", now in EARLIEST..=LATEST) {
            if let Ok(t) = parse_time(&text, now) {
                prop_assert!((EARLIEST..=LATEST).contains(&t));
            }
        }
    }
}
