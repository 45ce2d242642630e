//! Aliases: the only names the harness ever gives patients and their objects.
//!
//! A service id or token never becomes an alias; the driver keeps that mapping
//! to itself. Aliases print as `P1`, `A2`, `C1`, `R3` and parse back from the
//! same text, which is what scenario files contain.

use std::fmt;
use std::str::FromStr;

/// The error when a word is not the alias that was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected} alias like `{example}`, found `{found}`")]
pub struct AliasError {
    /// What kind of alias was expected ("a patient").
    pub expected: &'static str,
    /// An example of a valid alias.
    pub example: &'static str,
    /// The word that was found.
    pub found: String,
}

macro_rules! alias {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub u32);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = AliasError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let error = || AliasError {
                    expected: $what,
                    example: concat!($prefix, "1"),
                    found: s.to_string(),
                };
                let digits = s.strip_prefix($prefix).ok_or_else(error)?;
                if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(error());
                }
                let n: u32 = digits.parse().map_err(|_| error())?;
                if n == 0 {
                    return Err(error());
                }
                Ok($name(n))
            }
        }
    };
}

alias!(
    /// A simulated patient, `P1`, `P2`, …
    PatientId,
    "P",
    "a patient"
);
alias!(
    /// An appointment, `A1`, `A2`, …
    AppointmentId,
    "A",
    "an appointment"
);
alias!(
    /// A call, `C1`, `C2`, …
    CallId,
    "C",
    "a call"
);
alias!(
    /// A recording, `R1`, `R2`, …
    RecordingId,
    "R",
    "a recording"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_round_trip_and_reject_junk() {
        // Goal: every alias prints and parses back; near misses are refused.
        assert_eq!("P12".parse::<PatientId>(), Ok(PatientId(12)));
        assert_eq!(RecordingId(3).to_string(), "R3");
        for bad in ["P0", "P", "p1", "P01", "R1", "P1x", "P99999999999"] {
            assert!(bad.parse::<PatientId>().is_err(), "{bad} parsed");
        }
    }
}
