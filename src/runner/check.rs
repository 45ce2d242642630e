//! `check`: sequential exploration with proptest-state-machine, then shrinking
//! to a minimal scenario.
//!
//! proptest is driven by hand (a `TestRunner` with a ChaCha RNG from the seed,
//! `new_tree`, `simplify`/`complicate`) rather than through `TestRunner::run`:
//! no panics, no persistence files, and a target failure can stop the search
//! without being mistaken for a finding. After proptest's shrinking, two
//! passes of our own make the result 1-minimal: dropping whole patients, then
//! every single step (with whatever depended on it).

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::execute::{
    CaseEnd, CaseRun, Trace, alone_for_comparison, alone_steps, differs, execute, interfered,
    suspects,
};
use crate::driver::{Driver, TargetError};
use crate::model::{self, ACTIONS, Limits, PatientId, RecordingId, Slot, Step};
use crate::oracle::{Canaries, Violation};
use crate::target::Target;

/// Everything that bounds one `check` run. Logged in full at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    /// The seed of the ChaCha RNG all generation draws from.
    pub seed: u64,
    /// Cases (generated sequences) to explore.
    pub cases: u32,
    /// Longest sequence generated.
    pub steps_max: usize,
    /// Model limits (patients, history pages).
    pub limits: Limits,
    /// Most cases run while shrinking one finding.
    pub shrink_runs_max: u32,
    /// Accept a service on which patients never see their own finished
    /// recordings (`--accept-incomplete`): a pass with completeness warnings
    /// instead of an unknown verdict.
    pub accept_incomplete: bool,
    /// Completeness warnings fail the run (`--strict`; the gate always).
    pub strict: bool,
}

impl Default for CheckConfig {
    fn default() -> Self {
        CheckConfig {
            seed: 1,
            cases: 512,
            steps_max: 40,
            limits: Limits::default(),
            shrink_runs_max: 2_000,
            accept_incomplete: false,
            strict: false,
        }
    }
}

/// A privacy violation, shrunk.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The case (from 1) that first showed it.
    pub case: u32,
    /// The minimal scenario, aliases renumbered from 1.
    pub steps: Vec<Step>,
    /// What the minimal scenario's last step violated.
    pub violations: Vec<Violation>,
    /// Length of the failing prefix before shrinking.
    pub original_len: usize,
    /// Cases run while shrinking.
    pub shrink_runs: u32,
    /// Why shrinking stopped early, if it did.
    pub shrink_interrupted: Option<String>,
    /// Time from the start of the check to the first failing case.
    pub found_after: Duration,
}

/// The outcome of a `check` run.
#[derive(Debug, Clone)]
pub struct CheckReport {
    /// The configuration it ran with.
    pub config: CheckConfig,
    /// Cases explored (not counting shrinking).
    pub cases_run: u32,
    /// Steps sent while exploring.
    pub steps_run: u64,
    /// How often each action ran while exploring, indexed as [`ACTIONS`].
    pub coverage: [u64; ACTIONS.len()],
    /// Completeness warnings seen while exploring (first few).
    pub warnings: Vec<Violation>,
    /// Total completeness warnings.
    pub warnings_count: u64,
    /// How often a patient was shown one of its own finished recordings.
    pub own_seen: u64,
    /// Cases where the service refused a step the model holds valid.
    pub diverged_cases: u32,
    /// The first divergence, in aliases.
    pub first_divergence: Option<String>,
    /// The shrunk privacy violation, if one was found.
    pub finding: Option<Finding>,
    /// Why the run could not reach a verdict (target failure), if so.
    pub target_failure: Option<String>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
}

/// Hooks for progress display; the runner itself prints nothing.
pub trait Progress {
    /// A case finished exploring.
    fn case_done(&mut self, _done: u32, _total: u32) {}
    /// A violation was found; shrinking starts.
    fn shrinking(&mut self, _runs: u32, _len: usize) {}
}

impl Progress for () {}

