//! Dates: as SIP writes them (RFC 7231 in Date headers), and as emails and the CLI show them.

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// RFC 1123 date as used in the SIP Date header (RFC 3261 §20.17), from Unix milliseconds.
pub fn httpdate(ms: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    let wd = DAYS.get((days % 7) as usize).copied().unwrap_or("Thu");
    let mon = MONTHS.get((m - 1) as usize).copied().unwrap_or("Jan");
    format!("{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Unix milliseconds now (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD HH:MM` at `offset_mins` east of UTC, from Unix milliseconds (emails, announcements).
pub fn local_minute(ms: i64, offset_mins: i32) -> String {
    let minutes = ms.div_euclid(60_000) + i64::from(offset_mins);
    let (y, m, d) = civil_from_days(minutes.div_euclid(1440));
    let of_day = minutes.rem_euclid(1440);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", of_day / 60, of_day % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn local_minutes() {
        assert_eq!(super::local_minute(1_796_640_120_000, 0), "2026-12-07 10:42");
        assert_eq!(super::local_minute(1_796_640_120_000, 600), "2026-12-07 20:42");
        assert_eq!(super::local_minute(1_796_640_120_000, -660), "2026-12-06 23:42");
    }

    #[test]
    fn httpdate_matches_known_dates() {
        assert_eq!(super::httpdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(super::httpdate(1_014_326_096_000), "Thu, 21 Feb 2002 21:14:56 GMT");
        assert_eq!(super::httpdate(1_795_651_200_000), "Thu, 26 Nov 2026 00:00:00 GMT");
    }
}
