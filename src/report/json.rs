//! The machine-readable report (`--json FILE`): verdict, limits, coverage and
//! violations in aliases. No ids, tokens or bodies.

use serde_json::{Value, json};

use crate::model::ACTIONS;
use crate::oracle::Violation;
use crate::runner::{CheckReport, GateReport, ScenarioOutcome, Verdict};

/// One violation as JSON.
pub fn violation(v: &Violation) -> Value {
    json!({
        "clause": v.clause.name(),
        "step": v.step,
        "patient": v.patient.to_string(),
        "field": v.field,
        "message": v.to_string(),
    })
}

/// The report of a `run`.
pub fn check_report(
    report: &CheckReport,
    target: &str,
    faults: &[&str],
    scenario_path: Option<&str>,
) -> Value {
    let verdict = report.verdict();
    let coverage: serde_json::Map<String, Value> = ACTIONS
        .iter()
        .zip(report.coverage)
        .map(|(a, n)| (a.to_string(), json!(n)))
        .collect();
    json!({
        "tool": "chaperone",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "run",
        "verdict": verdict.name(),
        "exit_code": verdict.exit_code(),
        "unknown_reason": match &verdict { Verdict::Unknown(why) => Some(why.clone()), _ => None },
        "target": target,
        "faults": faults,
        "seed": report.config.seed,
        "limits": {
            "cases": report.config.cases,
            "steps_max": report.config.steps_max,
            "patients_max": report.config.limits.patients_max,
            "history_pages_max": report.config.limits.history_pages_max,
            "shrink_runs_max": report.config.shrink_runs_max,
        },
        "cases_run": report.cases_run,
        "steps_run": report.steps_run,
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "coverage": coverage,
        "completeness_warnings": report.warnings_count,
        "diverged_cases": report.diverged_cases,
        "finding": report.finding.as_ref().map(|f| json!({
            "case": f.case,
            "found_after_ms": f.found_after.as_millis() as u64,
            "original_steps": f.original_len,
            "steps": f.steps.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "shrink_runs": f.shrink_runs,
            "shrink_interrupted": f.shrink_interrupted,
            "violations": f.violations.iter().map(violation).collect::<Vec<_>>(),
            "scenario_file": scenario_path,
        })),
    })
}

/// The report of a `gate`: the verdict, every scenario and every seed
/// (each seed as a `run` report, with the scenario file of its finding).
pub fn gate_report(
    report: &GateReport,
    target: &str,
    faults: &[&str],
    scenario_paths: &[(u64, String)],
) -> Value {
    let verdict = report.verdict();
    let scenarios: Vec<Value> = report
        .scenarios
        .iter()
        .map(|s| {
            let (outcome, reason) = match &s.outcome {
                ScenarioOutcome::Met => ("met", None),
                ScenarioOutcome::NotMet(why) => ("not_met", Some(why.clone())),
                ScenarioOutcome::Unknown(why) => ("unknown", Some(why.clone())),
                ScenarioOutcome::Skipped(why) => ("skipped", Some(why.clone())),
            };
            json!({
                "file": s.file.display().to_string(),
                "outcome": outcome,
                "reason": reason,
                "elapsed_ms": s.elapsed.as_millis() as u64,
            })
        })
        .collect();
    let seeds: Vec<Value> = report
        .seeds
        .iter()
        .map(|s| match &s.report {
            None => json!({ "seed": s.seed, "skipped": "the time budget ran out before this seed started" }),
            Some(check) => {
                let path = scenario_paths
                    .iter()
                    .find(|(seed, _)| *seed == s.seed)
                    .map(|(_, p)| p.as_str());
                check_report(check, target, faults, path)
            }
        })
        .collect();
    json!({
        "tool": "chaperone",
        "version": env!("CARGO_PKG_VERSION"),
        "command": "gate",
        "verdict": verdict.name(),
        "exit_code": verdict.exit_code(),
        "unknown_reason": match &verdict { Verdict::Unknown(why) => Some(why.clone()), _ => None },
        "target": target,
        "faults": faults,
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "scenarios": scenarios,
        "seeds": seeds,
    })
}
