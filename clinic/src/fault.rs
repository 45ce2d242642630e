//! The plantable faults: each imitates a real class of privacy bug.
//!
//! A [`Fault`] is off unless it is in the clinic's [`FaultSet`]. Every faulty
//! branch in the services is guarded by `faults.contains(..)`, so with an empty
//! set the clinic is correct: a patient never sees another patient's recordings.
//!
//! Faults are named in kebab case (`upgrade-latest-call`); the name is the
//! `Display`, the `FromStr` input and the serde form.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One plantable fault. See `clinic-spec.md` for the exact semantics of each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// On upgrade, the video recording is attached to the most recently started
    /// active call of any patient.
    UpgradeLatestCall,
    /// An upgrade also creates a stray empty recording owned by whoever last
    /// viewed their history.
    UpgradePhantom,
    /// History pages after the first drop the owner filter.
    HistoryPage2Unfiltered,
    /// History responses are cached under a key without the patient.
    HistoryCacheShared,
    /// Playback by id skips the ownership check.
    RecordingIdor,
    /// A cancelled appointment's consultation is reused by the next booking,
    /// recordings and all.
    RebookReusesConsultation,
    /// Erasure hides a recording from history but keeps its media playable.
    ErasureLeavesMedia,
    /// The first media chunk after an upgrade goes to the previously created
    /// recording.
    MediaMisroute,
    /// The upgrade handler keeps the call it works on in a process-wide slot
    /// across an await, so concurrent upgrades attach one patient's video
    /// recording to another patient's call. Only truly concurrent upgrades show it.
    UpgradeSharedSlot,
    /// FHIR only: a `Media` search honours any `subject`/`patient` parameter
    /// without checking that it names the caller.
    FhirSubjectUnchecked,
    /// FHIR only: a search's `next` link carries the paging state but not the
    /// owner, and a continuation without an owner lists everyone's `Media`.
    FhirNextLinkUnscoped,
    /// The call lookup every call action shares (upgrade, media, end, the
    /// FHIR Encounter) matches the call by id alone: any patient's session
    /// acts on anyone's call.
    CallOwnerUnchecked,
    /// The bearer token is looked up with SQL `LIKE` (meant to forgive
    /// letter case), so a token of `%` or `_` matches a patient's token.
    TokenLikeMatch,
    /// Playback of another patient's recording answers 403 where an unknown
    /// id gets 404: the refusal tells a prober the recording exists.
    RefusalRevealsExistence,
    /// Starting a call checks for an active call in the appointment's slot,
    /// not of the appointment: another patient's call at the same hour
    /// blocks it.
    ActiveCallBySlot,
    /// Erasing a recording erases every recording of its call: the audio of
    /// an upgraded call vanishes with its video.
    EraseWholeCall,
    /// FHIR only: `DELETE Media` hides the `Media` and keeps its bytes, and
    /// the `Binary` read checks the owner but not the erasure: an old
    /// `content.url` still downloads an erased recording.
    BinaryOutlivesMedia,
    /// A patient's recording listing counts every patient's recordings in
    /// its `total` (the items stay the patient's own).
    TotalCountsEveryone,
    /// Erasing a recording erases every finished recording made in its
    /// appointment's slot, whoever's: the clean-up looks recordings up by
    /// slot, not by id. Another patient's recording vanishes from their own
    /// history, and nothing they were shown leaks.
    EraseBySlot,
    /// Erasure hides the row and refuses playback, but never deletes the
    /// media object: the bytes stay in the media store.
    EraseKeepsStoredMedia,
}

impl Fault {
    /// Every fault, in declaration order.
    pub const ALL: [Fault; 20] = [
        Fault::UpgradeLatestCall,
        Fault::UpgradePhantom,
        Fault::HistoryPage2Unfiltered,
        Fault::HistoryCacheShared,
        Fault::RecordingIdor,
        Fault::RebookReusesConsultation,
        Fault::ErasureLeavesMedia,
        Fault::MediaMisroute,
        Fault::UpgradeSharedSlot,
        Fault::FhirSubjectUnchecked,
        Fault::FhirNextLinkUnscoped,
        Fault::CallOwnerUnchecked,
        Fault::TokenLikeMatch,
        Fault::RefusalRevealsExistence,
        Fault::ActiveCallBySlot,
        Fault::EraseWholeCall,
        Fault::BinaryOutlivesMedia,
        Fault::TotalCountsEveryone,
        Fault::EraseBySlot,
        Fault::EraseKeepsStoredMedia,
    ];

