//! `gate`: the CI-gate run. First every checked-in scenario replays against
//! the chosen target and must meet its expected outcome; then `check`
//! explores with a fixed list of seeds while the time budget lasts.
//!
//! **Invariants:** the budget only decides whether the *next* seed starts; a
//! started seed always finishes, shrinking included, so no finding is lost to
//! the clock. Seeds the budget left out are reported as skipped, and a gate
//! where no seed ran is unknown, never a pass. A scenario whose faults the
//! target cannot plant (a URL) is skipped and says why.
//!
//! Each scenario replays with its own faults: the embedded clinic is fresh per
//! case anyway; containers are started once per distinct fault set and
//! shared by the scenarios that have it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clinic::FaultSet;

use super::Verdict;
use super::check::{CheckConfig, CheckReport, Progress, check};
use super::execute::CaseEnd;
use super::replay::replay;
use crate::binding::Binding;
use crate::scenario::{Expect, Scenario};
use crate::target::{Target, TargetSpec};

/// Everything that bounds a gate run.
#[derive(Debug, Clone)]
pub struct GateConfig {
    /// The seeds to explore, in order.
    pub seeds: Vec<u64>,
    /// Per seed: cases, steps, limits, shrink runs (its `seed` is replaced).
    pub check: CheckConfig,
    /// No new seed starts after this much time.
    pub budget: Duration,
    /// Response body caps for every target the gate starts.
    pub body_limits: crate::driver::http::BodyLimits,
}

/// How a scenario's replay compared with its expected outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioOutcome {
    /// It did what it expects.
    Met,
    /// It did not: a regression (or a fix nobody recorded).
    NotMet(String),
    /// The target failed or disagreed with the model: no verdict.
    Unknown(String),
    /// It could not be run against this target.
    Skipped(String),
}

/// One replayed scenario.
#[derive(Debug, Clone)]
pub struct ScenarioResult {
    /// The file, as given.
    pub file: PathBuf,
    /// What it expects.
    pub expect: Expect,
    /// What happened.
    pub outcome: ScenarioOutcome,
    /// Wall time.
    pub elapsed: Duration,
}

/// One explored seed.
#[derive(Debug, Clone)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// The check's report, or `None` if the budget ran out before it started.
    pub report: Option<CheckReport>,
}

/// Everything a gate run found.
#[derive(Debug, Clone)]
pub struct GateReport {
    /// The scenarios, in file order.
    pub scenarios: Vec<ScenarioResult>,
    /// The seeds, in order.
    pub seeds: Vec<SeedResult>,
    /// Wall time of the whole gate.
    pub elapsed: Duration,
}

impl GateReport {
    /// The gate's verdict: any finding or unmet scenario is a violation (1);
    /// otherwise any unknown, or no seed explored, is unknown (3); else pass.
    pub fn verdict(&self) -> Verdict {
        let unmet = self
            .scenarios
            .iter()
            .filter(|s| matches!(s.outcome, ScenarioOutcome::NotMet(_)))
            .count();
        let findings = self
            .seeds
            .iter()
            .filter_map(|s| s.report.as_ref())
            .filter(|r| r.finding.is_some())
            .count();
        if unmet + findings > 0 {
            return Verdict::Violation;
        }
        if let Some(s) = self.scenarios.iter().find_map(|s| match &s.outcome {
            ScenarioOutcome::Unknown(why) => Some(format!("{}: {why}", s.file.display())),
            _ => None,
        }) {
            return Verdict::Unknown(format!("a scenario could not be judged: {s}"));
        }
        for seed in &self.seeds {
            if let Some(report) = &seed.report
                && let Verdict::Unknown(why) = report.verdict()
            {
                return Verdict::Unknown(format!("seed {}: {why}", seed.seed));
            }
        }
        if !self.seeds.iter().any(|s| s.report.is_some()) {
            return Verdict::Unknown(
                "no seed was explored (empty --seeds or the budget ran out during the scenarios)"
                    .into(),
            );
        }
        Verdict::Pass
    }
}

/// Hooks for the gate's progress; the runner prints nothing.
pub trait GateProgress {
    /// A scenario was replayed.
    fn scenario_done(&mut self, _result: &ScenarioResult) {}
    /// A seed starts exploring.
    fn seed_started(&mut self, _seed: u64) {}
    /// A seed finished (or was skipped).
    fn seed_done(&mut self, _result: &SeedResult) {}
    /// The per-case progress of the current seed.
    fn check_progress(&mut self) -> &mut dyn Progress;
}

impl GateProgress for () {
    fn check_progress(&mut self) -> &mut dyn Progress {
        self
    }
}

/// How often the gate replays a concurrent (`&`-grouped) scenario.
pub const RACE_REPEATS: u32 = 10;

