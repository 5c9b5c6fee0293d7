//! Sending windows: daily hours in Asia/Ho_Chi_Minh (UTC+7 all year, no daylight saving),
//! plus the campaign's not-before and send-by dates.

use anyhow::{Result, bail};
use chrono::{DateTime, Duration, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};

/// Asia/Ho_Chi_Minh. A fixed offset is exact: Vietnam has had no DST since 1975.
pub fn vietnam() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).expect("valid offset")
}

/// Daily hours as minutes after local midnight, `end` exclusive, `1440` = midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hours {
    pub start: i64,
    pub end: i64,
}

impl Hours {
    pub const ALL_DAY: Hours = Hours {
        start: 0,
        end: 1440,
    };

    /// Parses `HH:MM-HH:MM` (`00:00-24:00` is all day). Windows that cross midnight
    /// (`21:00-07:00`) are refused: say two campaigns, or widen the window.
    pub fn parse(s: &str) -> Result<Self> {
        let fix = "write the daily window as HH:MM-HH:MM in Vietnam time, e.g. 07:00-21:00 (00:00-24:00 = all day)";
        let Some((a, b)) = s.split_once('-') else {
            bail!("{s:?} is not a window: {fix}");
        };
        let minutes = |t: &str| -> Result<i64> {
            let t = t.trim();
            if t == "24:00" {
                return Ok(1440);
            }
            match NaiveTime::parse_from_str(t, "%H:%M") {
                Ok(time) => Ok(i64::from(time.hour_min())),
                Err(_) => bail!("{t:?} is not a time of day: {fix}"),
            }
        };
        let (start, end) = (minutes(a)?, minutes(b)?);
        if start >= end {
            bail!("the window {s:?} is empty or crosses midnight: {fix}");
        }
        Ok(Self { start, end })
    }

    pub fn is_all_day(&self) -> bool {
        *self == Self::ALL_DAY
    }

    /// Whether `at` falls inside the window.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let m = minute_of_day(at);
        m >= self.start && m < self.end
    }

    /// The next moment at or after `at` when the window is open.
    pub fn next_open(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        if self.contains(at) {
            return at;
        }
        let local = at.with_timezone(&vietnam());
        let day = if minute_of_day(at) < self.start {
            local.date_naive()
        } else {
            local.date_naive() + Duration::days(1)
        };
        local_minute(day, self.start)
    }
}

impl std::fmt::Display for Hours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

trait HourMin {
    fn hour_min(&self) -> u32;
}
impl HourMin for NaiveTime {
    fn hour_min(&self) -> u32 {
        use chrono::Timelike;
        self.hour() * 60 + self.minute()
    }
}

fn minute_of_day(at: DateTime<Utc>) -> i64 {
    use chrono::Timelike;
    let local = at.with_timezone(&vietnam());
    i64::from(local.hour() * 60 + local.minute())
}

fn local_minute(day: NaiveDate, minute: i64) -> DateTime<Utc> {
    let midnight = vietnam()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("fixed offset is unambiguous");
    (midnight + Duration::minutes(minute)).with_timezone(&Utc)
}

/// Parses a campaign date: `YYYY-MM-DD` (local midnight; as `--until`, the end of that day)
/// or an RFC 3339 timestamp.
pub fn parse_date(s: &str, end_of_day: bool) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(day) => Ok(local_minute(day, if end_of_day { 1440 } else { 0 })),
        Err(_) => {
            bail!("{s:?} is not a date: write YYYY-MM-DD (Vietnam time) or an RFC 3339 timestamp")
        }
    }
}

/// Formats a UTC instant in Vietnam time for people.
pub fn local(at: DateTime<Utc>) -> String {
    at.with_timezone(&vietnam())
        .format("%Y-%m-%d %H:%M %:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn parses_and_prints_windows() {
        assert_eq!(
            Hours::parse("07:00-21:00").unwrap(),
            Hours {
                start: 420,
                end: 1260
            }
        );
        assert!(Hours::parse("00:00-24:00").unwrap().is_all_day());
        assert_eq!(
            Hours::parse("07:30-21:15").unwrap().to_string(),
            "07:30-21:15"
        );
        assert!(Hours::parse("21:00-07:00").is_err());
        assert!(Hours::parse("7am-9pm").is_err());
        assert!(Hours::parse("25:00-26:00").is_err());
    }

    #[test]
    fn window_is_in_vietnam_time() {
        let h = Hours::parse("07:00-21:00").unwrap();
        // 00:30 UTC = 07:30 in Vietnam: open.
        assert!(h.contains(utc("2022-06-26T00:30:00Z")));
        // 23:30 UTC = 06:30 next day in Vietnam: closed, opens at 00:00 UTC.
        assert!(!h.contains(utc("2022-06-25T23:30:00Z")));
        assert_eq!(
            h.next_open(utc("2022-06-25T23:30:00Z")),
            utc("2022-06-26T00:00:00Z")
        );
        // 14:30 UTC = 21:30 in Vietnam: closed until 07:00 the next day.
        assert_eq!(
            h.next_open(utc("2022-06-26T14:30:00Z")),
            utc("2022-06-27T00:00:00Z")
        );
    }

    #[test]
    fn dates_are_local() {
        assert_eq!(
            parse_date("2022-06-30", true).unwrap(),
            utc("2022-06-30T17:00:00Z")
        );
        assert_eq!(
            parse_date("2022-06-01", false).unwrap(),
            utc("2022-05-31T17:00:00Z")
        );
        assert!(parse_date("30/06/2022", false).is_err());
    }
}
