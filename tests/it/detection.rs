//! The detection matrix, minimality, determinism and snapshots of minimal
//! scenarios, one test per fault.
//!
//! Method: for each fault, `check` with each of a fixed list of seeds must
//! find a violation of the fault's clause; the minimal scenario of seed 1 is
//! snapshot (scenario file and console explanation), written to text, read
//! back, and replayed to the same violation.

use chaperone::oracle::Clause;
use chaperone::report::console;
use chaperone::scenario::{Expect, Scenario};
use chaperone::target::TargetSpec;
use clinic::{Fault, FaultSet};

use super::*;

const SEEDS: [u64; 3] = [1, 2, 3];
const CASES: u32 = 512;

/// The clauses a fault's leak may violate first: its own, and for
/// `rebook-reuses-consultation` also noninterference and completeness (the
/// next booking takes over the cancelled appointment's consultation, calls
/// and recordings and all, so its first owner may be refused their own call,
/// or lose a recording they were shown, before anyone sees it elsewhere).
pub fn expected_clauses(fault: Fault) -> Vec<Clause> {
    match fault {
        // The video lands on another call: shown under the wrong call
        // (integrity), or to that call's patient (ownership).
        Fault::UpgradeLatestCall => vec![Clause::Ownership, Clause::Integrity],
        // Another patient's erasure hides the recording (noninterference),
        // or the patient's own erases their other recording of the hour
        // after they were shown it (lost).
        Fault::EraseBySlot => vec![Clause::Noninterference, Clause::Completeness],
        // The cached page is another patient's: shown to the wrong patient
        // (ownership), or the patient's own recording missing from it, which
        // alone it is not (noninterference).
        Fault::HistoryCacheShared => vec![Clause::Ownership, Clause::Noninterference],
        // The misrouted chunk lands in another recording: another patient's
        // bytes in a playback (content), a size that is not the bytes sent
        // (integrity), or an erased recording's chunk left in the store in
        // the other recording's object (erasure).
        Fault::MediaMisroute => vec![Clause::Content, Clause::Integrity, Clause::Erasure],
        Fault::RebookReusesConsultation => vec![
            Clause::Ownership,
            Clause::Noninterference,
            Clause::Completeness,
        ],
        other => vec![expected_clause(other)],
    }
}

/// The clause a fault's leak violates first.
pub fn expected_clause(fault: Fault) -> Clause {
    match fault {
        Fault::RecordingIdor
        | Fault::CallOwnerUnchecked
        | Fault::TokenLikeMatch
        | Fault::RefusalRevealsExistence => Clause::Refusal,
        Fault::ErasureLeavesMedia | Fault::BinaryOutlivesMedia | Fault::EraseKeepsStoredMedia => {
            Clause::Erasure
        }
        Fault::MediaMisroute => Clause::Content,
        Fault::ActiveCallBySlot | Fault::EraseBySlot => Clause::Noninterference,
        Fault::EraseWholeCall => Clause::Completeness,
        Fault::TotalCountsEveryone => Clause::Integrity,
        _ => Clause::Ownership,
    }
}

fn detects(fault: Fault) {
    detects_through(&clinic_binding(), fault, seeds_for(fault), CASES, "");
}

/// The seeds a fault is found with. `media-misroute` leaks only when the
/// misrouted chunk lands in another patient's unfinished recording; in its
/// own finished one the service answers 409, which is a divergence (unknown),
/// not a leak. At seed 3 that happens in 16 of 512 cases and the leak in none
/// (seeds 1, 2, 4, 5 and 6 find it), so seed 4 stands in for 3.
/// `erase-whole-call` is a finding only once the vanished recording had been
/// shown to its owner (lost); erasing the already vanished one is a 404, a
/// divergence: at seed 1 that happens in 10 of 512 cases and the loss in
/// none (seeds 2 to 5 find it).
fn seeds_for(fault: Fault) -> &'static [u64] {
    match fault {
        Fault::MediaMisroute => &[1, 2, 4],
        Fault::EraseWholeCall => &[2, 3, 4],
        _ => &SEEDS,
    }
}

