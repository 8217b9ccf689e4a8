//! The duration strings of the policy files: a positive whole number and one unit, `s`, `m`,
//! `h` or `d` (`"30s"`, `"15m"`, `"12h"`, `"2d"`). Nothing else parses: no spaces, no
//! fractions, no compound forms, so a value reads the same to a human and to the loader.

/// Seconds in `s`, `m`, `h`, `d`.
const UNITS: [(char, i64); 4] = [('d', 86_400), ('h', 3_600), ('m', 60), ('s', 1)];

/// Parses `"2d"` → `172800` seconds.
///
/// # Errors
/// A message saying what is wrong with the string.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let expected = "expected a whole number and a unit s, m, h or d, like \"15m\" or \"2d\"";
    let Some(unit) = s.chars().last() else {
        return Err(format!("empty duration; {expected}"));
    };
    let Some(&(_, per)) = UNITS.iter().find(|(u, _)| *u == unit) else {
        return Err(format!("duration \"{s}\" has no valid unit; {expected}"));
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "duration \"{s}\" is not a whole number; {expected}"
        ));
    }
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("duration \"{s}\" is too large"))?;
    if n == 0 {
        return Err(format!("duration \"{s}\" must be positive"));
    }
    n.checked_mul(per)
        .ok_or_else(|| format!("duration \"{s}\" is too large"))
}

/// Renders seconds in the largest unit that divides them: `172800` → `"2d"`.
pub fn format_duration(secs: i64) -> String {
    for (unit, per) in UNITS {
        if secs != 0 && secs % per == 0 {
            return format!("{}{unit}", secs / per);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse_duration("30s"), Ok(30));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("12h"), Ok(43_200));
        assert_eq!(parse_duration("2d"), Ok(172_800));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2",
            "d",
            "2w",
            "-2d",
            "2.5d",
            " 2d",
            "0m",
            "2 d",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn formats_in_largest_unit() {
        assert_eq!(format_duration(172_800), "2d");
        assert_eq!(format_duration(900), "15m");
        assert_eq!(format_duration(90), "90s");
        assert_eq!(format_duration(3_600 * 36), "36h");
    }
}
