//! keepalived's number readers (lib/parser.c of 2.2.7: `read_int_func`,
//! `read_unsigned_func`, `read_decimal_unsigned_long_func`) with the messages
//! `keepalived -t` prints for a bad value, so an import warns in keepalived's words.
//! Under `-t` a value with any error is refused, as here.

use super::error::Warning;

/// Reads the values of one configuration line; problems become warnings on that line.
pub(super) struct LineReader<'w> {
    pub line: usize,
    pub warnings: &'w mut Vec<Warning>,
}

/// Decimal places keepalived keeps for seconds (`TIMER_HZ_DIGITS`).
const DECIMALS: u32 = 6;

impl LineReader<'_> {
    pub fn warn(&mut self, text: impl Into<String>) {
        self.warnings.push(Warning::new(self.line, text));
    }

    /// `read_unsigned_strvec(.., min, max, ..)`.
    pub fn unsigned(&mut self, text: &str, min: u32, max: u32) -> Option<u32> {
        let digits = text.strip_prefix('+').unwrap_or(text);
        if text.starts_with('-') {
            self.warn(format!("negative number '{text}'"));
        } else if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            self.warn(format!("invalid number '{text}'"));
        } else {
            match digits.parse::<u32>() {
                Err(_) => self.warn(format!("number '{text}' outside unsigned integer range")),
                Ok(v) if v < min || v > max => self.warn(format!("number '{text}' outside range [{min}, {max}]")),
                Ok(v) => return Some(v),
            }
        }
        None
    }

    /// `read_int_strvec(.., min, max, ..)`.
    pub fn int(&mut self, text: &str, min: i32, max: i32) -> Option<i32> {
        let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            self.warn(format!("invalid number '{text}'"));
            return None;
        }
        match text.parse::<i32>() {
            Err(_) => self.warn(format!("number '{text}' outside integer range")),
            Ok(v) if v < min || v > max => self.warn(format!("number '{text}' outside range [{min}, {max}]")),
            Ok(v) => return Some(v),
        }
        None
    }

    /// `read_decimal_unsigned_strvec(.., min, max, TIMER_HZ_DIGITS, ..)`: seconds with up
    /// to six decimals, in microseconds; more decimals are rounded (with a warning).
    pub fn micros(&mut self, text: &str, min: u64, max: u64) -> Option<u64> {
        if text.starts_with('-') {
            self.warn(format!("negative number '{text}'"));
            return None;
        }
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let mut fraction = fraction.to_string();
        let mut round_up = false;
        if fraction.len() > DECIMALS as usize {
            self.warn(format!("number '{text}' has too many decimal places"));
            round_up = fraction.as_bytes()[DECIMALS as usize] >= b'5';
            fraction.truncate(DECIMALS as usize);
        }
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(&fraction) {
            self.warn(format!("invalid number '{text}'"));
            return None;
        }
        let scale = 10u64.pow(DECIMALS);
        let padded = format!("{fraction:0<width$}", width = DECIMALS as usize);
        let value = whole
            .parse::<u64>()
            .ok()
            .and_then(|w| w.checked_mul(scale))
            .and_then(|w| w.checked_add(padded.parse::<u64>().unwrap_or(0) + u64::from(round_up)));
        match value {
            None => self.warn(format!("number '{text}' outside unsigned decimal range")),
            Some(v) if v < min || v > max => self.warn(format!(
                "number '{text}' outside range [{}.{:06}, {}.{:06}]",
                min / scale,
                min % scale,
                max / scale,
                max % scale
            )),
            Some(v) => return Some(v),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read<T>(f: impl FnOnce(&mut LineReader) -> Option<T>) -> (Option<T>, Vec<String>) {
        let mut warnings = Vec::new();
        let value = f(&mut LineReader {
            line: 7,
            warnings: &mut warnings,
        });
        (value, warnings.into_iter().map(|w| w.to_string()).collect())
    }

    #[test]
    fn unsigned_says_what_keepalived_says() {
        assert_eq!(read(|r| r.unsigned("42", 1, 255)), (Some(42), vec![]));
        assert_eq!(
            read(|r| r.unsigned("300", 1, 255)).1,
            ["line 7: number '300' outside range [1, 255]"]
        );
        assert_eq!(read(|r| r.unsigned("-1", 0, 9)).1, ["line 7: negative number '-1'"]);
        assert_eq!(read(|r| r.unsigned("1.5", 0, 9)).1, ["line 7: invalid number '1.5'"]);
        assert_eq!(
            read(|r| r.unsigned("99999999999", 0, 9)).1,
            ["line 7: number '99999999999' outside unsigned integer range"]
        );
    }

    #[test]
    fn int_accepts_signs_and_reports_ranges() {
        assert_eq!(read(|r| r.int("-20", -253, 253)).0, Some(-20));
        assert_eq!(
            read(|r| r.int("999", -254, 254)).1,
            ["line 7: number '999' outside range [-254, 254]"]
        );
        assert_eq!(read(|r| r.int("x", 2, 3)).1, ["line 7: invalid number 'x'"]);
    }

    #[test]
    fn decimals_become_microseconds_and_round_past_six_places() {
        assert_eq!(read(|r| r.micros("0.5", 0, 10_000_000)).0, Some(500_000));
        assert_eq!(read(|r| r.micros("3", 0, 10_000_000)).0, Some(3_000_000));
        let (value, said) = read(|r| r.micros("1.0000005", 0, 10_000_000));
        assert_eq!(value, Some(1_000_001));
        assert_eq!(said, ["line 7: number '1.0000005' has too many decimal places"]);
        assert_eq!(
            read(|r| r.micros("300", 10_000, 255_000_000)).1,
            ["line 7: number '300' outside range [0.010000, 255.000000]"]
        );
        assert_eq!(
            read(|r| r.micros("1e3", 0, u64::MAX)).1,
            ["line 7: invalid number '1e3'"]
        );
    }
}
