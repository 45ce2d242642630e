//! Content: no byte string a patient receives carries another patient's
//! canary. One aho-corasick automaton holds every patient's canary and scans
//! every body (JSON documents field by field, media as raw bytes). This
//! catches leaks whose metadata looks right.

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;
use serde_json::Value;

use super::{Clause, Context, Finding, Violation};
use crate::driver::BodyKind;
use crate::model::{PatientId, payload};

/// Recognises patients' canaries in bytes.
///
/// Two forms: [`Canaries::new`] is one aho-corasick automaton over the
/// canaries of `P1..=Pn` (a `check` case knows all its patients up front);
/// [`Canaries::any`] recognises the canary of any alias, for a soak whose
/// patients keep arriving: it finds the fixed `CNRY` prefix with the same
/// automaton machinery and then confirms the whole token against
/// [`payload::canary`], so a near miss is never attributed to anyone.
#[derive(Debug, Clone)]
pub struct Canaries {
    automaton: AhoCorasick,
    count: Option<u32>,
}

/// The prefix every canary starts with (see [`payload::canary`]).
const PREFIX: &str = "CNRY";

impl Canaries {
    /// Canaries for the first `patients` aliases.
    pub fn new(patients: u32) -> Canaries {
        let patterns: Vec<String> = (1..=patients)
            .map(|n| payload::canary(PatientId(n)))
            .collect();
        let automaton = AhoCorasick::new(&patterns).expect("canaries are short literal strings");
        Canaries {
            automaton,
            count: Some(patients),
        }
    }

    /// Canaries of every possible alias.
    pub fn any() -> Canaries {
        let automaton = AhoCorasick::new([PREFIX]).expect("a literal prefix");
        Canaries {
            automaton,
            count: None,
        }
    }

    /// How many patients' canaries are recognised (`None`: any patient's).
    pub fn patients(&self) -> Option<u32> {
        self.count
    }

    /// Whose canaries occur in `haystack`.
    pub fn owners(&self, haystack: &[u8]) -> BTreeSet<PatientId> {
        if self.count.is_some() {
            return self
                .automaton
                .find_iter(haystack)
                .map(|m| PatientId(m.pattern().as_u32() + 1))
                .collect();
        }
        self.automaton
            .find_iter(haystack)
            .filter_map(|m| {
                let rest = &haystack[m.end()..];
                let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
                let n: u32 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
                let patient = PatientId(n);
                let expected = payload::canary(patient);
                haystack
                    .get(m.start()..m.start() + expected.len())
                    .filter(|token| *token == expected.as_bytes())
                    .map(|_| patient)
            })
            .collect()
    }
}

fn walk(canaries: &Canaries, value: &Value, path: &str, found: &mut BTreeSet<(String, PatientId)>) {
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
    let mut found: BTreeSet<(String, PatientId)> = BTreeSet::new();
    for body in &ctx.observation.bodies {
        let raw = canaries.owners(&body.bytes);
        if raw.iter().all(|owner| *owner == ctx.patient) {
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
        .filter(|(_, owner)| *owner != ctx.patient)
        .map(|(field, owner)| ctx.violation(Clause::Content, field, Finding::Canary { owner }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_recognises_every_alias_and_agrees_with_the_fixed_automaton() {
        // Goal: the open form (soak) finds exactly what the fixed form finds,
        // for any alias, and never attributes a near miss.
        let p = |n| payload::canary(PatientId(n));
        let haystack = format!(
            "x{}y {} z{} CNRY0007GGGGGGGG {}",
            p(7),
            p(20),
            p(12_345),
            &p(3)[..10]
        );
        let any = Canaries::any();
        let found: Vec<u32> = any
            .owners(haystack.as_bytes())
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(found, vec![7, 20, 12_345]);
        let fixed = Canaries::new(20);
        let found: Vec<u32> = fixed
            .owners(haystack.as_bytes())
            .iter()
            .map(|p| p.0)
            .collect();
        assert_eq!(found, vec![7, 20]);
        assert_eq!(any.patients(), None);
    }
}