/// The 32-byte ChaCha seed for a user's `u64` seed (splitmix64 expansion).
pub fn rng_for(seed: u64) -> TestRng {
    let mut state = seed;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Run one case against a fresh service from `target`, with the
/// noninterference check the binding asks for
/// ([`crate::binding::NoninterferenceCheck`]):
///
/// - a case the service refused a valid step in is run again as the refused
///   step's patient alone ([`interference`]): refused with others, served
///   alone, is a noninterference violation;
/// - a passed case in which a patient's own finished recording was missing
///   (a completeness warning) is run again as that patient alone, up to that
///   step, and every observation compared ([`differs_alone`]);
/// - with `every`, a passed case is so compared for every patient who acted
///   among others.
pub async fn run_case(
    target: &Target,
    limits: Limits,
    steps: &[Step],
    seen: Option<&Arc<AtomicUsize>>,
) -> CaseRun {
    let mut run = run_case_once(target, limits, steps, seen).await;
    match run.end {
        CaseEnd::Diverged { step, status, .. } => {
            if let Some(violation) = interference(target, limits, steps, step, status).await {
                run.end = CaseEnd::Violated {
                    violations: vec![violation],
                };
            }
        }
        CaseEnd::Passed => {
            for (patient, upto) in suspects(target.binding(), steps, &run) {
                match differs_alone(target, limits, &steps[..upto], &run.trace, patient).await {
                    Ok(None) => {}
                    Ok(Some(violation)) => {
                        run.end = CaseEnd::Violated {
                            violations: vec![violation],
                        };
                        break;
                    }
                    // The comparison could not be made: the case is unknown,
                    // never a pass (and a shared target's clean-up failed).
                    Err(error) => {
                        run.end = CaseEnd::TargetFailed {
                            step: run.steps_run,
                            error,
                        };
                        break;
                    }
                }
            }
        }
        CaseEnd::Violated { .. } | CaseEnd::TargetFailed { .. } => {}
    }
    run
}

/// The noninterference comparison of `patient` over `steps` (a prefix of a
/// passed case whose observations were `trace`): the patient's own steps
/// ([`alone_for_comparison`]) run alone against a fresh service, then
/// [`differs`]. Costs one more case. An alone run whose target failed
/// (its clean-up included) is an error: nothing was compared.
async fn differs_alone(
    target: &Target,
    limits: Limits,
    steps: &[Step],
    trace: &[Trace],
    patient: PatientId,
) -> Result<Option<Violation>, TargetError> {
    let Some((indices, alone)) = alone_for_comparison(limits, steps, trace, patient) else {
        return Ok(None);
    };
    let run = run_case_once(target, limits, &alone, None).await;
    if let CaseEnd::TargetFailed { error, .. } = run.end {
        return Err(error);
    }
    Ok(differs(
        target.binding(),
        steps,
        trace,
        &indices,
        &run,
        patient,
    ))
}

/// The noninterference check of a diverged case: the refused step (`at`,
/// from 1) and its patient's own earlier steps run alone against a fresh
/// service ([`alone_steps`]). `Some` when alone every one of them succeeds.
/// Costs one more case, only where a case diverged.
async fn interference(
    target: &Target,
    limits: Limits,
    steps: &[Step],
    at: usize,
    status: u16,
) -> Option<Violation> {
    let alone = alone_steps(limits, steps, at, &target.binding().shared)?;
    let run = run_case_once(target, limits, &alone, None).await;
    (run.end == CaseEnd::Passed).then(|| interfered(steps, at, status, &alone))
}

/// One case against a fresh service from `target`, as it comes.
async fn run_case_once(
    target: &Target,
    limits: Limits,
    steps: &[Step],
    seen: Option<&Arc<AtomicUsize>>,
) -> CaseRun {
    let case = match target.open_case().await {
        Ok(case) => case,
        Err(error) => {
            return CaseRun::target_failed_at_start(error);
        }
    };
    let mut driver = case.driver();
    let canaries = Canaries::for_case(limits.patients_max, case.tag());
    let mut run = execute(&mut driver, limits, &canaries, steps, seen).await;
    if case.is_shared() {
        clean_up(&mut driver, &mut run).await;
    }
    case.close().await;
    run
}

/// A shared target's case cleans up after itself. If it cannot, later cases
/// are no longer isolated, so the case becomes a target failure (unknown);
/// a violation already found is kept: a finding always wins.
async fn clean_up<D: Driver>(driver: &mut D, run: &mut CaseRun) {
    if let Err(error) = driver.clean_up().await
        && matches!(run.end, CaseEnd::Passed | CaseEnd::Diverged { .. })
    {
        run.end = CaseEnd::TargetFailed {
            step: run.steps_run,
            error,
        };
    }
}

/// The existing recording a play, probe or erase step uses.
fn recording_used(step: &Step) -> Option<RecordingId> {
    match *step {
        Step::Play { recording, .. }
        | Step::Probe { recording, .. }
        | Step::Erase { recording, .. } => Some(recording),
        _ => None,
    }
}

/// The same step aimed at another recording (play, probe and erase only).
fn with_recording(step: &Step, recording: RecordingId) -> Step {
    match *step {
        Step::Play { patient, .. } => Step::Play { patient, recording },
        Step::Probe { patient, .. } => Step::Probe { patient, recording },
        Step::Erase { patient, .. } => Step::Erase { patient, recording },
        ref other => other.clone(),
    }
}

/// The failing prefix of a sequence: steps after the violating one never ran.
fn failing_prefix(steps: &[Step], run: &CaseRun) -> Vec<Step> {
    steps[..run.steps_run.min(steps.len())].to_vec()
}

/// The slot a shrunk booking is tried with first.
const PLAIN_SLOT: Slot = Slot { day: 1, hour: 9 };

struct Shrinker<'a> {
    target: &'a Target,
    limits: Limits,
    /// The original finding's [`crate::oracle::clause_rank`]: candidates
    /// must rank as high.
    rank: usize,
    runs: u32,
    runs_max: u32,
    interrupted: Option<String>,
}

