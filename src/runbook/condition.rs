//! Thresholds: "< 0.01", ">= 99.9", "!= 0", "between 0.1 and 0.5".

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Condition {
    Lt { value: f64 },
    Le { value: f64 },
    Gt { value: f64 },
    Ge { value: f64 },
    Eq { value: f64 },
    Ne { value: f64 },
    Between { low: f64, high: f64 },
}

impl Condition {
    pub fn holds(self, x: f64) -> bool {
        match self {
            Condition::Lt { value } => x < value,
            Condition::Le { value } => x <= value,
            Condition::Gt { value } => x > value,
            Condition::Ge { value } => x >= value,
            Condition::Eq { value } => (x - value).abs() <= f64::EPSILON * value.abs().max(1.0),
            Condition::Ne { value } => (x - value).abs() > f64::EPSILON * value.abs().max(1.0),
            Condition::Between { low, high } => low <= x && x <= high,
        }
    }
}

fn parse_number(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let v: f64 = t
        .replace('_', "")
        .parse()
        .map_err(|_| format!("`{t}` is not a number"))?;
    if v.is_finite() {
        Ok(v)
    } else {
        Err(format!("`{t}` is not a finite number"))
    }
}

type Make = fn(f64) -> Condition;

pub fn parse_condition(text: &str) -> Result<Condition, String> {
    let s = text.trim();
    if let Some(rest) = s.strip_prefix("between") {
        let (low, high) = rest
            .split_once(" and ")
            .ok_or_else(|| "write a range as `between LOW and HIGH`".to_string())?;
        let (low, high) = (parse_number(low)?, parse_number(high)?);
        if low > high {
            return Err(format!("the range is empty: {low} is greater than {high}"));
        }
        return Ok(Condition::Between { low, high });
    }
    let ops: [(&str, Make); 6] = [
        ("<=", |value| Condition::Le { value }),
        (">=", |value| Condition::Ge { value }),
        ("==", |value| Condition::Eq { value }),
        ("!=", |value| Condition::Ne { value }),
        ("<", |value| Condition::Lt { value }),
        (">", |value| Condition::Gt { value }),
    ];
    for (op, make) in ops {
        if let Some(rest) = s.strip_prefix(op) {
            if rest.trim().is_empty() {
                return Err(format!("`{op}` needs a number after it"));
            }
            return Ok(make(parse_number(rest)?));
        }
    }
    Err("a condition starts with <, <=, >, >=, ==, != or `between`".into())
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Lt { value } => write!(f, "< {value}"),
            Condition::Le { value } => write!(f, "<= {value}"),
            Condition::Gt { value } => write!(f, "> {value}"),
            Condition::Ge { value } => write!(f, ">= {value}"),
            Condition::Eq { value } => write!(f, "== {value}"),
            Condition::Ne { value } => write!(f, "!= {value}"),
            Condition::Between { low, high } => write!(f, "between {low} and {high}"),
        }
    }
}

/// A measured value as people read it: `0.002`, `2147483648`, `-2.2e-19` (not
/// `-0.0000000000000000002168`), `0` (not `-0`).
pub fn number(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if !(1e-4..1e15).contains(&a) {
        return format!("{x:.1e}");
    }
    let s = format!("{x}");
    if s.len() > 10 {
        let short = format!("{x:.6}");
        let short = short.trim_end_matches('0').trim_end_matches('.');
        if short == "-0" {
            "0".into()
        } else {
            short.to_string()
        }
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(number(-0.000_000_000_000_000_000_216_8), "-2.2e-19");
        assert_eq!(number(-0.0), "0");
        assert_eq!(number(0.002), "0.002");
        assert_eq!(number(2_147_483_648.0), "2147483648");
        assert_eq!(number(0.123_456_789), "0.123457");
        assert_eq!(number(1.5e20), "1.5e20");
    }

    #[test]
    fn parses() {
        assert_eq!(
            parse_condition("< 0.01").unwrap(),
            Condition::Lt { value: 0.01 }
        );
        assert_eq!(
            parse_condition(">=99.9").unwrap(),
            Condition::Ge { value: 99.9 }
        );
        assert_eq!(
            parse_condition("between 1 and 2").unwrap(),
            Condition::Between {
                low: 1.0,
                high: 2.0
            }
        );
        for bad in [
            "",
            "< ",
            "~ 3",
            "< abc",
            "between 2 and 1",
            "< NaN",
            "< inf",
        ] {
            assert!(parse_condition(bad).is_err(), "{bad}");
        }
    }
}
