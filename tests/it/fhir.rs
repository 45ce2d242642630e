//! The detection matrix through the FHIR binding (`bindings/clinic-fhir.toml`):
//! the same model and oracles, another API shape over the same clinic.
//!
//! Goal: every fault the FHIR shape can show is found through its binding,
//! the two FHIR-only faults included, and the clean clinic shows nothing.
//!
//! Method: for each fault, `check` through the FHIR binding with fixed seeds
//! must find a violation of the fault's clause; the minimal scenario of the
//! first seed is snapshot as `fhir-minimal-{fault}` / `fhir-explain-{fault}`,
//! read back and replayed (the shared `detection::detects_through`). Seeds and
//! case counts are per fault so each test stays short in a debug build; they
//! are fixed, so every run explores the same cases. The two paging faults
//! need a patient owning more recordings than a page *and* a view of page 2
//! or later (a `next` link exists only then), which random generation rarely
//! combines: at seeds 1..8 the first failing case was often past 250; the seeds here
//! are ones that reach it within 200 cases.

use chaperone::runner::Verdict;
use clinic::Fault;

use super::detection::detects_through;
use super::*;

/// The snapshot name prefix of this matrix.
const PREFIX: &str = "fhir-";

macro_rules! fhir_detection_tests {
    ($($name:ident => $fault:expr, seeds $seeds:expr, cases $cases:expr;)*) => {
        $(
            #[test]
            fn $name() {
                detects_through(&fhir_binding(), $fault, &$seeds, $cases, PREFIX);
            }
        )*
        /// The faults that have a FHIR detection test above.
        const FHIR_MATRIX: &[Fault] = &[$($fault),*];
    };
}

fhir_detection_tests! {
    fhir_detects_upgrade_latest_call => Fault::UpgradeLatestCall, seeds [1, 2], cases 512;
    fhir_detects_upgrade_phantom => Fault::UpgradePhantom, seeds [1, 2], cases 512;
    fhir_detects_history_page2_unfiltered => Fault::HistoryPage2Unfiltered, seeds [5, 7], cases 200;
    fhir_detects_history_cache_shared => Fault::HistoryCacheShared, seeds [1, 2], cases 512;
    fhir_detects_recording_idor => Fault::RecordingIdor, seeds [1, 2], cases 512;
    fhir_detects_rebook_reuses_consultation => Fault::RebookReusesConsultation, seeds [1, 2], cases 512;
    fhir_detects_erasure_leaves_media => Fault::ErasureLeavesMedia, seeds [1, 2], cases 512;
    fhir_detects_media_misroute => Fault::MediaMisroute, seeds [1, 3], cases 512;
    fhir_detects_fhir_subject_unchecked => Fault::FhirSubjectUnchecked, seeds [1, 2], cases 512;
    fhir_detects_fhir_next_link_unscoped => Fault::FhirNextLinkUnscoped, seeds [1, 7], cases 200;
    fhir_detects_call_owner_unchecked => Fault::CallOwnerUnchecked, seeds [1, 2], cases 512;
    fhir_detects_token_like_match => Fault::TokenLikeMatch, seeds [1, 2], cases 512;
    fhir_detects_refusal_reveals_existence => Fault::RefusalRevealsExistence, seeds [1, 2], cases 512;
    fhir_detects_active_call_by_slot => Fault::ActiveCallBySlot, seeds [1, 2], cases 512;
    fhir_detects_erase_whole_call => Fault::EraseWholeCall, seeds [1, 2], cases 512;
    fhir_detects_binary_outlives_media => Fault::BinaryOutlivesMedia, seeds [1, 2], cases 512;
    fhir_detects_total_counts_everyone => Fault::TotalCountsEveryone, seeds [1, 2], cases 512;
    fhir_detects_erase_by_slot => Fault::EraseBySlot, seeds [1, 2], cases 512;
    fhir_detects_erase_keeps_stored_media => Fault::EraseKeepsStoredMedia, seeds [1, 2], cases 512;
}

#[test]
fn every_fault_the_fhir_shape_shows_is_in_its_matrix() {
    // Guards the list above against a fault added to the clinic later: every
    // fault is in the FHIR matrix, except the race only soak can see.
    for fault in Fault::ALL {
        assert!(
            FHIR_MATRIX.contains(&fault) || fault == Fault::UpgradeSharedSlot,
            "{fault} has no FHIR detection test"
        );
    }
    assert_eq!(FHIR_MATRIX.len(), Fault::ALL.len() - 1);
}

