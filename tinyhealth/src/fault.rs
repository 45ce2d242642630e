//! The plantable faults: each imitates a real class of privacy bug.
//!
//! A [`Fault`] is off unless it is in the service's [`FaultSet`]. Every faulty
//! branch is guarded by `faults.contains(..)`, so with an empty set tinyhealth
//! is correct: an account never lists, fetches or downloads another account's
//! clips.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One plantable fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// Clip-list pages fetched with a cursor drop the account filter.
    CursorUnscoped,
    /// Download links are unsigned, numbered by the clip's position within
    /// its account, and resolved store-wide to the first clip with that number.
    DownloadLinkUnsigned,
    /// Read endpoints under `/api/accounts/{account}` trust the account id in
    /// the path instead of the session's.
    AccountPathTrusted,
    /// The per-visit clip list does not check who owns the visit.
    VisitClipsUnchecked,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 4] = [
        Fault::CursorUnscoped,
        Fault::DownloadLinkUnsigned,
        Fault::AccountPathTrusted,
        Fault::VisitClipsUnchecked,
    ];

    /// The kebab-case name used on the command line and in `TINYHEALTH_FAULTS`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::CursorUnscoped => "cursor-unscoped",
            Fault::DownloadLinkUnsigned => "download-link-unsigned",
            Fault::AccountPathTrusted => "account-path-trusted",
            Fault::VisitClipsUnchecked => "visit-clips-unchecked",
        }
    }

    /// One line saying what goes wrong when the fault is planted.
    pub fn summary(self) -> &'static str {
        match self {
            Fault::CursorUnscoped => {
                "clip-list pages after the first (fetched with a cursor) list every account's clips"
            }
            Fault::DownloadLinkUnsigned => {
                "download links are /files/n/{number} (the clip's number within its account, unsigned) and serve the first clip in the store with that number"
            }
            Fault::AccountPathTrusted => {
                "GET /api/accounts/{account} and its clip list trust the path's account id, not the session's"
            }
            Fault::VisitClipsUnchecked => {
                "GET /api/visits/{visit}/clips lists any visit's clips without checking its owner"
            }
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that tinyhealth does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault `{name}`; run `tinyhealth faults` for the list: {known}", known = known_names())]
pub struct UnknownFault {
    /// The name as given.
    pub name: String,
}

fn known_names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == name)
            .ok_or_else(|| UnknownFault {
                name: name.to_owned(),
            })
    }
}

/// The faults planted in one running service; empty means correct.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultSet(BTreeSet<Fault>);

impl FaultSet {
    /// No fault: the service is correct.
    pub fn none() -> FaultSet {
        FaultSet::default()
    }

    /// Whether `fault` is planted.
    pub fn contains(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Whether no fault is planted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses a comma-separated list (`cursor-unscoped,download-link-unsigned`);
    /// blanks around names and empty entries are ignored.
    pub fn parse_list(list: &str) -> Result<FaultSet, UnknownFault> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::parse)
            .collect()
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        FaultSet(iter.into_iter().collect())
    }
}

impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.0.iter().map(|fault| fault.name()).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(fault));
        }
        let set = FaultSet::parse_list(" cursor-unscoped, ,download-link-unsigned").unwrap();
        assert!(set.contains(Fault::CursorUnscoped) && set.contains(Fault::DownloadLinkUnsigned));
        assert_eq!(set.to_string(), "cursor-unscoped,download-link-unsigned");
        let err = FaultSet::parse_list("cursor-unscoped,nope").unwrap_err();
        assert_eq!(err.name, "nope");
        assert!(err.to_string().contains("cursor-unscoped"));
    }
}
