//! Unix timestamps as UTC dates and seconds as durations, for people.
//!
//! Written here rather than taken from chrono or time: the tool needs one
//! format, and the conversion is a dozen lines (Howard Hinnant's
//! `civil_from_days`, <https://howardhinnant.github.io/date_algorithms.html>).

use std::fmt::Write;

const SECONDS_PER_DAY: i64 = 86_400;

/// `ts` as `YYYY-MM-DD hh:mm:ssZ` in the proleptic Gregorian calendar.
///
/// Every i64 is accepted: a timestamp is any signed 64-bit integer on the
/// wire. Years outside 0000..=9999 carry a sign and as many digits as they
/// need (ISO 8601's expanded form, astronomical numbering: the year before
/// 1 is 0), so that no width is assumed and no value wraps.
pub fn utc(ts: i64) -> String {
    let (year, month, day) = civil_from_days(ts.div_euclid(SECONDS_PER_DAY));
    let second_of_day = ts.rem_euclid(SECONDS_PER_DAY);
    let mut out = String::with_capacity(20);
    // Writing to a String cannot fail.
    let _ = match year {
        0..=9999 => write!(out, "{year:04}"),
        ..0 => write!(out, "-{:04}", year.unsigned_abs()),
        _ => write!(out, "+{year}"),
    };
    let _ = write!(
        out,
        "-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    );
    out
}

/// (year, month 1..=12, day 1..=31) of the day `days` after 1970-01-01.
///
/// Shifts the year to start in March, so that the leap day is the last of
/// its year, then splits the day count into 400-year eras (146,097 days
/// each), years of the era, and the day of the year. No overflow for any
/// `days` an i64 of seconds gives (|days| < 1.1e14).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097); // 0..=146_096
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11, 0 is March
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // 1..=31
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are within their small ranges above, so the casts are exact.
    (year, month as u32, day as u32)
}

/// A number of seconds as `02:03:04`, or `1d 02:03:04` from a day on.
pub fn duration(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let clock = format!("{:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60);
    if days == 0 {
        clock
    } else {
        format!("{days}d {clock}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_epoch_and_the_seconds_around_it() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1), "1970-01-01 00:00:01Z");
        assert_eq!(utc(-1), "1969-12-31 23:59:59Z");
        assert_eq!(utc(86_399), "1970-01-01 23:59:59Z");
        assert_eq!(utc(86_400), "1970-01-02 00:00:00Z");
        assert_eq!(utc(-86_400), "1969-12-31 00:00:00Z");
        assert_eq!(utc(-86_401), "1969-12-30 23:59:59Z");
    }

    #[test]
    fn known_dates() {
        // The assignment's example, and `date -u -d @...` for the others.
        assert_eq!(utc(1_150_864_247), "2006-06-21 04:30:47Z");
        assert_eq!(utc(1_000_000_000), "2001-09-09 01:46:40Z");
        assert_eq!(utc(2_147_483_647), "2038-01-19 03:14:07Z");
        assert_eq!(utc(1_795_322_110), "2026-11-22 04:35:10Z");
        assert_eq!(utc(-2_208_988_800), "1900-01-01 00:00:00Z");
    }

    #[test]
    fn leap_years() {
        // 2000 is a leap year (divisible by 400), 1900 and 2100 are not
        // (by 100), 2024 is (by 4).
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc(951_868_800), "2000-03-01 00:00:00Z");
        assert_eq!(utc(-2_203_977_600), "1900-02-28 00:00:00Z");
        assert_eq!(utc(-2_203_891_200), "1900-03-01 00:00:00Z");
        assert_eq!(utc(4_107_456_000), "2100-02-28 00:00:00Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01 00:00:00Z");
        assert_eq!(utc(1_709_164_800), "2024-02-29 00:00:00Z");
        assert_eq!(utc(1_735_603_200), "2024-12-31 00:00:00Z"); // day 366
    }

    #[test]
    fn years_outside_four_digits_carry_a_sign() {
        assert_eq!(utc(-62_135_596_800), "0001-01-01 00:00:00Z");
        assert_eq!(utc(-62_167_219_200), "0000-01-01 00:00:00Z");
        assert_eq!(utc(-62_167_219_201), "-0001-12-31 23:59:59Z");
        assert_eq!(utc(253_402_300_799), "9999-12-31 23:59:59Z");
        assert_eq!(utc(253_402_300_800), "+10000-01-01 00:00:00Z");
    }

    #[test]
    fn the_extremes_of_i64_do_not_overflow() {
        // Checked with Python's datetime, shifted by whole 400-year cycles
        // (146,097 days each) into the years it handles.
        assert_eq!(utc(i64::MAX), "+292277026596-12-04 15:30:07Z");
        assert_eq!(utc(i64::MIN), "-292277022657-01-27 08:29:52Z");
    }

    /// The day after (y, m, d), by the calendar's rules read plainly.
    fn next_day((y, m, d): (i64, u32, u32)) -> (i64, u32, u32) {
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let days_in_month = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        match (d < days_in_month, m < 12) {
            (true, _) => (y, m, d + 1),
            (false, true) => (y, m + 1, 1),
            (false, false) => (y + 1, 1, 1),
        }
    }

    #[test]
    fn agrees_with_a_day_by_day_walk_over_twelve_centuries() {
        // From 1600-01-01 (days -135,140) to past 2800: three 400-year
        // eras, every leap rule, negative and positive day counts.
        let mut date = (1600, 1, 1);
        for days in -135_140..303_000 {
            assert_eq!(civil_from_days(days), date, "day {days}");
            date = next_day(date);
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0), "00:00:00");
        assert_eq!(duration(59), "00:00:59");
        assert_eq!(duration(3_600 + 2 * 60 + 3), "01:02:03");
        assert_eq!(duration(86_399), "23:59:59");
        assert_eq!(duration(86_400), "1d 00:00:00");
        assert_eq!(duration(86_400 + 2 * 3600 + 3 * 60 + 4), "1d 02:03:04");
        assert_eq!(duration(400 * 86_400), "400d 00:00:00");
    }
}
