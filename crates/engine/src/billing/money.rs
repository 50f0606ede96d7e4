//! Money in integer minor units with its currency. Never a float: prices, balances and bills
//! are exact, and amounts are parsed from and printed as decimal text.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    #[serde(rename = "CNY")]
    Cny,
    #[serde(rename = "USD")]
    Usd,
}

impl Currency {
    pub fn code(self) -> &'static str {
        match self {
            Currency::Cny => "CNY",
            Currency::Usd => "USD",
        }
    }

    pub fn parse(code: &str) -> Option<Currency> {
        [Currency::Cny, Currency::Usd].into_iter().find(|c| c.code() == code)
    }
}

/// Both currencies have 100 minor units (fen, cents).
pub const MINOR_PER_MAJOR: i64 = 100;

/// An amount in minor units (1 CNY = 100 fen) of one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Parses `12`, `12.5` or `12.50` (at most two decimals; no sign, no exponent).
    pub fn parse(text: &str, currency: Currency) -> Option<Money> {
        let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(fraction)) || fraction.len() > 2 {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = if fraction.is_empty() { 0 } else { format!("{fraction:0<2}").parse().ok()? };
        Some(Money::new(whole.checked_mul(MINOR_PER_MAJOR)?.checked_add(fraction)?, currency))
    }

    /// The amount as decimal text without the currency: `-12.50`.
    pub fn decimal(&self) -> String {
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        format!("{sign}{}.{:02}", abs / MINOR_PER_MAJOR as u64, abs % MINOR_PER_MAJOR as u64)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_text_exactly() {
        let cny = |t| Money::parse(t, Currency::Cny).map(|m| m.minor);
        assert_eq!(cny("4000"), Some(400_000));
        assert_eq!(cny("0.1"), Some(10));
        assert_eq!(cny("0.10"), Some(10));
        assert_eq!(cny("16.5"), Some(1650));
        for bad in ["", ".5", "1.", "1.234", "-1", "1e3", "1,5", "abc", "99999999999999999999"] {
            assert_eq!(cny(bad), None, "{bad}");
        }
    }

    #[test]
    fn prints_two_decimals_with_sign() {
        assert_eq!(Money::new(-1250, Currency::Cny).to_string(), "-12.50 CNY");
        assert_eq!(Money::new(5, Currency::Usd).to_string(), "0.05 USD");
        assert_eq!(Currency::parse("USD"), Some(Currency::Usd));
    }
}