impl Shrinker<'_> {
    /// Run a candidate; `Some(run)` if it still violates the property.
    async fn still_fails(
        &mut self,
        steps: &[Step],
        seen: Option<&Arc<AtomicUsize>>,
    ) -> Option<CaseRun> {
        if self.interrupted.is_some() || self.runs >= self.runs_max {
            return None;
        }
        self.runs += 1;
        let run = run_case(self.target, self.limits, steps, seen).await;
        match &run.end {
            // A candidate that only shows a lesser finding (a leak turned
            // into a missing recording) is not kept; one as telling or more
            // (a leak found where a size mismatch was) is.
            CaseEnd::Violated { violations }
                if crate::oracle::primary_clause(violations)
                    .map(crate::oracle::clause_rank)
                    .unwrap_or(usize::MAX)
                    <= self.rank =>
            {
                Some(run)
            }
            CaseEnd::Violated { .. } => None,
            CaseEnd::TargetFailed { step, error } => {
                self.interrupted = Some(format!(
                    "the target failed at step {step} of a candidate: {error}"
                ));
                None
            }
            CaseEnd::Passed | CaseEnd::Diverged { .. } => None,
        }
    }

    /// Recordings created before the one step `i` names, oldest first
    /// (empty for steps that name no existing recording).
    fn earlier_recordings(&self, steps: &[Step], i: usize) -> Vec<RecordingId> {
        let Some(named) = recording_used(&steps[i]) else {
            return Vec::new();
        };
        let state = steps[..i]
            .iter()
            .fold(model::State::new(self.limits), |state, step| {
                state.apply(step)
            });
        state
            .creation_order
            .iter()
            .copied()
            .take_while(|r| *r != named)
            .collect()
    }

    /// Our passes after proptest's: drop whole patients, then single steps
    /// (each with its dependants pruned) and re-aim steps at earlier
    /// recordings, until nothing more can go; then try plain values.
    async fn minimize(
        &mut self,
        mut best: Vec<Step>,
        mut best_run: CaseRun,
    ) -> (Vec<Step>, CaseRun) {
        let mut patients: Vec<PatientId> = best.iter().map(Step::patient).collect();
        patients.sort();
        patients.dedup();
        for patient in patients {
            let without: Vec<Step> = best
                .iter()
                .filter(|s| s.patient() != patient)
                .cloned()
                .collect();
            let candidate = model::prune(self.limits, &without);
            if let Some(run) = self.still_fails(&candidate, None).await {
                best = failing_prefix(&candidate, &run);
                best_run = run;
            }
        }
        loop {
            let mut changed = false;
            let mut i = 0;
            while i < best.len() {
                let mut without = best.clone();
                without.remove(i);
                let candidate = model::prune(self.limits, &without);
                match self.still_fails(&candidate, None).await {
                    Some(run) => {
                        best = failing_prefix(&candidate, &run);
                        best_run = run;
                        changed = true;
                    }
                    None => i += 1,
                }
            }
            // A step that plays, probes or erases a later recording may do as
            // well with an earlier one, which can free the steps that made the
            // later one; then deletion gets another go.
            if !changed {
                'repoint: for i in 0..best.len() {
                    let Some(named) = recording_used(&best[i]) else {
                        continue;
                    };
                    for earlier in self.earlier_recordings(&best, i) {
                        // Every use of the recording moves together (an erase
                        // and the playback that shows it erased, say).
                        let candidate: Vec<Step> = best
                            .iter()
                            .map(|s| match recording_used(s) {
                                Some(r) if r == named => with_recording(s, earlier),
                                _ => s.clone(),
                            })
                            .collect();
                        if model::first_invalid(self.limits, &candidate).is_some() {
                            continue;
                        }
                        if let Some(run) = self.still_fails(&candidate, None).await {
                            best = failing_prefix(&candidate, &run);
                            best_run = run;
                            changed = true;
                            break 'repoint;
                        }
                    }
                }
            }
            if !changed || self.interrupted.is_some() || self.runs >= self.runs_max {
                break;
            }
        }
        // Finally plain values, so the scenario reads like a story: day 1 at
        // 09h, chunk #1, the first history page at the default size.
        // `best` may shrink under the loop (a simpler step can fail sooner).
        let mut i = 0;
        while let Some(step) = best.get(i) {
            i += 1;
            let simpler = match *step {
                Step::Book {
                    patient,
                    appointment,
                    slot,
                } if slot != PLAIN_SLOT => Step::Book {
                    patient,
                    appointment,
                    slot: PLAIN_SLOT,
                },
                Step::SendMedia {
                    patient,
                    call,
                    chunk,
                } if chunk != 1 => Step::SendMedia {
                    patient,
                    call,
                    chunk: 1,
                },
                Step::View {
                    patient,
                    view,
                    of,
                    subject,
                    page,
                    per_page,
                } if (page, per_page) != (1, 10) => Step::View {
                    patient,
                    view,
                    of,
                    subject,
                    page: 1,
                    per_page: 10,
                },
                _ => continue,
            };
            let mut candidate = best.clone();
            candidate[i - 1] = simpler;
            if let Some(run) = self.still_fails(&candidate, None).await {
                best = failing_prefix(&candidate, &run);
                best_run = run;
            }
        }
        (best, best_run)
    }
}