/// `check` through `binding` with `fault` planted finds a violation of the
/// fault's clause with every seed in `seeds` (within `cases` cases); the
/// written scenario reads back, replays to the same clause and passes on a
/// clean clinic. The first seed's minimal scenario and explanation are
/// snapshot as `{prefix}minimal-{fault}` and `{prefix}explain-{fault}`.
pub fn detects_through(
    binding: &std::sync::Arc<chaperone::binding::Binding>,
    fault: Fault,
    seeds: &[u64],
    cases: u32,
    prefix: &str,
) {
    for &seed in seeds {
        let report = check_through(binding, &[fault], seed, cases);
        let finding = report.finding.as_ref().unwrap_or_else(|| {
            panic!(
                "{fault} seed {seed}: no finding in {cases} cases: {:?}",
                report.verdict()
            )
        });
        let found: Vec<Clause> = finding.violations.iter().map(|v| v.clause).collect();
        let clause = found
            .iter()
            .copied()
            .find(|c| expected_clauses(fault).contains(c))
            .unwrap_or_else(|| {
                panic!(
                    "{fault} seed {seed}: expected one of {:?}, got {found:?}",
                    expected_clauses(fault)
                )
            });
        assert_eq!(report.verdict().exit_code(), 1);

        // Round trip: the written scenario reads back and replays to the same clause.
        let mut faults = FaultSet::default();
        faults.insert(fault);
        let scenario = Scenario {
            description: None,
            target: TargetSpec::Embedded,
            binding: binding.name.clone(),
            faults,
            seed: Some(seed),
            expect: Expect::Violation(clause),
            steps: finding.steps.clone(),
            groups: Vec::new(),
            stagger_us: Vec::new(),
        };
        let text = scenario.to_toml(None);
        let read = parse(&text);
        assert_eq!(read, scenario);
        let replayed = run_steps_through(binding, &[fault], &read.steps);
        assert!(
            clauses(&replayed).contains(&clause),
            "{fault} seed {seed}: replay gave {:?}",
            replayed.end
        );
        // Without the fault the same steps pass: the finding is the fault's.
        let clean = run_steps_through(binding, &[], &read.steps);
        assert_eq!(
            clean.end,
            chaperone::runner::CaseEnd::Passed,
            "{fault} seed {seed} on a clean clinic"
        );

        if seed == seeds[0] {
            let explanation = console::explain(
                &finding.steps,
                &finding.violations,
                Some(finding.original_len),
            );
            snapshot_settings().bind(|| {
                insta::assert_snapshot!(format!("{prefix}minimal-{fault}"), text);
                insta::assert_snapshot!(format!("{prefix}explain-{fault}"), explanation);
            });
        }
    }
}

macro_rules! detection_tests {
    ($($name:ident => $fault:expr,)*) => {
        $(
            #[test]
            fn $name() {
                detects($fault);
            }
        )*
        /// The faults that have a detection test above.
        const MATRIX: &[Fault] = &[$($fault),*];
    };
}

detection_tests! {
    detects_upgrade_latest_call => Fault::UpgradeLatestCall,
    detects_upgrade_phantom => Fault::UpgradePhantom,
    detects_history_page2_unfiltered => Fault::HistoryPage2Unfiltered,
    detects_history_cache_shared => Fault::HistoryCacheShared,
    detects_recording_idor => Fault::RecordingIdor,
    detects_rebook_reuses_consultation => Fault::RebookReusesConsultation,
    detects_erasure_leaves_media => Fault::ErasureLeavesMedia,
    detects_media_misroute => Fault::MediaMisroute,
    detects_call_owner_unchecked => Fault::CallOwnerUnchecked,
    detects_token_like_match => Fault::TokenLikeMatch,
    detects_refusal_reveals_existence => Fault::RefusalRevealsExistence,
    detects_active_call_by_slot => Fault::ActiveCallBySlot,
    detects_erase_whole_call => Fault::EraseWholeCall,
    detects_total_counts_everyone => Fault::TotalCountsEveryone,
    detects_erase_by_slot => Fault::EraseBySlot,
    detects_erase_keeps_stored_media => Fault::EraseKeepsStoredMedia,
}

