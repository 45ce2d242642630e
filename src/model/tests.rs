//! Unit tests of the model, through one data-driven helper: a scenario in step
//! text, replayed from the empty state.

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;

use super::*;

/// Parse step lines and replay them; `Err(i)` names the first invalid step.
fn replay(lines: &str) -> Result<State, usize> {
    let steps: Vec<Step> = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Step::parse(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    match first_invalid(Limits::default(), &steps) {
        Some(i) => Err(i),
        None => Ok(steps
            .iter()
            .fold(State::new(Limits::default()), |s, step| s.apply(step))),
    }
}

const CALL: &str = "P1 register\nP2 register\nP1 book A1 at d1-09h\nP1 start-call A1 -> C1 R1\n";

#[test]
fn preconditions_accept_valid_steps_and_refuse_invalid_ones() {
    // Goal: every validity rule the shrinker relies on holds.
    // Method: a table of (extra steps after CALL, index of first invalid step or None).
    let table: &[(&str, Option<usize>)] = &[
        (
            "P1 upgrade C1 -> R2\nP1 send-media C1 #1\nP1 end-call C1\nP1 erase R2",
            None,
        ),
        ("P2 upgrade C1 -> R2", Some(4)), // not P2's call
        ("P1 upgrade C1 -> R2\nP1 upgrade C1 -> R3", Some(5)), // already video
        ("P1 upgrade C1 -> R1", Some(4)), // R1 not fresh
        ("P1 cancel A1", Some(4)),        // call active
        (
            "P1 end-call C1\nP1 cancel A1\nP1 start-call A1 -> C2 R2",
            Some(6),
        ), // cancelled
        ("P1 erase R1", Some(4)),         // still recording
        ("P1 end-call C1\nP1 erase R1\nP1 erase R1", Some(6)), // already erased
        ("P1 end-call C1\nP1 erase R1\nP1 play R1", None), // owner may still ask
        ("P2 play R1", Some(4)),          // not P2's: that is a probe
        ("P2 probe R1", None),
        ("P1 probe R1", Some(4)), // own recording is not a probe
        ("P3 view-history page=1 per-page=10", Some(4)), // P3 not registered
        ("P1 view-history page=4 per-page=10", Some(4)), // above history_pages_max
        ("P5 register", Some(4)), // above patients_max
        ("P2 book A1 at d1-10h", Some(4)), // A1 not fresh
        ("P1 end-call C1\nP1 send-media C1 #1", Some(5)), // ended
        // Cross-patient actions: any object of somebody else's, in any state.
        (
            "P2 probe end-call C1\nP2 probe upgrade C1\nP2 probe cancel A1",
            None,
        ),
        (
            "P1 end-call C1\nP2 probe end-call C1\nP2 probe start-call A1",
            None,
        ),
        ("P1 probe cancel A1", Some(4)), // own appointment is not a trespass
        ("P2 probe send-media C9", Some(4)), // no such call
        ("P3 probe erase R1", Some(4)),  // P3 not registered
        ("P1 forge truncated\nP2 forge missing", None),
    ];
    for (extra, expected) in table {
        let got = replay(&format!("{CALL}{extra}")).err();
        assert_eq!(got, *expected, "after CALL: {extra}");
    }
}

#[test]
fn history_prediction_follows_creation_order_and_hides_erased() {
    let state = replay(&format!(
        "{CALL}P1 upgrade C1 -> R2\nP1 end-call C1\nP1 book A2 at d1-11h\n\
         P1 start-call A2 -> C2 R3\nP1 erase R1"
    ))
    .unwrap();
    let p1 = PatientId(1);
    assert_eq!(
        state.visible_recordings(p1),
        vec![RecordingId(2), RecordingId(3)]
    );
    assert_eq!(
        state.expected_page(p1, &crate::model::ViewSpec::HISTORY, None, 2, 1),
        Some(vec![RecordingId(3)])
    );
    assert_eq!(
        state.expected_page(p1, &crate::model::ViewSpec::HISTORY, None, 3, 1),
        Some(vec![])
    );
    assert_eq!(state.visible_recordings(PatientId(2)), vec![]);
    assert!(state.recordings[&RecordingId(1)].finished);
    assert!(!state.recordings[&RecordingId(3)].finished);
}

#[test]
fn steps_print_and_parse_back() {
    for line in CALL.lines().chain([
        "P1 upgrade C1 -> R2",
        "P1 send-media C1 #3",
        "P2 view history page=2 per-page=1",
        "P2 view visit A1 subject=P1 page=1 per-page=3",
        "P1 erase-account",
        "P2 probe R1",
        "P1 cancel A1",
        "P2 probe cancel A1",
        "P2 probe start-call A1",
        "P2 probe upgrade C1",
        "P2 probe send-media C1",
        "P2 probe end-call C1",
        "P2 probe erase R1",
        "P1 forge missing",
        "P1 forge scheme",
    ]) {
        let step = Step::parse(line).unwrap();
        assert_eq!(step.to_string(), line);
    }
    for (bad, needle) in [
        ("P1 fly R1", "unknown action `fly`"),
        ("P1 book A1", "P1 book A1 at d1-09h"),
        ("P1 book A1 at d1-23h", "hours 08-17"),
        ("X1 register", "a patient alias"),
        ("P1 play C1", "a recording alias"),
        ("P1 view-history page=0 per-page=10", "page 1-255"),
        ("P2 probe cancel R1", "an appointment alias"),
        ("P2 probe fly A1", "P2 probe cancel|start-call A1"),
        ("P1 forge guessed", "missing|empty|truncated"),
    ] {
        let err = Step::parse(bad).unwrap_err().to_string();
        assert!(err.contains(needle), "{bad}: {err}");
    }
}

#[test]
fn probes_change_nothing_and_a_patient_alone_keeps_only_their_own_steps() {
    // Goal: a trespass or a forgery leaves the model as it was, and the
    // noninterference projection drops every other patient's steps and every
    // cross-patient one.
    let before = replay(CALL).unwrap();
    let after = replay(&format!(
        "{CALL}P2 probe end-call C1\nP2 probe erase R1\nP2 forge wildcard"
    ))
    .unwrap();
    assert_eq!(before, after);
    let steps: Vec<Step> = format!(
        "{CALL}P2 book A2 at d1-09h\nP2 probe end-call C1\nP1 view history page=1 per-page=10\n\
         P2 view history page=1 per-page=10\nP1 end-call C1"
    )
    .lines()
    .map(|l| Step::parse(l).unwrap())
    .collect();
    let alone: Vec<String> = alone(Limits::default(), &steps, PatientId(1))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        alone,
        [
            "P1 register",
            "P1 book A1 at d1-09h",
            "P1 start-call A1 -> C1 R1",
            "P1 view history page=1 per-page=10",
            "P1 end-call C1",
        ]
    );
}