/// Explore `config.cases` sequences against `target`; shrink the first violation.
pub async fn check(
    target: &Target,
    config: &CheckConfig,
    progress: &mut dyn Progress,
) -> CheckReport {
    let started = Instant::now();
    // The model generates only what the target's binding has.
    let limits = Limits {
        caps: target.binding().caps,
        ..config.limits
    };
    let config = &CheckConfig {
        limits,
        ..config.clone()
    };
    let strategy = model::sequences(limits, config.steps_max);
    let proptest_config = Config {
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(proptest_config, rng_for(config.seed));
    let mut report = CheckReport {
        config: config.clone(),
        cases_run: 0,
        steps_run: 0,
        coverage: [0; ACTIONS.len()],
        warnings: Vec::new(),
        warnings_count: 0,
        own_seen: 0,
        diverged_cases: 0,
        first_divergence: None,
        finding: None,
        target_failure: None,
        elapsed: Duration::ZERO,
    };

    for case in 1..=config.cases {
        let mut tree = match strategy.new_tree(&mut runner) {
            Ok(tree) => tree,
            Err(reason) => {
                // Generation only rejects if every transition strategy is empty,
                // which the model rules out; report it rather than loop.
                report.target_failure = Some(format!("could not generate case {case}: {reason}"));
                break;
            }
        };
        let (_, steps, seen) = tree.current();
        let run = run_case(target, limits, &steps, seen.as_ref()).await;
        report.cases_run = case;
        report.steps_run += run.steps_run as u64;
        for (total, n) in report.coverage.iter_mut().zip(run.coverage) {
            *total += n;
        }
        report.warnings_count += run.warnings.len() as u64;
        report.own_seen += run.own_seen;
        for warning in &run.warnings {
            if report.warnings.len() < 5 {
                report.warnings.push(warning.clone());
            }
        }
        progress.case_done(case, config.cases);
        match &run.end {
            CaseEnd::Passed => {}
            CaseEnd::Diverged { step, reason, .. } => {
                report.diverged_cases += 1;
                if report.first_divergence.is_none() {
                    report.first_divergence = Some(format!("case {case}, step {step}: {reason}"));
                }
            }
            CaseEnd::TargetFailed { step, error } => {
                report.target_failure = Some(format!("case {case}, step {step}: {error}"));
                break;
            }
            CaseEnd::Violated { .. } => {
                let found_after = started.elapsed();
                let original = failing_prefix(&steps, &run);
                let original_len = original.len();
                let mut shrinker = Shrinker {
                    target,
                    limits,
                    rank: run
                        .violations()
                        .and_then(crate::oracle::primary_clause)
                        .map_or(usize::MAX, crate::oracle::clause_rank),
                    runs: 0,
                    runs_max: config.shrink_runs_max,
                    interrupted: None,
                };
                let (mut best, mut best_run) = (original, run);
                // proptest-state-machine's shrinking: delete transitions from
                // the end, then shrink the remaining ones, keeping validity.
                if tree.simplify() {
                    loop {
                        progress.shrinking(shrinker.runs, best.len());
                        let (_, candidate, seen) = tree.current();
                        let more = match shrinker.still_fails(&candidate, seen.as_ref()).await {
                            Some(run) => {
                                best = failing_prefix(&candidate, &run);
                                best_run = run;
                                tree.simplify()
                            }
                            None => {
                                if shrinker.interrupted.is_some()
                                    || shrinker.runs >= shrinker.runs_max
                                {
                                    false
                                } else {
                                    tree.complicate()
                                }
                            }
                        };
                        if !more {
                            break;
                        }
                    }
                }
                progress.shrinking(shrinker.runs, best.len());
                let (best, best_run) = shrinker.minimize(best, best_run).await;
                // Renumbering is a bijection on aliases, so the renamed
                // scenario fails exactly as `best` does; the violations are
                // re-observed on the renamed steps so their aliases match.
                // If shrinking was interrupted the target is failing, so the
                // violations stay those observed on `best` in its own aliases.
                let renamed = model::renumber(&best);
                let renamed_run = match shrinker.interrupted {
                    None => Some(run_case(target, limits, &renamed, None).await),
                    Some(_) => None,
                };
                let (steps, violations) = match renamed_run.as_ref().and_then(CaseRun::violations) {
                    Some(v) => (renamed, v.to_vec()),
                    None => (best, best_run.violations().unwrap_or_default().to_vec()),
                };
                report.finding = Some(Finding {
                    case,
                    steps,
                    violations,
                    original_len,
                    shrink_runs: shrinker.runs,
                    shrink_interrupted: shrinker.interrupted,
                    found_after,
                });
                break;
            }
        }
    }
    report.elapsed = started.elapsed();
    report
}
