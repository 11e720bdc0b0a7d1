//! Change windows (`[runbook.window]`): the days and hours, in a time zone, when a runbook may
//! run. Parses a window from its rendered text and answers two questions for a given moment:
//! is it open, and when does it next open. The clock is the caller's (see `app`), so tests can
//! set "now"; nothing here reads the time itself. Time zones come from the system's tzdb, else
//! the copy built into the binary.

use std::fmt;

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime as Zoned};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const WEEKDAYS: [Weekday; 7] = [
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
    Weekday::Saturday,
    Weekday::Sunday,
];

/// A weekly change window.
#[derive(Debug, Clone)]
pub struct Window {
    /// Monday first.
    pub days: [bool; 7],
    /// Minutes after midnight.
    pub start: u16,
    /// Minutes after midnight, up to 24:00; at or before `start`, the window ends the next day.
    pub end: u16,
    pub zone: TimeZone,
    pub zone_name: String,
}

/// Parses the days a window opens: names (`mon`, `Tuesday`), ranges (`mon-thu`, `fri-mon`),
/// separated by commas or spaces, or `daily` / `*` for every day.
pub fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    let text = text.trim();
    if text.is_empty() {
        return Err("no days given: write e.g. \"mon-thu\" or \"daily\"".into());
    }
    if matches!(
        text.to_ascii_lowercase().as_str(),
        "daily" | "*" | "every day"
    ) {
        return Ok([true; 7]);
    }
    for token in text.split([',', ' ']).filter(|t| !t.is_empty()) {
        let (a, b) = token.split_once('-').unwrap_or((token, token));
        let (a, b) = (day(a)?, day(b)?);
        let mut d = a;
        loop {
            days[d] = true;
            if d == b {
                break;
            }
            d = (d + 1) % 7;
        }
    }
    Ok(days)
}

fn day(name: &str) -> Result<usize, String> {
    let lower = name.trim().to_ascii_lowercase();
    DAYS.iter()
        .position(|d| {
            lower.len() >= 3 && (lower.starts_with(d) && weekday_name(d).starts_with(&lower))
        })
        .ok_or_else(|| format!("`{name}` is not a day: use mon, tue, wed, thu, fri, sat, sun"))
}

fn weekday_name(short: &str) -> &'static str {
    match short {
        "mon" => "monday",
        "tue" => "tuesday",
        "wed" => "wednesday",
        "thu" => "thursday",
        "fri" => "friday",
        "sat" => "saturday",
        _ => "sunday",
    }
}

/// Parses `HH:MM` (24-hour; `24:00` only as an end) into minutes after midnight.
pub fn parse_time(text: &str, end: bool) -> Result<u16, String> {
    let bad = || format!("`{text}` is not a time: write \"HH:MM\", 24-hour, e.g. \"09:00\"");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if m > 59 || h > 24 || (h == 24 && (m > 0 || !end)) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Finds a time zone by its IANA name (`Europe/Berlin`, `UTC`).
pub fn parse_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name.trim()).map_err(|_| {
        format!(
            "`{name}` is not a time zone: use an IANA name such as \"Europe/Berlin\" or \"UTC\""
        )
    })
}

impl Window {
    pub fn new(days: &str, start: &str, end: &str, zone: &str) -> Result<Window, String> {
        Ok(Window {
            days: parse_days(days)?,
            start: parse_time(start, false)?,
            end: parse_time(end, true)?,
            zone: parse_zone(zone)?,
            zone_name: zone.trim().to_string(),
        })
    }

