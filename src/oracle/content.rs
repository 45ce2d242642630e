//! Content: no byte string a patient receives carries another patient's
//! canary. One aho-corasick automaton holds every patient's canary and scans
//! every body (JSON documents field by field, media as raw bytes). This
//! catches leaks whose metadata looks right.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::Value;

use super::{Clause, Context, Finding, Violation};
use crate::driver::BodyKind;
use crate::model::PatientId;
use crate::model::payload::{self, CaseTag};

/// Whose canary a match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CanaryOwner {
    /// A patient of this case.
    Patient(PatientId),
    /// A patient of another case or run on the same service (a shared URL or
    /// containers target): a leak all the same.
    Outsider,
}

/// The automaton over the canaries of patients `P1..=Pn` of one case, plus the
/// common canary prefix so canaries of other cases are caught too.
#[derive(Debug, Clone)]
pub struct Canaries {
    automaton: AhoCorasick,
    count: u16,
}

impl Canaries {
    /// Canaries for the first `patients` aliases, with the default case tag.
    pub fn new(patients: u16) -> Canaries {
        Canaries::for_case(patients, CaseTag::default())
    }

    /// Canaries for the first `patients` aliases of the case tagged `tag`.
    pub fn for_case(patients: u16, tag: CaseTag) -> Canaries {
        let mut patterns: Vec<String> = (1..=patients)
            .map(|n| payload::canary_in(tag, PatientId(n)))
            .collect();
        // Last pattern: the bare prefix. Leftmost-longest makes a full known
        // canary win wherever both match.
        patterns.push(payload::CANARY_PREFIX.to_string());
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("canaries are short literal strings");
        Canaries {
            automaton,
            count: patients,
        }
    }

    /// How many patients' canaries the automaton holds.
    pub fn patients(&self) -> u16 {
        self.count
    }

    /// Whose canaries occur in `haystack`.
    pub fn owners(&self, haystack: &[u8]) -> BTreeSet<CanaryOwner> {
        self.automaton
            .find_iter(haystack)
            .filter_map(|m| {
                let index = m.pattern().as_usize();
                if index < usize::from(self.count) {
                    return Some(CanaryOwner::Patient(PatientId(index as u16 + 1)));
                }
                let end = m.start() + payload::CANARY_LEN;
                let candidate = haystack.get(m.start()..end)?;
                payload::looks_like_canary(candidate).then_some(CanaryOwner::Outsider)
            })
            .collect()
    }
}

fn walk(
    canaries: &Canaries,
    value: &Value,
    path: &str,
    found: &mut BTreeSet<(String, CanaryOwner)>,
) {
    match value {
        Value::String(s) => {
            for owner in canaries.owners(s.as_bytes()) {
                found.insert((path.to_string(), owner));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(canaries, item, &format!("{path}[{i}]"), found);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(canaries, item, &path, found);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub(super) fn check(canaries: &Canaries, ctx: &Context<'_>) -> Vec<Violation> {
    let mut found: BTreeSet<(String, CanaryOwner)> = BTreeSet::new();
    let own = CanaryOwner::Patient(ctx.patient);
    for body in &ctx.observation.bodies {
        let raw = canaries.owners(&body.bytes);
        if raw.iter().all(|owner| *owner == own) {
            continue;
        }
        let mut located = BTreeSet::new();
        match body.kind {
            BodyKind::Json => {
                if let Ok(value) = serde_json::from_slice::<Value>(&body.bytes) {
                    walk(canaries, &value, "", &mut located);
                }
            }
            BodyKind::Media => {
                for owner in &raw {
                    located.insert(("media".to_string(), *owner));
                }
            }
            BodyKind::Other => {}
        }
        // Whatever the structured walk could not place (keys, broken JSON,
        // non-JSON bodies) is still reported, against the whole body.
        for owner in &raw {
            if !located.iter().any(|(_, o)| o == owner) {
                located.insert(("body".to_string(), *owner));
            }
        }
        found.extend(located);
    }
    found
        .into_iter()
        .filter(|(_, owner)| *owner != own)
        .map(|(field, owner)| ctx.violation(Clause::Content, field, Finding::Canary { owner }))
        .collect()
}
