//! Unit tests of the oracle through one data-driven helper: a model history in
//! step text, one final step, and a hand-made observation of it.

use super::*;
use crate::driver::{Body, BodyKind, Observation, Seen};
use crate::model::{Limits, PatientId, RecordingId, Step, payload};

const HISTORY: &str = "P1 register\nP2 register\nP1 book A1 at d1-09h\nP1 start-call A1 -> C1 R1\n\
                       P2 book A2 at d1-10h\nP2 start-call A2 -> C2 R2\nP2 end-call C2";

/// Replay HISTORY plus `extra`, then judge the last step's observation.
fn judge(extra: &str, last: &str, observation: Observation) -> Judgement {
    let mut state = State::new(Limits::default());
    for line in HISTORY
        .lines()
        .chain(extra.lines())
        .filter(|l| !l.trim().is_empty())
    {
        state = state.apply(&Step::parse(line.trim()).unwrap());
    }
    let step = Step::parse(last).unwrap();
    assert!(state.precondition(&step), "{last}");
    let after = state.clone().apply(&step);
    check(&Canaries::new(4), &state, &after, 9, &step, &observation)
}

fn obs(status: u16, seen: &[(&str, Seen)], bodies: Vec<Body>) -> Observation {
    Observation {
        status,
        seen: seen.iter().map(|(f, s)| (f.to_string(), *s)).collect(),
        bodies,
        existence: None,
        facts: Vec::new(),
    }
}

fn json(text: &str) -> Body {
    Body {
        kind: BodyKind::Json,
        bytes: text.as_bytes().to_vec(),
    }
}

fn clauses(j: &Judgement) -> Vec<(Clause, String)> {
    j.violations
        .iter()
        .map(|v| (v.clause, v.to_string()))
        .collect()
}

const R1: Seen = Seen::Known(RecordingId(1));
const R2: Seen = Seen::Known(RecordingId(2));

