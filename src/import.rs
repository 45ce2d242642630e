//! `import-fuzz`: a `flows` fuzz crash input into a scenario file.
//!
//! The artifact's bytes decode exactly as the `flows` fuzz target decoded
//! them ([`model::Flow`]); the steps run against the embedded clinic with
//! the given faults (the target `chaperone replay` uses), are cut after the
//! first violating step, shrunk (drop whole patients, then single steps,
//! pruning dependants) and renumbered. The scenario records the faults and
//! the clause the shrunk steps violate, so `chaperone replay` reproduces it.
//!
//! **Invariant:** a scenario is only produced from a run that violated the
//! property; an input that passes, diverges or makes the target fail is an
//! [`ImportError`], never a scenario.

use crate::model::{self, Limits, PatientId, Step};
use crate::oracle::{Clause, Violation};
use crate::runner::{CaseEnd, CaseRun, run_case};
use crate::scenario::{Expect, Scenario};
use crate::target::{Target, TargetSpec};

/// Most cases run while shrinking an imported input.
pub const IMPORT_SHRINK_RUNS_MAX: u32 = 1_000;

/// Why an artifact could not become a scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The bytes decode to no step at all.
    #[error(
        "the input decodes to no step (a `flows` input is 3 bytes per action, starting with a register)"
    )]
    NoSteps,
    /// The steps ran without any violation.
    #[error(
        "its {steps} steps pass against the embedded clinic with faults {faults}: no violation to import; \
         pass the --fault names the fuzzer ran with (CHAPERONE_FUZZ_FAULTS)"
    )]
    NoViolation {
        /// Steps decoded.
        steps: usize,
        /// The faults it ran with.
        faults: String,
    },
    /// The target failed or the clinic diverged from the model: unknown.
    #[error("the embedded clinic gave no verdict at step {step}: {reason}")]
    Unknown {
        /// The step, from 1.
        step: usize,
        /// What happened, in aliases.
        reason: String,
    },
}

/// An imported artifact.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The scenario to write.
    pub scenario: Scenario,
    /// What its last step violates.
    pub violations: Vec<Violation>,
    /// Steps the artifact decoded to.
    pub decoded_len: usize,
    /// Cases run while shrinking.
    pub shrink_runs: u32,
}

struct Shrink<'a> {
    target: &'a Target,
    limits: Limits,
    runs: u32,
}

impl Shrink<'_> {
    async fn run(&mut self, steps: &[Step]) -> CaseRun {
        self.runs += 1;
        run_case(self.target, self.limits, steps, None).await
    }

    /// The failing prefix of `steps` if it still violates the property.
    async fn still_fails(&mut self, steps: &[Step]) -> Option<Vec<Step>> {
        if self.runs >= IMPORT_SHRINK_RUNS_MAX || steps.is_empty() {
            return None;
        }
        let run = self.run(steps).await;
        run.violations()?;
        Some(steps[..run.steps_run].to_vec())
    }

    async fn minimize(&mut self, mut best: Vec<Step>) -> Vec<Step> {
        let mut patients: Vec<PatientId> = best.iter().map(Step::patient).collect();
        patients.sort();
        patients.dedup();
        for patient in patients {
            let without: Vec<Step> = best
                .iter()
                .filter(|s| s.patient() != patient)
                .cloned()
                .collect();
            if let Some(smaller) = self.still_fails(&model::prune(self.limits, &without)).await {
                best = smaller;
            }
        }
        loop {
            let before = best.len();
            let mut i = 0;
            while i < best.len() {
                let mut without = best.clone();
                without.remove(i);
                match self.still_fails(&model::prune(self.limits, &without)).await {
                    Some(smaller) => best = smaller,
                    None => i += 1,
                }
            }
            if best.len() == before || self.runs >= IMPORT_SHRINK_RUNS_MAX {
                return best;
            }
        }
    }
}

/// Decode `bytes` as a `flows` input, run it against the embedded clinic
/// with `target`'s faults, shrink the violation and make it a scenario.
pub async fn import(target: &Target, bytes: &[u8]) -> Result<Imported, ImportError> {
    let limits = Limits {
        caps: target.binding().caps,
        ..Limits::default()
    };
    let steps = model::decode(bytes, limits);
    if steps.is_empty() {
        return Err(ImportError::NoSteps);
    }
    let mut shrink = Shrink {
        target,
        limits,
        runs: 0,
    };
    let first = shrink.run(&steps).await;
    match &first.end {
        CaseEnd::Violated { .. } => {}
        CaseEnd::Passed => {
            return Err(ImportError::NoViolation {
                steps: steps.len(),
                faults: faults_label(target),
            });
        }
        CaseEnd::Diverged { step, reason, .. } => {
            return Err(ImportError::Unknown {
                step: *step,
                reason: reason.clone(),
            });
        }
        CaseEnd::TargetFailed { step, error } => {
            return Err(ImportError::Unknown {
                step: *step,
                reason: error.to_string(),
            });
        }
    }
    shrink.runs = 0;
    let prefix = steps[..first.steps_run].to_vec();
    let best = shrink.minimize(prefix.clone()).await;
    // Renumbering is a bijection on aliases; the violations are observed
    // again on the renamed steps so that they name the scenario's aliases.
    let renamed = model::renumber(&best);
    let final_run = shrink.run(&renamed).await;
    let (steps, violations) = match final_run.violations() {
        Some(v) => (renamed, v.to_vec()),
        // The shrunk steps stopped failing when run again (a flaky fault):
        // keep the unshrunk prefix, which did fail.
        None => (prefix, first.violations().unwrap_or_default().to_vec()),
    };
    let clause = violations
        .iter()
        .map(|v| v.clause)
        .min()
        .unwrap_or(Clause::Ownership);
    Ok(Imported {
        scenario: Scenario {
            description: Some(format!(
                "Imported from a `flows` fuzz input whose first {} steps violate the property, shrunk.",
                first.steps_run
            )),
            target: TargetSpec::Embedded,
            binding: target.binding().name.clone(),
            faults: target.faults().clone(),
            seed: None,
            expect: Expect::Violation(clause),
            steps,
            groups: Vec::new(),
            stagger_us: Vec::new(),
        },
        violations,
        decoded_len: first.steps_run,
        shrink_runs: shrink.runs,
    })
}

fn faults_label(target: &Target) -> String {
    if target.faults().is_empty() {
        "none".to_string()
    } else {
        target.faults().to_string()
    }
}