#[test]
fn prune_drops_dependants_and_renumber_restarts_aliases() {
    let steps: Vec<Step> =
        "P1 register\nP2 register\nP2 book A3 at d1-09h\nP2 start-call A3 -> C4 R7\nP1 probe R7"
            .lines()
            .map(|l| Step::parse(l).unwrap())
            .collect();
    // Removing the booking drops the call and the probe that depended on it.
    let mut without = steps.clone();
    without.remove(2);
    assert_eq!(prune(Limits::default(), &without), steps[..2].to_vec());
    let renamed: Vec<String> = renumber(&steps[1..])
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        renamed,
        [
            "P1 register",
            "P1 book A1 at d1-09h",
            "P1 start-call A1 -> C1 R1",
            "P2 probe R1"
        ]
    );
}

#[test]
fn generated_sequences_are_valid_and_shrink_validly() {
    // Goal: the generator only offers valid steps, and shrinking keeps validity.
    // Method: 200 sequences from a fixed-seed runner; simplify each a few times.
    let mut runner = TestRunner::deterministic();
    let strategy = sequences(Limits::default(), 40);
    let mut upgrades = 0;
    let mut shrunk_non_empty = 0;
    for _ in 0..200 {
        let mut tree = strategy.new_tree(&mut runner).unwrap();
        let (_, steps, seen) = tree.current();
        // Tell the shrinker every step ran (as the runner does), so it deletes
        // steps one at a time instead of dropping the unseen tail at once.
        if let Some(seen) = seen {
            seen.store(steps.len(), std::sync::atomic::Ordering::SeqCst);
        }
        assert_eq!(first_invalid(Limits::default(), &steps), None);
        upgrades += steps
            .iter()
            .filter(|s| matches!(s, Step::Upgrade { .. }))
            .count();
        for _ in 0..5 {
            if !tree.simplify() {
                break;
            }
            let (_, shrunk, _) = tree.current();
            assert_eq!(first_invalid(Limits::default(), &shrunk), None);
            shrunk_non_empty += usize::from(!shrunk.is_empty());
        }
    }
    assert!(upgrades > 50, "generator rarely upgrades: {upgrades}");
    // The shrink checks above must have looked at real sequences.
    assert!(
        shrunk_non_empty > 500,
        "shrinking only produced empty sequences"
    );
}