#[test]
fn the_fhir_binding_declares_both_views_and_every_sequential_action() {
    // Goal: the matrix above exercises what the binding says it has; a binding
    // edit that silently drops an action would make "nothing found" cheap.
    let binding = fhir_binding();
    assert_eq!(binding.name, "clinic-fhir");
    assert_eq!(binding.service, clinic_binding().service);
    for action in [
        model::Action::Book,
        model::Action::Cancel,
        model::Action::StartCall,
        model::Action::Upgrade,
        model::Action::SendMedia,
        model::Action::EndCall,
        model::Action::Play,
        model::Action::Erase,
    ] {
        assert!(
            binding.caps.has(action),
            "the FHIR binding lacks {}",
            action.name()
        );
    }
    let mut views: Vec<String> = binding.caps.views().map(|v| v.name.to_string()).collect();
    views.sort();
    assert_eq!(views, ["encounter", "history"], "{views:?}");
}

#[test]
fn fhir_clean_clinic_passes() {
    // Goal: no false positives through the FHIR shape. With no fault the
    // clinic is correct, so every case must pass: no violation, no
    // divergence, every bound action exercised, no completeness warning.
    // (1,000 cases were run by hand in release; this keeps the debug run short.)
    let report = check_through(&fhir_binding(), &[], 7, 300);
    assert_eq!(report.cases_run, 300);
    assert!(report.finding.is_none(), "{:?}", report.finding);
    assert_eq!(
        report.verdict(),
        Verdict::Pass,
        "{}",
        chaperone::report::console::summary(&report)
    );
    assert_eq!(report.warnings_count, 0, "{:?}", report.warnings);
}

#[test]
fn fhir_only_faults_are_invisible_through_v1() {
    // Goal: the FHIR-only faults live in the FHIR shape alone, so the FHIR
    // matrix is what finds them; through `/v1` the same seeds find nothing.
    for fault in [Fault::FhirSubjectUnchecked, Fault::FhirNextLinkUnscoped] {
        let report = check(&[fault], 1, 100);
        assert!(report.finding.is_none(), "{fault}: {:?}", report.finding);
    }
}

#[test]
fn a_finding_through_the_fhir_binding_replays_with_the_command_it_prints() {
    // Goal: `run --binding FILE` writes a scenario naming its binding, and the
    // replay command it records (and prints) names the binding file too, so
    // copying it reproduces the finding; plain `replay` of it is a usage error
    // (the `/v1` binding has no tamperable view), never a wrong verdict.
    use super::cli::{chaperone, stderr, stdout};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let binding = concat!(env!("CARGO_MANIFEST_DIR"), "/bindings/clinic-fhir.toml");
    let run = chaperone(&[
        "run",
        "--binding",
        binding,
        "--fault",
        "fhir-subject-unchecked",
        "--seed",
        "1",
        "--cases",
        "50",
        "--out",
        out,
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let file = dir.path().join("fhir-subject-unchecked-seed-1.toml");
    let text = std::fs::read_to_string(&file).expect("scenario written");
    assert!(text.contains("binding = \"clinic-fhir\""), "{text}");
    // `chaperone replay ...`, or `cargo run --release -- replay ...` when the
    // binary is not on PATH: the replay command ends with the binding file.
    let command = format!("replay {} --binding {binding}", file.display());
    let line = text
        .lines()
        .find(|l| l.starts_with("# Replay: "))
        .unwrap_or_else(|| panic!("no replay line: {text}"));
    assert!(line.ends_with(&command), "{text}");
    assert!(stdout(&run).contains(&command), "{}", stdout(&run));

    let scenario = file.to_str().unwrap();
    let replay = chaperone(&["replay", scenario, "--binding", binding]);
    assert_eq!(replay.status.code(), Some(1), "{}", stderr(&replay));
    assert!(
        stdout(&replay).contains("REPRODUCED 1/1"),
        "{}",
        stdout(&replay)
    );
    let without = chaperone(&["replay", scenario]);
    assert_eq!(without.status.code(), Some(2), "{}", stdout(&without));
}