fn judge(scenario: &Scenario, report: &super::ReplayReport) -> ScenarioOutcome {
    // With repeats (a concurrent scenario), judge the run that tells most: a
    // run that broke the expectation or failed, else the first.
    let telling = report.runs.iter().find(|r| match scenario.expect {
        Expect::Pass => r.end != CaseEnd::Passed,
        Expect::Violation(_) => r.violations().is_some(),
    });
    let Some(run) = telling.or(report.runs.first()) else {
        return ScenarioOutcome::Unknown("no run".into());
    };
    let clauses = report.clauses();
    match (&scenario.expect, &run.end) {
        (Expect::Violation(clause), _) if clauses.contains(clause) => ScenarioOutcome::Met,
        (Expect::Pass, CaseEnd::Passed) => ScenarioOutcome::Met,
        (_, CaseEnd::TargetFailed { step, error }) => {
            ScenarioOutcome::Unknown(format!("the target failed at step {step}: {error}"))
        }
        (_, CaseEnd::Diverged { step, reason, .. }) => {
            ScenarioOutcome::Unknown(format!("step {step}: {reason}"))
        }
        (Expect::Pass, CaseEnd::Violated { violations }) => ScenarioOutcome::NotMet(format!(
            "expected pass, got a violation of {}",
            violations
                .iter()
                .map(|v| v.clause.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Expect::Violation(clause), CaseEnd::Violated { violations }) => {
            ScenarioOutcome::NotMet(format!(
                "expected a violation of {clause}, got {}",
                violations
                    .iter()
                    .map(|v| v.clause.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        (Expect::Violation(clause), CaseEnd::Passed) => ScenarioOutcome::NotMet(format!(
            "expected a violation of {clause}, the steps passed"
        )),
    }
}

/// Run the gate against `spec`: replay `scenarios` (each with its own
/// faults), then explore with `faults` planted.
pub async fn gate(
    spec: &TargetSpec,
    binding: &Arc<Binding>,
    faults: &FaultSet,
    scenarios: &[(PathBuf, Scenario)],
    config: &GateConfig,
    progress: &mut dyn GateProgress,
) -> GateReport {
    let started = Instant::now();
    // One target per fault set: containers start once per set, not per scenario.
    let mut targets: HashMap<FaultSet, Target> = HashMap::new();
    let mut results = Vec::new();
    for (file, scenario) in scenarios {
        let scenario_started = Instant::now();
        let outcome = if !spec.plants_faults() && !scenario.faults.is_empty() {
            ScenarioOutcome::Skipped(format!(
                "target {spec} cannot plant the scenario's faults ({})",
                scenario.faults
            ))
        } else if let Some(i) = crate::model::first_outside(binding.caps, &scenario.steps) {
            ScenarioOutcome::Skipped(format!(
                "the binding `{}` cannot perform step `{}`",
                binding.name, scenario.steps[i]
            ))
        } else {
            let plant = if spec.plants_faults() {
                scenario.faults.clone()
            } else {
                FaultSet::default()
            };
            let target = targets.entry(plant.clone()).or_insert_with(|| {
                Target::new(spec.clone(), plant)
                    .with_binding(binding.clone())
                    .with_body_limits(config.body_limits)
            });
            match target.probe().await {
                Err(error) => ScenarioOutcome::Unknown(format!("the target is not ready: {error}")),
                Ok(()) => {
                    // A race need not happen on every run: a concurrent
                    // scenario meets its expectation if any of its repeats
                    // shows the violation (and, expecting a pass, if none does).
                    let repeats = if scenario.is_concurrent() {
                        RACE_REPEATS
                    } else {
                        1
                    };
                    judge(scenario, &replay(target, scenario, repeats).await)
                }
            }
        };
        let result = ScenarioResult {
            file: file.clone(),
            expect: scenario.expect,
            outcome,
            elapsed: scenario_started.elapsed(),
        };
        progress.scenario_done(&result);
        results.push(result);
    }
    // Scenario environments are not needed any more, except the one with the
    // exploration's faults, which the seeds reuse.
    let explore = targets.remove(faults).unwrap_or_else(|| {
        Target::new(spec.clone(), faults.clone())
            .with_binding(binding.clone())
            .with_body_limits(config.body_limits)
    });
    for (_, target) in targets.drain() {
        target.shutdown().await;
    }

    let mut seeds = Vec::new();
    for &seed in &config.seeds {
        if started.elapsed() >= config.budget {
            let result = SeedResult { seed, report: None };
            progress.seed_done(&result);
            seeds.push(result);
            continue;
        }
        progress.seed_started(seed);
        let report = match explore.probe().await {
            Ok(()) => {
                let check_config = CheckConfig {
                    seed,
                    ..config.check.clone()
                };
                check(&explore, &check_config, progress.check_progress()).await
            }
            Err(error) => CheckReport {
                config: CheckConfig {
                    seed,
                    ..config.check.clone()
                },
                cases_run: 0,
                steps_run: 0,
                coverage: [0; crate::model::ACTIONS.len()],
                warnings: Vec::new(),
                warnings_count: 0,
                own_seen: 0,
                diverged_cases: 0,
                first_divergence: None,
                finding: None,
                // No case ran: the seed is unknown, never a pass.
                target_failure: Some(format!("the target is not ready: {error}")),
                elapsed: Duration::ZERO,
            },
        };
        let result = SeedResult {
            seed,
            report: Some(report),
        };
        progress.seed_done(&result);
        seeds.push(result);
    }
    explore.shutdown().await;
    GateReport {
        scenarios: results,
        seeds,
        elapsed: started.elapsed(),
    }
}
