//! A service shaped nothing like the reference clinic, driven through its
//! binding (`bindings/tinyhealth.toml`): cookie sessions, the account id in
//! paths, ids only in `Location`, no cancel, an asynchronous video switch,
//! base64 media, cursor pages, signed download links, account erasure.
//! Chaperone must find the service's own planted bugs through the binding,
//! and nothing on the clean service.

use std::sync::Arc;

use chaperone::binding::Binding;
use chaperone::oracle::Clause;
use chaperone::runner::{self, CheckConfig, CheckReport, Verdict};
use chaperone::target::{Target, TargetSpec};

use super::runtime;

/// `run` through the tinyhealth binding against a fresh service with `faults`.
fn run(faults: &str, seed: u64, cases: u32) -> CheckReport {
    let binding = Arc::new(
        Binding::load(std::path::Path::new("bindings/tinyhealth.toml")).expect("valid binding"),
    );
    let faults = tinyhealth::FaultSet::parse_list(faults).expect("known faults");
    runtime().block_on(async {
        let running = tinyhealth::start(faults, tinyhealth::EPHEMERAL)
            .await
            .expect("tinyhealth starts");
        let target =
            Target::new(TargetSpec::Url(running.url()), Default::default()).with_binding(binding);
        let config = CheckConfig {
            seed,
            cases,
            ..CheckConfig::default()
        };
        let report = runner::check(&target, &config, &mut ()).await;
        target.shutdown().await;
        running.shutdown().await;
        report
    })
}

fn clause_of(report: &CheckReport) -> Option<Clause> {
    chaperone::oracle::primary_clause(&report.finding.as_ref()?.violations)
}

#[test]
fn the_clean_service_passes_through_its_binding() {
    // Goal: no false positive on a correct service of another shape, and
    // every bound action exercised (else the verdict would be unknown).
    let report = run("", 1, 64);
    assert!(report.finding.is_none(), "{:?}", report.finding);
    assert_eq!(report.verdict(), Verdict::Pass, "{:?}", report.verdict());
    assert_eq!(report.warnings_count, 0, "{:?}", report.warnings.first());
}

#[test]
fn its_planted_bugs_are_found_through_the_binding() {
    // Goal: the binding carries detection to a service the model was not
    // written for. Method: one service per fault, a fixed seed each.
    let cases: &[(&str, u64, Clause)] = &[
        ("account-path-trusted", 1, Clause::Ownership),
        ("download-link-unsigned", 1, Clause::Content),
        ("visit-clips-unchecked", 1, Clause::Ownership),
    ];
    for (fault, seed, clause) in cases {
        let report = run(fault, *seed, 512);
        assert_eq!(
            report.verdict(),
            Verdict::Violation,
            "{fault}: {:?}",
            report.verdict()
        );
        assert_eq!(clause_of(&report), Some(*clause), "{fault}");
        let steps = &report.finding.as_ref().unwrap().steps;
        assert!(steps.len() <= 10, "{fault}: {} steps", steps.len());
    }
}