/// Faults the sequential matrix leaves out, and why: `check` sends one request
/// at a time, and `upgrade-shared-slot` only misbehaves when two upgrades are
/// in the handler at once. Soak finds it (tests/it/soak.rs);
/// `sequential_check_cannot_see_upgrade_shared_slot` pins that `check` does not.
const NOT_SEQUENTIAL: [Fault; 1] = [Fault::UpgradeSharedSlot];

#[test]
fn every_fault_is_in_the_matrix() {
    // Guards the list above against a fault added to the clinic later: every
    // fault is in the sequential matrix or is one only soak can see.
    // FHIR-only faults are invisible through `/v1`, which this matrix
    // drives; they are found through the FHIR binding (issue 9).
    let v1_faults: Vec<Fault> = Fault::ALL.into_iter().filter(|f| !f.fhir_only()).collect();
    for fault in &v1_faults {
        assert!(
            MATRIX.contains(fault) || NOT_SEQUENTIAL.contains(fault),
            "{fault} has no detection test"
        );
    }
    assert_eq!(v1_faults.len(), MATRIX.len() + NOT_SEQUENTIAL.len());
}

#[test]
fn sequential_check_cannot_see_upgrade_shared_slot() {
    // Goal: the race fault is invisible to sequential exploration, which is why
    // it is outside the matrix (and why soak exists).
    // Method: 512 cases with the fault planted find nothing, and the run still
    // exercises every action (so "nothing" is not for want of upgrades).
    let report = check(&[Fault::UpgradeSharedSlot], 1, CASES);
    assert!(report.finding.is_none(), "{:?}", report.finding);
    assert_eq!(report.verdict(), chaperone::runner::Verdict::Pass);
}

#[test]
fn clean_clinic_passes_a_thousand_cases() {
    // Goal: no false positives. With no fault the clinic is correct, so 1,000
    // cases must end with verdict pass: no violation, no divergence, and
    // every action exercised.
    let report = check(&[], 7, 1_000);
    assert_eq!(report.cases_run, 1_000);
    assert!(report.finding.is_none(), "{:?}", report.finding);
    assert_eq!(
        report.verdict(),
        chaperone::runner::Verdict::Pass,
        "{}",
        console::summary(&report)
    );
    assert_eq!(report.warnings_count, 0, "{:?}", report.warnings);
}

#[test]
fn upgrade_latest_call_minimal_scenario_has_no_removable_step() {
    // Goal: the shrinker's result is 1-minimal.
    // Method: remove each step in turn (dropping what depended on it) and show
    // the violation disappears.
    let fault = Fault::UpgradeLatestCall;
    let report = check(&[fault], 1, CASES);
    let steps = report.finding.expect("finding").steps;
    assert!(steps.len() <= 8, "not minimal: {steps:?}");
    // Two calls in progress are needed (the video lands on the other one);
    // they may be one patient's: the integrity clause sees the video under
    // the wrong call before any other patient is shown it.
    let calls = steps
        .iter()
        .filter(|s| matches!(s, model::Step::StartCall { .. }))
        .count();
    assert_eq!(calls, 2, "the leak needs exactly two calls: {steps:?}");
    for i in 0..steps.len() {
        let mut without = steps.clone();
        let removed = without.remove(i);
        let candidate = model::prune(model::limits_for(Default::default(), &steps), &without);
        let run = run_steps(&[fault], &candidate);
        assert_eq!(
            run.end,
            chaperone::runner::CaseEnd::Passed,
            "without step {} `{removed}`",
            i + 1
        );
    }
}

#[test]
fn the_same_seed_finds_the_same_minimal_scenario() {
    // Goal: determinism. Two runs with one seed give byte-identical scenario text.
    let texts: Vec<String> = (0..2)
        .map(|_| {
            let finding = check(&[Fault::HistoryCacheShared], 5, CASES)
                .finding
                .expect("finding");
            let mut faults = FaultSet::default();
            faults.insert(Fault::HistoryCacheShared);
            Scenario {
                description: None,
                target: TargetSpec::Embedded,
                binding: "clinic".to_string(),
                faults,
                seed: Some(5),
                expect: Expect::Violation(Clause::Ownership),
                steps: finding.steps,
                groups: Vec::new(),
                stagger_us: Vec::new(),
            }
            .to_toml(None)
        })
        .collect();
    assert_eq!(texts[0], texts[1]);
}
