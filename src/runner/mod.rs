//! Runners: the ways Chaperone explores a target.
//!
//! - [`check`]: sequential search with proptest-state-machine and shrinking.
//! - [`replay`]: a scenario file's steps, as written, N times.
//! - [`gate`]: the CI gate: every checked-in scenario, then fixed seeds.
//! - [`replay`]: a scenario file's steps, as written, N times (steps grouped
//!   with `&` sent together).
//! - [`soak`]: many concurrent patients against one service for a while.
//!
//! **Architecture invariant:** the runner is the only place a violation ends a
//! case; the oracle only reports and the driver only records.

pub mod check;
mod execute;
pub mod gate;
pub mod replay;
pub mod soak;

pub use check::{CheckConfig, CheckReport, Finding, Progress, check, run_case};
pub use execute::{
    CaseEnd, CaseRun, Trace, alone_for_comparison, alone_steps, differs, execute, execute_grouped,
    interfered, suspects,
};
pub use gate::{
    GateConfig, GateProgress, GateReport, ScenarioOutcome, ScenarioResult, SeedResult, gate,
};
pub use replay::{ReplayReport, Reproduction, replay, replay_until, run_grouped};

/// The verdict of a run, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing leaked and the model was exercised: exit 0.
    Pass,
    /// A privacy violation was found: exit 1.
    Violation,
    /// The target failed, or too little was exercised: exit 3.
    Unknown(String),
}

impl Verdict {
    /// The process exit code (DESIGN.md: 0 pass, 1 violation, 3 unknown).
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Violation => 1,
            Verdict::Unknown(_) => 3,
        }
    }

    /// `pass`, `violation` or `unknown`.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Violation => "violation",
            Verdict::Unknown(_) => "unknown",
        }
    }
}

/// The verdict's reason when `--strict` meets completeness warnings.
pub fn strict_failure(warnings: u64) -> String {
    format!(
        "{warnings} completeness warning(s) under --strict: a patient's own finished recording was missing from \
         their view (the service lost or hid it)"
    )
}

impl CheckReport {
    /// The verdict: a finding always wins (no finding is lost); otherwise a
    /// target failure, a divergence or an action never exercised makes it unknown.
    pub fn verdict(&self) -> Verdict {
        if self.finding.is_some() {
            return Verdict::Violation;
        }
        if let Some(failure) = &self.target_failure {
            return Verdict::Unknown(format!("the target failed: {failure}"));
        }
        if let Some(divergence) = &self.first_divergence {
            return Verdict::Unknown(format!(
                "the service refused steps the model holds valid in {} case(s), first: {divergence}",
                self.diverged_cases
            ));
        }
        if self.config.strict && self.warnings_count > 0 {
            return Verdict::Unknown(strict_failure(self.warnings_count));
        }
        if self.own_seen == 0 && self.warnings_count > 0 && !self.config.accept_incomplete {
            return Verdict::Unknown(format!(
                "patients never saw their own finished recordings ({} completeness warnings): the service shows too \
                 little to judge; pass --accept-incomplete to accept it",
                self.warnings_count
            ));
        }
        let caps = self.config.limits.caps;
        let never: Vec<&str> = crate::model::ACTIONS
            .iter()
            .zip(self.coverage)
            .enumerate()
            .filter(|(i, (_, n))| *n == 0 && caps.offers(*i))
            .map(|(_, (a, _))| *a)
            .collect();
        if !never.is_empty() {
            // Advice the user can follow: a probe needs a second patient.
            let advice = if never.contains(&"probe") && self.config.limits.patients_max < 2 {
                "raise --patients-max to 2 or more (a probe needs a second patient)"
            } else {
                "raise --cases or --steps-max"
            };
            return Verdict::Unknown(format!(
                "too little of the model was exercised: never ran {}; {advice}",
                never.join(", ")
            ));
        }
        Verdict::Pass
    }
}