    /// The kebab-case name used on the command line and in `CLINIC_FAULTS`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::UpgradeLatestCall => "upgrade-latest-call",
            Fault::UpgradePhantom => "upgrade-phantom",
            Fault::HistoryPage2Unfiltered => "history-page2-unfiltered",
            Fault::HistoryCacheShared => "history-cache-shared",
            Fault::RecordingIdor => "recording-idor",
            Fault::RebookReusesConsultation => "rebook-reuses-consultation",
            Fault::ErasureLeavesMedia => "erasure-leaves-media",
            Fault::MediaMisroute => "media-misroute",
            Fault::UpgradeSharedSlot => "upgrade-shared-slot",
            Fault::FhirSubjectUnchecked => "fhir-subject-unchecked",
            Fault::FhirNextLinkUnscoped => "fhir-next-link-unscoped",
            Fault::CallOwnerUnchecked => "call-owner-unchecked",
            Fault::TokenLikeMatch => "token-like-match",
            Fault::RefusalRevealsExistence => "refusal-reveals-existence",
            Fault::ActiveCallBySlot => "active-call-by-slot",
            Fault::EraseWholeCall => "erase-whole-call",
            Fault::BinaryOutlivesMedia => "binary-outlives-media",
            Fault::TotalCountsEveryone => "total-counts-everyone",
            Fault::EraseBySlot => "erase-by-slot",
            Fault::EraseKeepsStoredMedia => "erase-keeps-stored-media",
        }
    }

    /// One line saying what goes wrong when the fault is planted.
    pub fn summary(self) -> &'static str {
        match self {
            Fault::UpgradeLatestCall => {
                "on upgrade, the video recording is attached to the most recently started active call of any patient"
            }
            Fault::UpgradePhantom => {
                "an upgrade also creates a stray empty recording owned by whoever last viewed history"
            }
            Fault::HistoryPage2Unfiltered => "history pages after the first drop the owner filter",
            Fault::HistoryCacheShared => {
                "the history view is cached under a key without the patient"
            }
            Fault::RecordingIdor => "playback by id skips the ownership check",
            Fault::RebookReusesConsultation => {
                "a cancelled appointment's consultation is reused by the next booking, with its recordings still linked"
            }
            Fault::ErasureLeavesMedia => {
                "erasure hides the recording from the history view, but playback by id still returns its media"
            }
            Fault::MediaMisroute => {
                "the first media chunk sent after an upgrade is appended to the previously created recording"
            }
            Fault::UpgradeSharedSlot => {
                "the upgrade handler keeps the call it works on in a process-wide slot across an await (concurrent upgrades only)"
            }
            Fault::FhirSubjectUnchecked => {
                "(/fhir only) a Media search honours any subject or patient parameter without checking it is the caller"
            }
            Fault::FhirNextLinkUnscoped => {
                "(/fhir only) a search's next link carries the paging state but not the owner, so following it lists everyone's Media"
            }
            Fault::CallOwnerUnchecked => {
                "the call lookup every call action shares matches the call by id alone, so any patient can upgrade, feed or end anyone's call"
            }
            Fault::TokenLikeMatch => {
                "the bearer token is looked up with SQL LIKE, so a token of % acts as a patient"
            }
            Fault::RefusalRevealsExistence => {
                "playback of another patient's recording answers 403 where an unknown id gets 404, telling a prober it exists"
            }
            Fault::ActiveCallBySlot => {
                "starting a call checks for an active call in the appointment's slot, so another patient's call at the same hour blocks it"
            }
            Fault::EraseWholeCall => {
                "erasing a recording erases every recording of its call, so the audio of an upgraded call vanishes with its video"
            }
            Fault::BinaryOutlivesMedia => {
                "(/fhir only) erasing a Media keeps its bytes, and the Binary read skips the erasure check, so an old content.url still downloads it"
            }
            Fault::TotalCountsEveryone => {
                "a patient's recording listing counts every patient's recordings in its total"
            }
            Fault::EraseBySlot => {
                "erasing a recording erases every finished recording made in its appointment's slot, so another patient's recording at the same hour vanishes"
            }
            Fault::EraseKeepsStoredMedia => {
                "erasure hides the recording and refuses its playback, but never deletes its bytes from the media store"
            }
        }
    }

    /// Whether the fault lives only in the FHIR shape (`/fhir`), so only a
    /// client of that shape can see it; every other fault shows through both.
    pub fn fhir_only(self) -> bool {
        matches!(
            self,
            Fault::FhirSubjectUnchecked | Fault::FhirNextLinkUnscoped | Fault::BinaryOutlivesMedia
        )
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A fault name that names no [`Fault`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown fault {name:?}; valid faults: {valid}", valid = valid_names())]
pub struct UnknownFault {
    /// The name as given, trimmed.
    pub name: String,
}

fn valid_names() -> String {
    Fault::ALL.map(Fault::name).join(", ")
}

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim();
        Fault::ALL
            .into_iter()
            .find(|fault| fault.name() == name)
            .ok_or_else(|| UnknownFault {
                name: name.to_owned(),
            })
    }
}