    /// Whether the window is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let z = now.to_zoned_datetime(self.zone.clone());
        let d = weekday_index(z.weekday());
        let t = u16::from(z.hour().unsigned_abs()) * 60 + u16::from(z.minute().unsigned_abs());
        if self.start < self.end {
            self.days[d] && self.start <= t && t < self.end
        } else {
            // Across midnight: from `start` on a window day to `end` the day after.
            (self.days[d] && t >= self.start) || (self.days[(d + 6) % 7] && t < self.end)
        }
    }

    /// When the window next opens after `now` (within the next eight days).
    pub fn next_opening(&self, now: Timestamp) -> Option<Zoned> {
        let today: Date = now.to_zoned_datetime(self.zone.clone()).date();
        (0..=8).find_map(|k| {
            let date = today.checked_add(jiff::Span::new().days(k)).ok()?;
            if !self.days[weekday_index(date.weekday())] {
                return None;
            }
            let at = Time::new(
                i8::try_from(self.start / 60).ok()?,
                i8::try_from(self.start % 60).ok()?,
                0,
                0,
            )
            .ok()?;
            let opening = date
                .to_datetime(at)
                .to_zoned_datetime(self.zone.clone())
                .ok()?;
            (opening.timestamp() > now).then_some(opening)
        })
    }

    /// The moment `now` in the window's time zone, as a person reads it.
    pub fn local(&self, now: Timestamp) -> String {
        now.to_zoned_datetime(self.zone.clone())
            .strftime("%a %Y-%m-%d %H:%M")
            .to_string()
    }

    /// Why a run may not start at `now`, with the next opening; `None` when the window is open.
    pub fn refusal(&self, now: Timestamp) -> Option<String> {
        if self.is_open(now) {
            return None;
        }
        let next = match self.next_opening(now) {
            Some(at) => {
                let wait = at.timestamp().as_second() - now.as_second();
                format!(
                    "the window next opens {} {} (in {})",
                    at.strftime("%a %Y-%m-%d %H:%M"),
                    self.zone_name,
                    crate::runbook::duration::Duration(std::time::Duration::from_secs(
                        u64::try_from(wait - wait % 60).unwrap_or(0)
                    ))
                )
            }
            None => "the window never opens".into(),
        };
        Some(format!(
            "it is {} in {}, outside the change window ({self}); {next}",
            self.local(now),
            self.zone_name
        ))
    }
}

fn weekday_index(w: Weekday) -> usize {
    WEEKDAYS.iter().position(|x| *x == w).unwrap_or(0)
}

fn hhmm(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = DAYS
            .iter()
            .zip(self.days)
            .filter_map(|(d, on)| on.then_some(*d))
            .collect();
        let days = if days.len() == 7 {
            "daily".to_string()
        } else {
            days.join(",")
        };
        write!(
            f,
            "{days} {}-{} {}",
            hhmm(self.start),
            hhmm(self.end),
            self.zone_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().expect("a timestamp")
    }

    #[test]
    fn days_times_and_zones() {
        assert_eq!(
            parse_days("mon-thu").unwrap(),
            [true, true, true, true, false, false, false]
        );
        assert_eq!(
            parse_days("fri-mon").unwrap(),
            [true, false, false, false, true, true, true]
        );
        assert!(parse_days("Tuesday, sat").unwrap()[1]);
        assert!(parse_days("someday").is_err());
        assert_eq!(parse_time("09:30", false).unwrap(), 570);
        assert_eq!(parse_time("24:00", true).unwrap(), 1440);
        assert!(parse_time("24:00", false).is_err());
        assert!(parse_time("9h", false).is_err());
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn open_and_next_opening() {
        let w = Window::new("mon-thu", "09:00", "16:00", "Europe/Berlin").unwrap();
        // Friday 2026-12-04 17:02 in Berlin (UTC+1).
        let friday = at("2026-12-04T16:02:00Z");
        assert!(!w.is_open(friday));
        let next = w.next_opening(friday).unwrap();
        assert_eq!(
            next.strftime("%a %Y-%m-%d %H:%M").to_string(),
            "Mon 2026-12-07 09:00"
        );
        assert!(w.is_open(at("2026-12-07T08:00:00Z")));
        assert!(!w.is_open(at("2026-12-07T15:00:00Z")));
        let night = Window::new("fri", "22:00", "04:00", "UTC").unwrap();
        assert!(
            night.is_open(at("2026-12-05T03:00:00Z")),
            "Saturday 03:00 belongs to Friday"
        );
        assert!(!night.is_open(at("2026-12-06T03:00:00Z")));
    }
}
