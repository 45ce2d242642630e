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
///
/// [`Canaries::any_in`] is the open form for a soak, whose patients keep
/// arriving: only the prefix is searched, and a canary-shaped match is this
/// case's patient when it equals [`payload::canary_in`] of its own alias
/// digits, an outsider otherwise — so a near miss is never pinned on anyone.
#[derive(Debug, Clone)]
pub struct Canaries {
    automaton: AhoCorasick,
    count: u32,
    open: Option<CaseTag>,
}

impl Canaries {
    /// Canaries for the first `patients` aliases, with the default case tag.
    pub fn new(patients: u32) -> Canaries {
        Canaries::for_case(patients, CaseTag::default())
    }

    /// Canaries for the first `patients` aliases of the case tagged `tag`.
    pub fn for_case(patients: u32, tag: CaseTag) -> Canaries {
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
            open: None,
        }
    }

    /// The canaries of every alias of the case tagged `tag`.
    pub fn any_in(tag: CaseTag) -> Canaries {
        let automaton = AhoCorasick::new([payload::CANARY_PREFIX]).expect("a short literal prefix");
        Canaries {
            automaton,
            count: 0,
            open: Some(tag),
        }
    }

    /// How many patients' canaries the automaton holds (0 for [`Canaries::any_in`]).
    pub fn patients(&self) -> u32 {
        self.count
    }

    /// Whose canaries occur in `haystack`.
    pub fn owners(&self, haystack: &[u8]) -> BTreeSet<CanaryOwner> {
        self.automaton
            .find_iter(haystack)
            .filter_map(|m| {
                let index = m.pattern().as_usize();
                if index < self.count as usize {
                    return Some(CanaryOwner::Patient(PatientId(index as u32 + 1)));
                }
                let end = m.start() + payload::CANARY_LEN;
                let candidate = haystack.get(m.start()..end)?;
                if !payload::looks_like_canary(candidate) {
                    return None;
                }
                let own = self.open.and_then(|tag| {
                    let patient = payload::canary_alias(candidate)?;
                    (payload::canary_in(tag, patient).as_bytes() == candidate).then_some(patient)
                });
                Some(own.map_or(CanaryOwner::Outsider, CanaryOwner::Patient))
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

#[cfg(test)]
mod open_tests {
    use super::*;

    #[test]
    fn any_in_recognises_every_alias_of_its_case_and_agrees_with_the_fixed_automaton() {
        // Goal: the open form (soak) finds what the fixed form finds, for any
        // alias of its case; other cases' canaries are outsiders.
        let tag = CaseTag(9);
        let p = |n| payload::canary_in(tag, PatientId(n));
        let other = payload::canary_in(CaseTag(10), PatientId(7));
        let haystack = format!(
            "x{}y {} z{} {other} {}",
            p(7),
            p(20),
            p(123_456),
            &p(3)[..10]
        );
        let any = Canaries::any_in(tag);
        let found: Vec<CanaryOwner> = any.owners(haystack.as_bytes()).into_iter().collect();
        let patient = |n| CanaryOwner::Patient(PatientId(n));
        assert_eq!(
            found,
            vec![
                patient(7),
                patient(20),
                patient(123_456),
                CanaryOwner::Outsider
            ]
        );
        let fixed = Canaries::for_case(20, tag);
        let found: Vec<CanaryOwner> = fixed.owners(haystack.as_bytes()).into_iter().collect();
        assert_eq!(found, vec![patient(7), patient(20), CanaryOwner::Outsider]);
        assert_eq!(any.patients(), 0);
    }
}
