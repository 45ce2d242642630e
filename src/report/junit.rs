//! JUnit XML for the gate (`chaperone gate --junit FILE`), via quick-junit.
//!
//! Two suites: `scenarios` (one test case per checked-in scenario) and
//! `explore` (one per seed). A violation is a failure, an unknown an error, a
//! scenario or seed that could not run is skipped with its reason. Messages
//! carry aliases and clauses only, like every other report.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::runner::{GateReport, ScenarioOutcome, Verdict};

/// The gate's JUnit XML document.
pub fn gate_report(report: &GateReport, target: &str) -> String {
    let mut junit = Report::new(format!("chaperone gate ({target})"));
    junit.set_time(report.elapsed);

    let mut scenarios = TestSuite::new("scenarios");
    for result in &report.scenarios {
        let status = match &result.outcome {
            ScenarioOutcome::Met => TestCaseStatus::success(),
            ScenarioOutcome::NotMet(why) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(why.as_str()).set_type("expectation not met");
                s
            }
            ScenarioOutcome::Unknown(why) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_message(why.as_str()).set_type("unknown");
                s
            }
            ScenarioOutcome::Skipped(why) => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(why.as_str());
                s
            }
        };
        let mut case = TestCase::new(result.file.display().to_string(), status);
        case.set_classname("scenarios").set_time(result.elapsed);
        scenarios.add_test_case(case);
    }
    junit.add_test_suite(scenarios);

    let mut explore = TestSuite::new("explore");
    for seed in &report.seeds {
        let name = format!("seed {}", seed.seed);
        let mut case = match &seed.report {
            None => {
                let mut s = TestCaseStatus::skipped();
                s.set_message("the time budget ran out before this seed started");
                TestCase::new(name, s)
            }
            Some(check) => {
                let status = match check.verdict() {
                    Verdict::Pass => TestCaseStatus::success(),
                    Verdict::Violation => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        let finding = check.finding.as_ref();
                        let message = finding
                            .and_then(|f| f.violations.first())
                            .map_or_else(|| "privacy violation".to_string(), ToString::to_string);
                        s.set_message(message).set_type("privacy violation");
                        if let Some(f) = finding {
                            let steps: Vec<String> =
                                f.steps.iter().map(ToString::to_string).collect();
                            s.set_description(steps.join("\n"));
                        }
                        s
                    }
                    Verdict::Unknown(why) => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                        s.set_message(why).set_type("unknown");
                        s
                    }
                };
                let mut case = TestCase::new(name, status);
                case.set_time(check.elapsed);
                case
            }
        };
        case.set_classname("explore");
        explore.add_test_case(case);
    }
    junit.add_test_suite(explore);
    junit
        .to_string()
        .unwrap_or_else(|e| format!("<!-- cannot serialize the JUnit report: {e} -->\n"))
}
