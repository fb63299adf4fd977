//! `registeredAt` arguments: the four date forms ECS documents, turned into epoch seconds once,
//! at parse time, so evaluation is an integer comparison.
//!
//! Forms: `2018-06-18T22:28:28+00:00`, `2018-06-18T22:28:28Z`, `2018-06-18T22:28:28` (UTC) and
//! `2018-06-18` (midnight UTC). Fractional seconds (`22:28:28.123Z`) are accepted and dropped, and
//! offsets may also be written `+0000`, since real clients copy timestamps from other tools.

/// Parses one of the accepted forms into seconds since the Unix epoch (UTC).
pub(crate) fn parse_epoch_seconds(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut seconds = days_from_civil(year, month, day) * 86_400;
    let rest = &b[10..];
    if rest.is_empty() {
        return Some(seconds);
    }
    if rest.len() < 9
        || !matches!(rest[0], b'T' | b't' | b' ')
        || rest[3] != b':'
        || rest[6] != b':'
    {
        return None;
    }
    let hour = digits(&rest[1..3])?;
    let minute = digits(&rest[4..6])?;
    let second = digits(&rest[7..9])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    seconds += hour * 3600 + minute * 60 + second;
    let mut zone = &rest[9..];
    if let Some(fraction) = zone.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        zone = &fraction[n..];
    }
    match zone {
        [] | [b'Z' | b'z'] => Some(seconds),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let offset = digits(&[*h1, *h2])? * 3600 + digits(&[*m1, *m2])? * 60;
            if offset > 18 * 3600 {
                return None;
            }
            // A local time east of UTC is earlier in UTC.
            Some(if *sign == b'+' {
                seconds - offset
            } else {
                seconds + offset
            })
        }
        _ => None,
    }
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_epoch_seconds as p;

    #[test]
    fn documented_forms() {
        assert_eq!(p("2018-06-18T22:28:28+00:00"), Some(1_529_360_908));
        assert_eq!(p("2018-06-18T22:28:28Z"), Some(1_529_360_908));
        assert_eq!(p("2018-06-18T22:28:28"), Some(1_529_360_908));
        assert_eq!(p("2018-06-18"), Some(1_529_280_000));
        assert_eq!(p("1970-01-01"), Some(0));
    }

    #[test]
    fn offsets_and_fractions() {
        assert_eq!(p("2018-06-18T23:28:28+01:00"), Some(1_529_360_908));
        assert_eq!(p("2018-06-18T21:28:28-0100"), Some(1_529_360_908));
        assert_eq!(p("2018-06-18T22:28:28.999Z"), Some(1_529_360_908));
        assert_eq!(p("2000-02-29"), Some(951_782_400));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in [
            "2018-6-18",
            "2018-13-01",
            "2018-02-30",
            "2019-02-29",
            "2018-06-18T25:00:00",
            "2018-06-18T22:28",
            "2018-06-18T22:28:28+0",
            "2018-06-18X",
            "yesterday",
            "2018-06-18T22:28:28.Z",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }
}
