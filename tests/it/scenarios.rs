//! Every checked-in scenario under `scenarios/` (not `scenarios/found/`, which
//! holds a developer's own findings) replays to its expected outcome.

use chaperone::runner::{self, CaseEnd};
use chaperone::scenario::{Expect, Scenario};
use chaperone::target::Target;
use clinic::Fault;

use super::*;

#[test]
fn every_checked_in_scenario_meets_its_expected_outcome() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut faults_covered = std::collections::BTreeSet::new();
    let rt = runtime();
    for file in &files {
        let scenario = Scenario::read(file).unwrap_or_else(|e| panic!("{e}"));
        faults_covered.extend(scenario.faults.iter());
        let target = Target::new(scenario.target.clone(), scenario.faults.clone());
        let report = rt.block_on(runner::replay(&target, &scenario, 1));
        let run = &report.runs[0];
        match scenario.expect {
            Expect::Pass => assert_eq!(run.end, CaseEnd::Passed, "{}", file.display()),
            Expect::Violation(clause) => {
                assert!(
                    clauses(run).contains(&clause),
                    "{}: expected {clause}, got {:?}",
                    file.display(),
                    run.end
                )
            }
        }
    }
    // At least one checked-in scenario per fault.
    for fault in Fault::ALL {
        assert!(
            faults_covered.contains(&fault),
            "no scenario in scenarios/ for {fault}"
        );
    }
}