/// The set of faults planted in one clinic. Empty by default: a correct clinic.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FaultSet(BTreeSet<Fault>);

impl FaultSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list such as `"recording-idor, media-misroute"`.
    /// Whitespace around names is trimmed and empty items are skipped, so the
    /// empty string is the empty set.
    pub fn parse_list(list: &str) -> Result<Self, UnknownFault> {
        list.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(Fault::from_str)
            .collect()
    }

    /// Whether `fault` is planted.
    pub fn contains(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }

    /// Plants `fault`; returns whether it was newly added.
    pub fn insert(&mut self, fault: Fault) -> bool {
        self.0.insert(fault)
    }

    /// The planted faults in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = Fault> + '_ {
        self.0.iter().copied()
    }

    /// Whether no fault is planted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<Fault> for FaultSet {
    fn from_iter<I: IntoIterator<Item = Fault>>(iter: I) -> Self {
        FaultSet(iter.into_iter().collect())
    }
}

impl Extend<Fault> for FaultSet {
    fn extend<I: IntoIterator<Item = Fault>>(&mut self, iter: I) {
        self.0.extend(iter);
    }
}

impl FromStr for FaultSet {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultSet::parse_list(s)
    }
}

/// Comma-separated names without spaces (`a,b`), the empty string when empty.
impl fmt::Display for FaultSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, fault) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(fault.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Goal: names, parsing and display round-trip; errors list the valid names.

    use super::*;

    #[test]
    fn every_name_round_trips_through_from_str_display_and_serde() {
        for fault in Fault::ALL {
            assert_eq!(fault.name().parse::<Fault>(), Ok(fault));
            assert_eq!(fault.to_string(), fault.name());
            let json = serde_json::to_string(&fault).expect("serialize");
            assert_eq!(json, format!("\"{}\"", fault.name()));
            let back: Fault = serde_json::from_str(&json).expect("deserialize");
            assert_eq!(back, fault);
            assert!(!fault.summary().contains('\n'));
        }
    }

    #[test]
    fn unknown_fault_is_one_line_listing_every_valid_name() {
        let err = "nope".parse::<Fault>().expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown fault \"nope\"; valid faults: upgrade-latest-call, upgrade-phantom, \
             history-page2-unfiltered, history-cache-shared, recording-idor, \
             rebook-reuses-consultation, erasure-leaves-media, media-misroute, \
             upgrade-shared-slot, fhir-subject-unchecked, fhir-next-link-unscoped, \
             call-owner-unchecked, token-like-match, refusal-reveals-existence, \
             active-call-by-slot, erase-whole-call, binary-outlives-media, \
             total-counts-everyone, erase-by-slot, erase-keeps-stored-media"
        );
    }

    #[test]
    fn parse_list_trims_skips_empties_and_displays_as_comma_list() {
        assert!(FaultSet::parse_list("").expect("empty").is_empty());
        assert!(FaultSet::parse_list("  ").expect("blank").is_empty());
        let set = FaultSet::parse_list(" media-misroute , recording-idor,").expect("two");
        assert!(set.contains(Fault::MediaMisroute));
        assert!(set.contains(Fault::RecordingIdor));
        assert!(!set.contains(Fault::UpgradePhantom));
        assert_eq!(set.to_string(), "recording-idor,media-misroute");
        assert_eq!(
            FaultSet::parse_list("recording-idor,bogus")
                .expect_err("bogus")
                .name,
            "bogus"
        );
    }
}
