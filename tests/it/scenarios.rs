//! Every checked-in scenario under `scenarios/` and `scenarios/fhir/` (not
//! `scenarios/found/`, which holds a developer's own findings) replays to its
//! expected outcome, through the binding it names (`bindings/{binding}.toml`):
//! the `/v1` ones through `clinic`, the FHIR ones through `clinic-fhir`.
//!
//! A concurrent scenario (steps sent together, `&`) shows a race, which the
//! scheduler may or may not interleave on a given run. It is replayed
//! `RACE_REPEATS` times: a violation scenario must reproduce at least once
//! (its groups are made large enough that it does so on nearly every run), a
//! pass scenario must pass every time.

use chaperone::runner::{self, CaseEnd};
use chaperone::scenario::{Expect, Scenario};
use chaperone::target::Target;
use clinic::Fault;

use super::*;

/// Replays of a concurrent scenario.
const RACE_REPEATS: u32 = 10;

#[test]
fn every_checked_in_scenario_meets_its_expected_outcome() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = [root.clone(), root.join("fhir")]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(dir)
                .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    // Which faults have a scenario, per binding name.
    let mut faults_covered: std::collections::BTreeSet<(String, Fault)> = Default::default();
    let rt = runtime();
    for file in &files {
        let scenario = Scenario::read(file).unwrap_or_else(|e| panic!("{e}"));
        let binding = checked_in_binding(&format!("{}.toml", scenario.binding));
        assert_eq!(binding.name, scenario.binding, "{}", file.display());
        faults_covered.extend(
            scenario
                .faults
                .iter()
                .map(|f| (scenario.binding.clone(), f)),
        );
        let target =
            Target::new(scenario.target.clone(), scenario.faults.clone()).with_binding(binding);
        let repeats = if scenario.is_concurrent() {
            RACE_REPEATS
        } else {
            1
        };
        let report = rt.block_on(runner::replay(&target, &scenario, repeats));
        assert_eq!(report.unknown(), None, "{}", file.display());
        let run = match scenario.expect {
            Expect::Pass => report
                .runs
                .iter()
                .find(|r| r.end != CaseEnd::Passed)
                .unwrap_or(&report.runs[0]),
            Expect::Violation(_) => report
                .runs
                .iter()
                .find(|r| r.violations().is_some())
                .unwrap_or(&report.runs[0]),
        };
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
    // At least one checked-in scenario per fault the `/v1` shape shows, and
    // one through the FHIR binding per FHIR-only fault (in scenarios/fhir/).
    for fault in Fault::ALL {
        let binding = if fault.fhir_only() {
            "clinic-fhir"
        } else {
            "clinic"
        };
        assert!(
            faults_covered.contains(&(binding.to_string(), fault)),
            "no scenario through the binding `{binding}` for {fault}"
        );
    }
}
