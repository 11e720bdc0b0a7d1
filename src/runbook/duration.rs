//! Durations as runbook authors write them: "500ms", "30s", "10m", "2h", "1d", "1h30m".

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// The longest duration accepted anywhere: a year. Longer values are almost certainly typos.
const MAX_MILLIS: u128 = 366 * 24 * 3600 * 1000;

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("it is empty".into());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("expected a number at `{rest}`"));
        }
        let number: u128 = rest[..digits]
            .parse()
            .map_err(|_| "the number is too large".to_string())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let millis = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("`{}` has no unit (ms, s, m, h or d)", &s)),
            fraction if fraction.starts_with(['.', ',']) => {
                return Err("use whole numbers: write \"1h30m\", not \"1.5h\"".into());
            }
            other => return Err(format!("unknown unit `{other}` (use ms, s, m, h or d)")),
        };
        total = total.saturating_add(number.saturating_mul(millis));
        rest = &rest[unit_len..];
    }
    if total > MAX_MILLIS {
        return Err("it is longer than a year".into());
    }
    Ok(Duration(std::time::Duration::from_millis(
        u64::try_from(total).unwrap_or(u64::MAX),
    )))
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [
            ("d", 86_400_000),
            ("h", 3_600_000),
            ("m", 60_000),
            ("s", 1000),
            ("ms", 1),
        ] {
            if ms >= size {
                write!(f, "{}{unit}", ms / size)?;
                ms %= size;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (text, shown) in [
            ("500ms", "500ms"),
            ("30s", "30s"),
            ("90s", "1m30s"),
            ("1h30m", "1h30m"),
            ("1d", "1d"),
        ] {
            assert_eq!(parse_duration(text).unwrap().to_string(), shown);
        }
        for bad in ["", "10", "5x", "m", "-1s", "400d", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
