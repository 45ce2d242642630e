//! `replay`: run a scenario's steps as written, `repeat` times, and say whether
//! its violation REPRODUCED, was FLAKY or is FIXED. Steps a scenario groups
//! together (`&`) are sent concurrently, so a race found by a soak replays as a
//! race: its reproduction rate is what `--repeat` measures. A soak's scenario
//! also records when each step of a group was sent (`stagger_us`); the first
//! repeat keeps that spacing, later ones jitter around it.

use super::check::run_case;
use super::execute::{CaseEnd, CaseRun, execute_grouped};
use crate::binding::NoninterferenceCheck;
use crate::model;
use crate::model::{Limits, Step};
use crate::oracle::{Canaries, Clause};
use crate::scenario::{Expect, Scenario};
use crate::target::Target;

/// What `repeat` replays of one scenario showed.
#[derive(Debug, Clone)]
pub struct ReplayReport {
    /// Every run, in order.
    pub runs: Vec<CaseRun>,
}

/// The three answers a developer wants from a replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reproduction {
    /// Every run violated the property.
    Reproduced,
    /// Some runs did, some did not.
    Flaky,
    /// No run did.
    Fixed,
}

impl ReplayReport {
    /// Runs that violated the property (any clause).
    pub fn violating(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| r.violations().is_some())
            .count()
    }

    /// Runs that reached a verdict: neither the target failed nor the service
    /// diverged from the model before a violation.
    pub fn decided(&self) -> usize {
        self.runs.iter().filter(|r| !is_unknown(r)).count()
    }

    /// Runs that showed what the scenario records: a violation of its clause
    /// (for a scenario expected to pass: any violation, a regression).
    pub fn reproducing(&self, expect: Expect) -> usize {
        self.runs
            .iter()
            .filter(|r| match (expect, r.violations()) {
                (_, None) => false,
                (Expect::Pass, Some(_)) => true,
                (Expect::Violation(clause), Some(v)) => v.iter().any(|v| v.clause == clause),
            })
            .count()
    }

    /// The first target failure or divergence, if any run hit one.
    pub fn unknown(&self) -> Option<String> {
        self.runs.iter().find_map(|r| match &r.end {
            CaseEnd::TargetFailed { step, error } => Some(format!("step {step}: {error}")),
            CaseEnd::Diverged { step, reason, .. } => Some(format!("step {step}: {reason}")),
            _ => None,
        })
    }

    /// REPRODUCED, FLAKY or FIXED over the decided runs; `None` if none was decided.
    pub fn reproduction(&self, expect: Expect) -> Option<Reproduction> {
        let decided = self.decided();
        match self.reproducing(expect) {
            _ if decided == 0 => None,
            0 => Some(Reproduction::Fixed),
            n if n == decided => Some(Reproduction::Reproduced),
            _ => Some(Reproduction::Flaky),
        }
    }

    /// The clauses violated in any run.
    pub fn clauses(&self) -> Vec<Clause> {
        let mut clauses: Vec<Clause> = self
            .runs
            .iter()
            .filter_map(|r| r.violations())
            .flatten()
            .map(|v| v.clause)
            .collect();
        clauses.sort();
        clauses.dedup();
        clauses
    }
}

fn is_unknown(run: &CaseRun) -> bool {
    matches!(
        run.end,
        CaseEnd::TargetFailed { .. } | CaseEnd::Diverged { .. }
    )
}

/// Replay `scenario` against `target` `repeat` times (at least once). A run
/// whose target fails stops the repeats: later ones would fail the same way.
///
/// A scenario that records a noninterference violation is replayed with the
/// comparison on every passed case ([`NoninterferenceCheck::Every`]): the
/// finding may have been made so, and a replay must look where it was made.
pub async fn replay(target: &Target, scenario: &Scenario, repeat: u32) -> ReplayReport {
    replay_until(target, scenario, repeat, None).await
}

