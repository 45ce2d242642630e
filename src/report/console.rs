//! Console text. Functions return strings so tests can snapshot them; the
//! binary decides where they go. Nothing here is timing-dependent except the
//! lines that say so.

use std::fmt::Write as _;

use crate::model::{ACTIONS, Step};
use crate::oracle::{Clause, Violation};
use crate::runner::{CheckConfig, CheckReport, Finding};

/// What each clause demands, in one sentence.
pub fn clause_rule(clause: Clause) -> &'static str {
    match clause {
        Clause::Ownership => {
            "every recording a patient is shown must be one the model attributes to that patient"
        }
        Clause::Content => "no bytes a patient receives may carry another patient's canary",
        Clause::Refusal => {
            "a request for another patient's recording or object, or with a forged credential, must be refused (401/403/404), and refused as an id that never existed is"
        }
        Clause::Erasure => {
            "a recording its owner erased must never be visible again, to anyone, and its bytes must be gone from the store"
        }
        Clause::Integrity => {
            "every field the model can predict (a view's total, a recording's kind, call, appointment, size and owner) matches it"
        }
        Clause::Noninterference => {
            "what a patient may do and sees must not depend on what other patients do"
        }
        Clause::Completeness => "a patient's own finished recordings must appear",
    }
}

/// The first line of a run: the seed and every limit, so it can be repeated.
pub fn header(command: &str, target: &str, faults: &str, config: &CheckConfig) -> String {
    format!(
        "chaperone {command}: seed {} | cases {} | steps-max {} | patients-max {} | history-pages-max {} | shrink-runs-max {} | target {target} | faults {faults}",
        config.seed,
        config.cases,
        config.steps_max,
        config.limits.patients_max,
        config.limits.history_pages_max,
        config.shrink_runs_max,
    )
}

/// The numbered steps, the failing one marked.
pub fn steps_listing(steps: &[Step], failing_step: Option<usize>) -> String {
    let mut out = String::new();
    for (i, step) in steps.iter().enumerate() {
        let mark = if Some(i + 1) == failing_step {
            "   <- violation"
        } else {
            ""
        };
        let _ = writeln!(out, "  {:>3}  {step}{mark}", i + 1);
    }
    out
}

/// The explanation of a violation: what failed, the minimal steps, why.
/// Contains no timings, so it can be snapshot-tested.
pub fn explain(steps: &[Step], violations: &[Violation], original_len: Option<usize>) -> String {
    let mut out = String::new();
    let mut clauses: Vec<Clause> = violations.iter().map(|v| v.clause).collect();
    clauses.sort();
    clauses.dedup();
    let names: Vec<&str> = clauses.iter().map(|c| c.name()).collect();
    let step = violations.first().map(|v| v.step);
    let _ = writeln!(out, "VIOLATION of {}", names.join(" + "));
    let _ = writeln!(out);
    match original_len {
        Some(n) if n != steps.len() => {
            let _ = writeln!(
                out,
                "Minimal scenario ({} steps, shrunk from {n}):",
                steps.len()
            );
        }
        _ => {
            let _ = writeln!(out, "Scenario ({} steps):", steps.len());
        }
    }
    out.push_str(&steps_listing(steps, step));
    let _ = writeln!(out);
    let _ = writeln!(out, "Why it fails:");
    for clause in &clauses {
        let _ = writeln!(out, "  {clause}: {}.", clause_rule(*clause));
        for v in violations.iter().filter(|v| v.clause == *clause) {
            let _ = writeln!(out, "    step {}: {v}.", v.step);
        }
    }
    out
}

/// The explanation of a `check` finding plus where it was written and how to replay it.
pub fn finding(finding: &Finding, scenario_path: Option<&str>, replay: Option<&str>) -> String {
    let mut out = explain(
        &finding.steps,
        &finding.violations,
        Some(finding.original_len),
    );
    if let Some(why) = &finding.shrink_interrupted {
        let _ = writeln!(
            out,
            "\nShrinking stopped early, so this may not be minimal: {why}"
        );
    }
    if let Some(path) = scenario_path {
        let _ = writeln!(out, "\nScenario written to {path}");
    }
    if let Some(replay) = replay {
        let _ = writeln!(out, "Replay it: {replay}");
    }
    out
}

/// How often each action ran, as `register 12, book 30, ...`.
pub fn coverage(coverage: &[u64; ACTIONS.len()]) -> String {
    ACTIONS
        .iter()
        .zip(coverage)
        .map(|(a, n)| format!("{a} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closing paragraph of a run (includes timings).
pub fn summary(report: &CheckReport) -> String {
    let secs = report.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        f64::from(report.cases_run) / secs
    } else {
        0.0
    };
    let mut out = format!(
        "{} cases ({} steps) in {secs:.2} s, {rate:.0} cases/s. Actions covered: {}.",
        report.cases_run,
        report.steps_run,
        coverage(&report.coverage)
    );
    if report.warnings_count > 0 {
        let _ = write!(
            out,
            " {} completeness warning(s) (not privacy leaks), first: {}.",
            report.warnings_count,
            report
                .warnings
                .first()
                .map(ToString::to_string)
                .unwrap_or_default()
        );
    }
    if let Some(f) = &report.finding {
        let _ = write!(
            out,
            " Found in case {} after {:.2} s; shrunk {} -> {} steps in {} runs.",
            f.case,
            f.found_after.as_secs_f64(),
            f.original_len,
            f.steps.len(),
            f.shrink_runs
        );
    }
    out
}
