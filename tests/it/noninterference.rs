//! The noninterference check beyond refused steps: a patient whose own
//! finished recording is missing takes their steps again alone and every
//! observation is compared; with `[noninterference] check = "every"` every
//! passed case is so compared.

use std::sync::Arc;

use chaperone::binding::NoninterferenceCheck;
use chaperone::model::Step;
use chaperone::oracle::{Clause, Finding};
use chaperone::runner::{CaseEnd, run_case};
use clinic::Fault;

use super::{check_through, clinic_binding, embedded, run_steps, runtime};

fn steps(lines: &[&str]) -> Vec<Step> {
    lines
        .iter()
        .map(|l| Step::parse(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// P1 makes a recording at 09:00 and never looks; P2, booked at the same
/// hour, makes and erases their own; then P1 looks.
const HIDDEN_BY_ANOTHER: &[&str] = &[
    "P1 register",
    "P1 book A1 at d1-09h",
    "P1 start-call A1 -> C1 R1",
    "P1 end-call C1",
    "P2 register",
    "P2 book A2 at d1-09h",
    "P2 start-call A2 -> C2 R2",
    "P2 end-call C2",
    "P2 erase R2",
    "P1 view history page=1 per-page=10",
];

#[test]
fn a_recording_hidden_by_another_patients_action_is_a_noninterference_violation() {
    // Goal: when another patient's erasure makes one of P1's recordings
    // vanish (`erase-by-slot`), P1 — who had never been shown it, so nothing
    // was lost and nothing leaked — gets a noninterference violation, not
    // just a completeness warning: alone, P1's view shows it. Method: the
    // steps once with the fault, once on the clean clinic.
    let steps = steps(HIDDEN_BY_ANOTHER);
    let run = run_steps(&[Fault::EraseBySlot], &steps);
    let violations = run.violations().unwrap_or_else(|| panic!("{:?}", run.end));
    assert_eq!(violations.len(), 1, "{violations:?}");
    let v = &violations[0];
    assert_eq!(v.clause, Clause::Noninterference);
    assert_eq!(v.step, 10);
    assert_eq!(v.patient.to_string(), "P1");
    match &v.finding {
        Finding::Differs {
            field,
            with_others,
            alone,
            alone_steps,
            ..
        } => {
            assert_eq!(*field, "recordings");
            assert_eq!(with_others, "none");
            assert_eq!(alone, "R1");
            assert_eq!(*alone_steps, 5);
        }
        other => panic!("{other:?}"),
    }
    let message = v.to_string();
    assert!(
        message.contains("when P1's own 5 steps ran alone"),
        "{message}"
    );

    let clean = run_steps(&[], &steps);
    assert_eq!(clean.end, CaseEnd::Passed, "{:?}", clean.end);
    assert!(clean.warnings.is_empty(), "{:?}", clean.warnings);
}

#[test]
fn a_field_the_binding_declares_shared_is_not_compared() {
    // Goal: `[noninterference] fields` leaves fields out: with `recordings`
    // and `total` declared shared, the same vanished recording stays a
    // completeness warning (the run passes with it), as before the
    // comparison existed; with `recordings` alone, the total still differs.
    let steps = steps(HIDDEN_BY_ANOTHER);
    let mut binding = (*clinic_binding()).clone();
    binding.shared_fields = vec!["recordings".to_string()];
    let run = super::run_steps_through(&Arc::new(binding.clone()), &[Fault::EraseBySlot], &steps);
    let violations = run.violations().unwrap_or_else(|| panic!("{:?}", run.end));
    assert_eq!(violations[0].field, "total", "{violations:?}");
    binding.shared_fields = vec!["recordings".to_string(), "total".to_string()];
    let binding = Arc::new(binding);
    let run = super::run_steps_through(&binding, &[Fault::EraseBySlot], &steps);
    assert_eq!(run.end, CaseEnd::Passed, "{:?}", run.end);
    assert_eq!(run.warnings.len(), 1, "{:?}", run.warnings);
    assert!(matches!(run.warnings[0].finding, Finding::Missing { .. }));
}

#[test]
fn every_case_comparison_passes_the_clean_clinic() {
    // Goal: comparing every passed case, patient by patient, with the same
    // steps alone finds nothing on the clean clinic: nothing it compares
    // (statuses, recordings, mapped fields) depends on other patients there.
    // Method: 200 cases of seed 1 with `check = "every"`.
    let mut binding = (*clinic_binding()).clone();
    binding.noninterference = NoninterferenceCheck::Every;
    let report = check_through(&Arc::new(binding), &[], 1, 200);
    assert!(
        report.finding.is_none(),
        "{:?}",
        report.finding.map(|f| f.steps)
    );
    assert_eq!(report.cases_run, 200);
    assert_eq!(report.warnings_count, 0);
}

#[test]
fn every_case_comparison_finds_the_hidden_recording_in_a_search() {
    // Goal: with the comparison on every case, `check` finds
    // `erase-by-slot` as a noninterference violation or as the loss of a
    // recording the patient had been shown (completeness), and the shrunk
    // scenario replays to the same clause with the fault and passes without.
    let mut binding = (*clinic_binding()).clone();
    binding.noninterference = NoninterferenceCheck::Every;
    let binding = Arc::new(binding);
    let report = check_through(&binding, &[Fault::EraseBySlot], 1, 512);
    let finding = report.finding.expect("found");
    let clause = chaperone::oracle::primary_clause(&finding.violations).expect("a clause");
    assert!(
        matches!(clause, Clause::Noninterference | Clause::Completeness),
        "{clause:?}"
    );
    let limits = chaperone::model::limits_for(binding.caps, &finding.steps);
    let again = embedded(&[Fault::EraseBySlot]).with_binding(binding.clone());
    let again = runtime().block_on(run_case(&again, limits, &finding.steps, None));
    let violations = again
        .violations()
        .unwrap_or_else(|| panic!("{:?}", again.end));
    assert_eq!(chaperone::oracle::primary_clause(violations), Some(clause));
    let clean = embedded(&[]).with_binding(binding.clone());
    let clean = runtime().block_on(run_case(&clean, limits, &finding.steps, None));
    assert_eq!(clean.end, CaseEnd::Passed, "{:?}", clean.end);
}