/// [`replay`], but no repeat after the first starts once `deadline` has
/// passed: each run that starts ends whole, clean-up included, so the
/// report may hold fewer than `repeat` runs.
pub async fn replay_until(
    target: &Target,
    scenario: &Scenario,
    repeat: u32,
    deadline: Option<std::time::Instant>,
) -> ReplayReport {
    let every;
    let target = if scenario.expect == Expect::Violation(Clause::Noninterference)
        && target.binding().noninterference != NoninterferenceCheck::Every
    {
        let mut binding = (**target.binding()).clone();
        binding.noninterference = NoninterferenceCheck::Every;
        every = target.clone().with_binding(std::sync::Arc::new(binding));
        &every
    } else {
        target
    };
    let limits = model::limits_for(target.binding().caps, &scenario.steps);
    let mut runs = Vec::new();
    for attempt in 0..repeat.max(1) {
        if attempt > 0 && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        let run = if scenario.is_concurrent() {
            let stagger = jittered(&scenario.stagger_us, attempt);
            run_grouped(target, limits, &scenario.steps, &scenario.groups, &stagger).await
        } else {
            run_case(target, limits, &scenario.steps, None).await
        };
        let failed = matches!(run.end, CaseEnd::TargetFailed { .. });
        runs.push(run);
        if failed {
            break;
        }
    }
    ReplayReport { runs }
}

/// How a repeat scales a scenario's recorded stagger, in percent, repeat `k`
/// taking entry `k % len`: the first replay keeps the interleaving exactly as
/// the soak saw it; later ones jitter around it (closer together, further
/// apart, all at once), since the same spacing does not give the same
/// interleaving every time on a loaded machine.
pub const STAGGER_JITTER_PERCENT: [u64; 7] = [100, 50, 150, 0, 200, 75, 125];

/// The stagger of repeat `attempt` (from 0): `stagger_us` scaled by
/// [`STAGGER_JITTER_PERCENT`].
pub fn jittered(stagger_us: &[Vec<u64>], attempt: u32) -> Vec<Vec<u64>> {
    let percent = STAGGER_JITTER_PERCENT[attempt as usize % STAGGER_JITTER_PERCENT.len()];
    scaled(stagger_us, percent)
}

/// `stagger_us` scaled to `percent` of each offset (offsets are at most
/// [`crate::scenario::STAGGER_US_MAX`], so this cannot overflow for any
/// percent up to a few thousand).
pub fn scaled(stagger_us: &[Vec<u64>], percent: u64) -> Vec<Vec<u64>> {
    stagger_us
        .iter()
        .map(|offsets| {
            offsets
                .iter()
                .map(|o| o.saturating_mul(percent) / 100)
                .collect()
        })
        .collect()
}

/// Run steps sent in groups (see [`execute_grouped`]) against a fresh service.
pub async fn run_grouped(
    target: &Target,
    limits: Limits,
    steps: &[Step],
    groups: &[usize],
    stagger_us: &[Vec<u64>],
) -> CaseRun {
    let case = match target.open_case().await {
        Ok(case) => case,
        Err(error) => {
            return CaseRun::target_failed_at_start(error);
        }
    };
    let canaries = Canaries::for_case(limits.patients_max, case.tag());
    let run = execute_grouped(&case, limits, &canaries, steps, groups, stagger_us).await;
    case.close().await;
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeat_keeps_the_recorded_stagger_and_later_ones_jitter_around_it() {
        // Goal: replay's first run sends a group as the soak did; the next
        // ones scale the spacing (closer, further, all at once) in a fixed
        // cycle, so a repeat count covers the same spacings every time.
        let recorded = vec![vec![0, 200], vec![40, 0, 100]];
        assert_eq!(jittered(&recorded, 0), recorded);
        assert_eq!(jittered(&recorded, 1), vec![vec![0, 100], vec![20, 0, 50]]);
        assert_eq!(jittered(&recorded, 2), vec![vec![0, 300], vec![60, 0, 150]]);
        assert_eq!(jittered(&recorded, 3), vec![vec![0, 0], vec![0, 0, 0]]);
        assert_eq!(jittered(&recorded, 4), vec![vec![0, 400], vec![80, 0, 200]]);
        let cycle = STAGGER_JITTER_PERCENT.len() as u32;
        assert_eq!(jittered(&recorded, cycle), recorded);
        assert!(jittered(&[], 5).is_empty());
    }
}