#[test]
fn each_clause_fires_on_its_breach_and_only_then() {
    let history = "P2 view-history page=1 per-page=10";
    let canary1 = payload::canary(PatientId(1));
    let cases: Vec<(&str, &str, Observation, Vec<Clause>, &str)> = vec![
        (
            "",
            history,
            obs(200, &[("items[0]", R2)], vec![json("{}")]),
            vec![],
            "own recording",
        ),
        (
            "",
            history,
            obs(200, &[("items[0]", R2), ("items[1]", R1)], vec![json("{}")]),
            vec![Clause::Ownership],
            "belongs to P1 (foreign",
        ),
        (
            "",
            history,
            obs(
                200,
                &[("items[0]", R2), ("items[1]", Seen::Unknown(1))],
                vec![json("{}")],
            ),
            vec![Clause::Ownership],
            "phantom",
        ),
        (
            "",
            history,
            obs(
                200,
                &[("items[0]", R2)],
                vec![json(&format!(r#"{{"items":[{{"note":"{canary1}"}}]}}"#))],
            ),
            vec![Clause::Content],
            "P2 received P1's canary at `items[0].note`",
        ),
        (
            "",
            "P2 probe R1",
            obs(404, &[], vec![json(r#"{"error":"not found"}"#)]),
            vec![],
            "refused",
        ),
        (
            "",
            "P2 probe R1",
            obs(
                200,
                &[("media", R1)],
                vec![Body {
                    kind: BodyKind::Media,
                    bytes: payload::media_chunk(PatientId(1), crate::model::CallId(1), 1),
                }],
            ),
            vec![Clause::Ownership, Clause::Content, Clause::Refusal],
            "answered 200 instead of refusing",
        ),
        (
            "P2 erase R2",
            "P2 play R2",
            obs(404, &[], vec![json("{}")]),
            vec![],
            "erased and gone",
        ),
        (
            "P2 erase R2",
            "P2 play R2",
            obs(
                200,
                &[("media", R2)],
                vec![Body {
                    kind: BodyKind::Media,
                    bytes: vec![],
                }],
            ),
            vec![Clause::Erasure],
            "was erased by P2, yet P2 was shown it again",
        ),
        (
            "P2 erase R2",
            history,
            obs(200, &[("items[0]", R2)], vec![json("{}")]),
            vec![Clause::Erasure],
            "erased",
        ),
    ];
    for (extra, last, observation, expected, needle) in cases {
        let judgement = judge(extra, last, observation);
        let got = clauses(&judgement);
        let got_clauses: Vec<Clause> = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(got_clauses, expected, "{last} ({needle}): {got:?}");
        if !expected.is_empty() {
            assert!(
                got.iter().any(|(_, text)| text.contains(needle)),
                "{last}: {got:?} lacks {needle}"
            );
        }
        assert!(
            judgement.warnings.is_empty(),
            "{last}: {:?}",
            judgement.warnings
        );
    }
}

#[test]
fn completeness_warns_about_missing_own_recordings_without_failing() {
    let judgement = judge(
        "",
        "P2 view-history page=1 per-page=10",
        obs(200, &[], vec![json("{}")]),
    );
    assert!(judgement.violations.is_empty());
    assert_eq!(judgement.warnings.len(), 1);
    assert_eq!(
        judgement.warnings[0].to_string(),
        "P2's own finished recording R2 was missing at `items`"
    );
    // R1 is still recording: P1 is not owed it on page 1 yet.
    let judgement = judge(
        "",
        "P1 view-history page=1 per-page=10",
        obs(200, &[], vec![json("{}")]),
    );
    assert!(judgement.warnings.is_empty());
}

#[test]
fn canary_scan_places_leaks_in_broken_json_and_keys_too() {
    let canaries = Canaries::new(3);
    let c2 = payload::canary(PatientId(2));
    assert_eq!(
        canaries
            .owners(format!("xx{c2}yy").as_bytes())
            .into_iter()
            .collect::<Vec<_>>(),
        vec![CanaryOwner::Patient(PatientId(2))]
    );
    let judgement = judge(
        "",
        "P2 view-history page=1 per-page=10",
        obs(
            200,
            &[("items[0]", R2)],
            vec![json(&format!(r#"{{"{}":1"#, payload::canary(PatientId(1))))],
        ),
    );
    let got = clauses(&judgement);
    assert_eq!(got.len(), 1);
    assert!(got[0].1.contains("at `body`"), "{got:?}");
}

#[test]
fn canaries_of_other_cases_on_a_shared_service_are_leaks_too() {
    // Goal: on a shared target, a canary from an earlier case is caught even
    // though that patient is not part of this case.
    // Method: scan bodies holding another tag's canaries, and near misses.
    use crate::model::payload::{CaseTag, canary_in};
    let canaries = Canaries::for_case(2, CaseTag(5));
    let own = canary_in(CaseTag(5), PatientId(1));
    let other_case_same_alias = canary_in(CaseTag(9), PatientId(1));
    let found = |text: &str| {
        canaries
            .owners(text.as_bytes())
            .into_iter()
            .collect::<Vec<_>>()
    };
    assert_eq!(found(&own), vec![CanaryOwner::Patient(PatientId(1))]);
    assert_eq!(
        found(&format!("a {other_case_same_alias} b")),
        vec![CanaryOwner::Outsider]
    );
    assert_eq!(
        found("CNRY is not a canary, CNRYGGGG is not either"),
        vec![]
    );
    assert_eq!(found(&other_case_same_alias[..20]), vec![]);
}

#[test]
fn integrity_checks_a_mapped_size_and_owner_against_the_model() {
    // Goal: an own recording's size must be the bytes its owner sent into
    // it, and its owner must be the viewer; each mismatch is an integrity
    // violation naming the field, and the right values pass.
    // Method: P1 sends one chunk into R1, ends the call, views; the view's
    // facts are made by hand.
    use crate::driver::Fact;
    use crate::model::CallId;
    let extra = "P1 send-media C1 #3\nP1 end-call C1";
    let size = payload::media_chunk(PatientId(1), CallId(1), 3).len() as u64;
    let view = |facts: Vec<Fact>| {
        let mut o = obs(200, &[("items[0]", R1)], vec![json("{}")]);
        o.facts = facts
            .into_iter()
            .map(|f| ("items[0].x".to_string(), f))
            .collect();
        judge(extra, "P1 view history page=1 per-page=10", o)
    };
    let right = view(vec![
        Fact::Size {
            recording: R1,
            bytes: size,
        },
        Fact::Owner {
            recording: R1,
            owner: Some(PatientId(1)),
        },
    ]);
    assert!(right.violations.is_empty(), "{:?}", clauses(&right));
    let bigger = view(vec![Fact::Size {
        recording: R1,
        bytes: size + 70,
    }]);
    let found = clauses(&bigger);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Clause::Integrity);
    assert!(found[0].1.contains("size"), "{}", found[0].1);
    let someone_else = view(vec![Fact::Owner {
        recording: R1,
        owner: Some(PatientId(2)),
    }]);
    let found = clauses(&someone_else);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Clause::Integrity);
    assert!(found[0].1.contains("P2"), "{}", found[0].1);
}
