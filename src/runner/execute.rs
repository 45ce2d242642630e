//! Executing one case: steps through the driver, each observation judged by
//! the oracle against the model, stopping at the first violation.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use std::collections::HashMap;

use crate::binding::{Binding, COMPARED_FIELDS, NoninterferenceCheck};
use crate::driver::{BindingDriver, Driver, Fact, Observation, RecordingBook, Seen, TargetError};
use crate::model::{ACTIONS, Limits, State, Step};
use crate::model::{PatientId, RecordingId};
use crate::oracle::{self, Canaries, Clause, Finding, Violation};
use crate::target::CaseTarget;

/// How a case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseEnd {
    /// Every step ran and nothing leaked.
    Passed,
    /// A step's observation broke the privacy property; later steps did not run.
    Violated {
        /// Every violation seen at that step.
        violations: Vec<Violation>,
    },
    /// The service refused a step the model says is valid, so the model no
    /// longer knows the service's state: the rest of the case is unknown.
    Diverged {
        /// The step, from 1.
        step: usize,
        /// What was expected and what came back, in aliases.
        reason: String,
        /// The status the service refused it with.
        status: u16,
    },
    /// The target failed (no answer, 5xx, garbage): the verdict is unknown.
    TargetFailed {
        /// The step, from 1.
        step: usize,
        /// What failed.
        error: TargetError,
    },
}

/// The record of one executed case.
#[derive(Debug, Clone)]
pub struct CaseRun {
    /// How it ended.
    pub end: CaseEnd,
    /// Steps sent to the target.
    pub steps_run: usize,
    /// Completeness warnings.
    pub warnings: Vec<Violation>,
    /// How often each action (indexed as [`ACTIONS`]) ran.
    pub coverage: [u64; ACTIONS.len()],
    /// How often a patient was shown one of its own finished recordings (in
    /// a history view or by playback): zero means the service showed nothing
    /// the completeness clause could confirm.
    pub own_seen: u64,
    /// What each step sent showed, in aliases, in step order: what the
    /// noninterference check compares with the same patient's steps alone.
    pub trace: Vec<Trace>,
}

/// What one step's observation showed, in alias terms only: comparable
/// between two runs of the same steps (ids, bodies and paths left out).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// Whether the service served the step (2xx).
    pub served: bool,
    /// The recordings shown that the harness saw created, sorted.
    pub recordings: Vec<RecordingId>,
    /// How many ids it showed that the harness never saw created.
    pub unknown: usize,
    /// Each mapped field ([`Fact`]) as `(field, item, value)`, sorted:
    /// `total`, `kind`, `call`, `appointment`, `size`, `owner` (an unknown item's are left
    /// out: it is the ownership clause's).
    pub facts: Vec<TraceFact>,
}

impl Trace {
    /// The trace of `observation`.
    pub fn of(observation: &Observation) -> Trace {
        let mut recordings = Vec::new();
        let mut unknown = 0;
        for (_, seen) in &observation.seen {
            match seen {
                Seen::Known(r) => recordings.push(*r),
                Seen::Unknown(_) => unknown += 1,
            }
        }
        recordings.sort();
        recordings.dedup();
        let item = |seen: &Seen| match seen {
            Seen::Known(r) => Some(*r),
            Seen::Unknown(_) => None,
        };
        let mut facts: Vec<TraceFact> = observation
            .facts
            .iter()
            .filter_map(|(_, fact)| {
                Some(match fact {
                    Fact::Total(n) => ("total", None, n.to_string()),
                    Fact::Kind { recording, video } => (
                        "kind",
                        Some(item(recording)?),
                        if *video { "video" } else { "audio" }.to_string(),
                    ),
                    Fact::Call { recording, call } => (
                        "call",
                        Some(item(recording)?),
                        call.map_or("an unknown call".to_string(), |c| c.to_string()),
                    ),
                    Fact::Appointment {
                        recording,
                        appointment,
                    } => (
                        "appointment",
                        Some(item(recording)?),
                        appointment.map_or("an unknown appointment".to_string(), |a| a.to_string()),
                    ),
                    Fact::Size { recording, bytes } => {
                        ("size", Some(item(recording)?), format!("{bytes} bytes"))
                    }
                    Fact::Owner { recording, owner } => (
                        "owner",
                        Some(item(recording)?),
                        owner.map_or("an unknown owner".to_string(), |p| p.to_string()),
                    ),
                })
            })
            .collect();
        facts.sort();
        Trace {
            served: observation.is_success(),
            recordings,
            unknown,
            facts,
        }
    }

    /// `field` (one of [`crate::binding::COMPARED_FIELDS`]) here and in
    /// `other`, as text, when they differ. An item's fields (kind, call,
    /// appointment) are compared only for recordings both show: a recording
    /// shown in one and not the other differs in `recordings` already.
    pub fn differs(&self, other: &Trace, field: &str) -> Option<(String, String)> {
        let (mine, theirs) = match field {
            "status" => (self.status(), other.status()),
            "recordings" => (self.shown(), other.shown()),
            _ => {
                let both = |r: &Option<RecordingId>| {
                    r.is_none_or(|r| self.recordings.contains(&r) && other.recordings.contains(&r))
                };
                (self.values(field, &both), other.values(field, &both))
            }
        };
        (mine != theirs).then_some((mine, theirs))
    }

    fn status(&self) -> String {
        if self.served { "served" } else { "refused" }.to_string()
    }

    fn shown(&self) -> String {
        let mut shown: Vec<String> = self.recordings.iter().map(ToString::to_string).collect();
        if self.unknown > 0 {
            shown.push(format!("{} unknown", self.unknown));
        }
        if shown.is_empty() {
            "none".to_string()
        } else {
            shown.join(", ")
        }
    }

    fn values(&self, field: &str, keep: &dyn Fn(&Option<RecordingId>) -> bool) -> String {
        let values: Vec<String> = self
            .facts
            .iter()
            .filter(|(f, item, _)| *f == field && keep(item))
            .map(|(_, item, value)| match item {
                Some(r) => format!("{r} {value}"),
                None => value.clone(),
            })
            .collect();
        if values.is_empty() {
            "nothing".to_string()
        } else {
            values.join(", ")
        }
    }
}

/// A mapped field of a trace: its name, the recording it is about (none for
/// a view's total), and its value.
pub type TraceFact = (&'static str, Option<RecordingId>, String);

impl CaseRun {
    /// A case whose service could not even be opened: unknown, nothing ran.
    pub fn target_failed_at_start(error: TargetError) -> CaseRun {
        CaseRun {
            end: CaseEnd::TargetFailed { step: 0, error },
            steps_run: 0,
            warnings: Vec::new(),
            coverage: [0; ACTIONS.len()],
            own_seen: 0,
            trace: Vec::new(),
        }
    }

    /// The violations, if the case violated the property.
    pub fn violations(&self) -> Option<&[Violation]> {
        match &self.end {
            CaseEnd::Violated { violations } => Some(violations),
            _ => None,
        }
    }
}

/// How many of the recordings `observation` showed are the step's patient's
/// own finished ones, by the model after the step.
pub(crate) fn own_finished_seen(after: &State, step: &Step, observation: &Observation) -> u64 {
    if !matches!(step, Step::View { .. } | Step::Play { .. }) || !observation.is_success() {
        return 0;
    }
    observation
        .seen
        .iter()
        .filter(|(_, seen)| match seen {
            Seen::Known(r) => after
                .recordings
                .get(r)
                .is_some_and(|r| r.owner == step.patient() && r.finished),
            Seen::Unknown(_) => false,
        })
        .count() as u64
}

/// The steps to run alone for the noninterference check of a case the
/// service refused step `at` (from 1) of: that step's patient's own steps up
/// to it ([`crate::model::alone`]). `None` when there is nothing to compare:
/// the step's action is one the binding declares `shared` (by default
/// register and book: a calendar's slots are shared by design, and an
/// account name may be taken), nobody else acted before it, it was itself
/// cross-patient, or the patient's steps are not valid alone.
pub fn alone_steps(
    limits: Limits,
    steps: &[Step],
    at: usize,
    shared: &[String],
) -> Option<Vec<Step>> {
    let step = steps.get(at.checked_sub(1)?)?;
    if shared.iter().any(|a| a == step.action()) {
        return None;
    }
    let alone = crate::model::alone(limits, &steps[..at], step.patient());
    if alone.len() == at || alone.last() != Some(step) {
        return None;
    }
    crate::model::first_invalid(limits, &alone)
        .is_none()
        .then_some(alone)
}

/// The noninterference violation of step `at` (from 1), refused with
/// `status` in `steps`, that succeeded when its patient's `alone` steps ran
/// without anybody else.
pub fn interfered(steps: &[Step], at: usize, status: u16, alone: &[Step]) -> Violation {
    let step = &steps[at - 1];
    Violation {
        clause: Clause::Noninterference,
        step: at,
        patient: step.patient(),
        field: "status".to_string(),
        finding: Finding::Interfered {
            step: step.to_string(),
            status,
            alone: alone.len(),
        },
    }
}

/// The patients of a passed case whose observations are compared with their
/// steps alone, each with how many of the case's steps to take into account:
/// a patient shown a completeness warning (an own finished recording
/// missing), up to the first one; with `[noninterference] check = "every"`,
/// every patient, the whole case.
pub fn suspects(binding: &Binding, steps: &[Step], run: &CaseRun) -> Vec<(PatientId, usize)> {
    let mut suspects: Vec<(PatientId, usize)> = Vec::new();
    if binding.noninterference == NoninterferenceCheck::Every {
        for step in steps {
            if !suspects.iter().any(|(p, _)| *p == step.patient()) {
                suspects.push((step.patient(), steps.len()));
            }
        }
        return suspects;
    }
    for warning in &run.warnings {
        if matches!(warning.finding, Finding::Missing { .. })
            && !suspects.iter().any(|(p, _)| *p == warning.patient)
        {
            suspects.push((warning.patient, warning.step.min(steps.len())));
        }
    }
    suspects
}

/// What to run alone to compare `patient` in a passed case of `steps`
/// whose observations were `trace`: where the patient's own steps stand in
/// `steps`, and those steps ([`crate::model::alone_indices`]). `None` when
/// there is nothing to compare: nobody else acted before the patient's last
/// step, or the steps are not valid alone.
pub fn alone_for_comparison(
    limits: Limits,
    steps: &[Step],
    trace: &[Trace],
    patient: PatientId,
) -> Option<(Vec<usize>, Vec<Step>)> {
    let indices = crate::model::alone_indices(limits, steps, patient);
    let last = *indices.last()?;
    if indices.len() == last + 1 || trace.len() < steps.len() {
        return None;
    }
    let alone: Vec<Step> = indices.iter().map(|&i| steps[i].clone()).collect();
    crate::model::first_invalid(limits, &alone)
        .is_none()
        .then_some((indices, alone))
}

/// The noninterference violation, if any, of `patient`, whose own steps
/// (at `indices` in `steps`) ran alone as `alone`: each one's trace
/// compared with the same step's among the others (`trace`), field by field
/// ([`COMPARED_FIELDS`] less the binding's `shared_fields`; steps of its
/// `shared` actions not at all), the first difference reported. Nothing is
/// judged when alone the case did not pass: a refusal alone is the service's
/// own inconsistency, not interference.
pub fn differs(
    binding: &Binding,
    steps: &[Step],
    trace: &[Trace],
    indices: &[usize],
    alone: &CaseRun,
    patient: PatientId,
) -> Option<Violation> {
    if alone.end != CaseEnd::Passed || alone.trace.len() != indices.len() {
        return None;
    }
    for (k, &i) in indices.iter().enumerate() {
        let step = &steps[i];
        if binding.shared.iter().any(|a| a == step.action()) {
            continue;
        }
        for field in COMPARED_FIELDS {
            if binding.shared_fields.iter().any(|f| f == field) {
                continue;
            }
            if let Some((with_others, alone_value)) = trace[i].differs(&alone.trace[k], field) {
                return Some(Violation {
                    clause: Clause::Noninterference,
                    step: i + 1,
                    patient,
                    field: field.to_string(),
                    finding: Finding::Differs {
                        step: step.to_string(),
                        field,
                        with_others,
                        alone: alone_value,
                        alone_steps: k + 1,
                    },
                });
            }
        }
    }
    None
}

/// Lost recordings: a completeness warning about a recording its owner was
/// already shown finished (`seen_complete`) becomes a violation — the
/// service had it and lost it, which no eventual consistency explains.
/// Records in `seen_complete` the owner's finished recordings this view shows.
pub(crate) fn lost(
    judgement: &mut oracle::Judgement,
    seen_complete: &mut std::collections::BTreeSet<crate::model::RecordingId>,
    after: &State,
    step: &Step,
    observation: &Observation,
) {
    for warning in std::mem::take(&mut judgement.warnings) {
        match warning.finding {
            Finding::Missing {
                recording: Seen::Known(r),
            } if seen_complete.contains(&r) => judgement.violations.push(Violation {
                finding: Finding::Lost {
                    recording: Seen::Known(r),
                },
                ..warning
            }),
            _ => judgement.warnings.push(warning),
        }
    }
    if matches!(step, Step::View { .. }) && observation.is_success() {
        for (_, seen) in &observation.seen {
            if let Seen::Known(r) = seen
                && after
                    .recordings
                    .get(r)
                    .is_some_and(|rec| rec.owner == step.patient() && rec.finished && !rec.erased)
            {
                seen_complete.insert(*r);
            }
        }
    }
}

/// Whether a non-success answer to a valid step means the service and the
/// model disagree (`state` is the state before the step).
fn divergence(state: &State, step: &Step, observation: &Observation) -> Option<String> {
    if state.is_cross_patient(step) {
        // A refusal is the right answer; what it showed is judged by the oracles.
        return None;
    }
    match step {
        // Probes are judged by the refusal clause; playback of an erased
        // recording is supposed to fail, and a missing own recording is a
        // completeness warning, not a divergence.
        Step::Probe { .. } | Step::Play { .. } => None,
        _ if observation.is_success() => None,
        _ => Some(format!(
            "`{step}` is valid in the model but the service answered {}",
            observation.status
        )),
    }
}

/// Run `steps` in order through `driver`, judging every observation.
///
/// `seen`, when given, is incremented once per step sent (proptest-state-machine
/// uses it to drop the untried tail of a failing sequence when shrinking).
pub async fn execute<D: Driver>(
    driver: &mut D,
    limits: Limits,
    canaries: &Canaries,
    steps: &[Step],
    seen: Option<&Arc<AtomicUsize>>,
) -> CaseRun {
    let mut state = State::new(limits);
    let mut run = CaseRun {
        end: CaseEnd::Passed,
        steps_run: 0,
        warnings: Vec::new(),
        coverage: [0; ACTIONS.len()],
        own_seen: 0,
        trace: Vec::new(),
    };
    let mut seen_complete = std::collections::BTreeSet::new();
    for (i, step) in steps.iter().enumerate() {
        let index = i + 1;
        debug_assert!(
            state.precondition(step),
            "invalid step reached execute: {step}"
        );
        if let Some(seen) = seen {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        run.steps_run += 1;
        run.coverage[step.action_index()] += 1;
        let observation = match driver.perform(step).await {
            Ok(observation) => observation,
            Err(error) => {
                run.end = CaseEnd::TargetFailed { step: index, error };
                return run;
            }
        };
        run.trace.push(Trace::of(&observation));
        let after = state.clone().apply(step);
        let mut judgement = oracle::check(canaries, &state, &after, index, step, &observation);
        lost(
            &mut judgement,
            &mut seen_complete,
            &after,
            step,
            &observation,
        );
        run.warnings.extend(judgement.warnings);
        run.own_seen += own_finished_seen(&after, step, &observation);
        if !judgement.violations.is_empty() {
            run.end = CaseEnd::Violated {
                violations: judgement.violations,
            };
            return run;
        }
        if let Some(reason) = divergence(&state, step, &observation) {
            run.end = CaseEnd::Diverged {
                step: index,
                reason,
                status: observation.status,
            };
            return run;
        }
        state = after;
    }
    run
}

/// Wait until `deadline` to the microsecond: tokio's timer sleeps most of the
/// way (it has millisecond granularity), then the task yields until the
/// moment, so the other steps of its group keep running meanwhile.
async fn wait_until(deadline: std::time::Instant) {
    const SPIN: std::time::Duration = std::time::Duration::from_millis(2);
    if let Some(left) = deadline.checked_duration_since(std::time::Instant::now())
        && left > SPIN
    {
        tokio::time::sleep(left - SPIN).await;
    }
    while std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// Run a scenario's steps group by group: the steps of a group are sent
/// together, concurrently (one driver per patient, sharing one recording
/// book), and judged once all of them have been answered.
///
/// An id a step saw before the step that creates it was answered is not a
/// phantom: every observation's unknown ids are resolved again once the whole
/// group is in, and only ids still unknown count as phantoms.
///
/// `stagger_us` keeps an interleaving: for each group of more than one
/// step, in order, when each step is sent, in microseconds after the group's
/// first (empty: all at once). The spacing is kept to the microsecond (a
/// sleep for most of it, then yielding until the moment), since a race's
/// window is often shorter than the timer's millisecond.
///
/// On a shared target every patient's driver cleans up afterwards, by the
/// same rule as a sequential case ([`Driver::clean_up`]); a clean-up that
/// fails makes a passed or diverged run a target failure.
pub async fn execute_grouped(
    case: &CaseTarget,
    limits: Limits,
    canaries: &Canaries,
    steps: &[Step],
    groups: &[usize],
    stagger_us: &[Vec<u64>],
) -> CaseRun {
    let book = RecordingBook::new();
    let mut drivers: HashMap<PatientId, BindingDriver> = HashMap::new();
    let mut run = execute_groups(
        case,
        &book,
        &mut drivers,
        limits,
        canaries,
        steps,
        (groups, stagger_us),
    )
    .await;
    if case.is_shared() {
        let mut patients: Vec<PatientId> = drivers.keys().copied().collect();
        patients.sort();
        for patient in patients {
            let Some(driver) = drivers.get_mut(&patient) else {
                continue;
            };
            if let Err(error) = driver.clean_up().await
                && matches!(run.end, CaseEnd::Passed | CaseEnd::Diverged { .. })
            {
                run.end = CaseEnd::TargetFailed {
                    step: run.steps_run,
                    error,
                };
            }
        }
    }
    run
}

async fn execute_groups(
    case: &CaseTarget,
    book: &RecordingBook,
    drivers: &mut HashMap<PatientId, BindingDriver>,
    limits: Limits,
    canaries: &Canaries,
    steps: &[Step],
    (groups, stagger_us): (&[usize], &[Vec<u64>]),
) -> CaseRun {
    let mut state = State::new(limits);
    let mut staggers = stagger_us.iter();
    let mut run = CaseRun {
        end: CaseEnd::Passed,
        steps_run: 0,
        warnings: Vec::new(),
        coverage: [0; ACTIONS.len()],
        own_seen: 0,
        trace: Vec::new(),
    };
    let sizes: Vec<usize> = if groups.is_empty() {
        vec![1; steps.len()]
    } else {
        groups.to_vec()
    };
    let mut start = 0;
    for size in sizes {
        let group = &steps[start..start + size];
        let mut taken: Vec<(usize, &Step, BindingDriver)> = group
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let driver = drivers
                    .remove(&step.patient())
                    .unwrap_or_else(|| case.driver_sharing(book.clone()));
                (start + i + 1, step, driver)
            })
            .collect();
        let offsets: &[u64] = if size > 1 {
            staggers.next().map_or(&[], Vec::as_slice)
        } else {
            &[]
        };
        let began = std::time::Instant::now();
        let results = futures::future::join_all(taken.iter_mut().enumerate().map(
            |(i, (_, step, driver))| {
                let offset = offsets.get(i).copied().unwrap_or(0);
                async move {
                    wait_until(began + std::time::Duration::from_micros(offset)).await;
                    driver.perform(step).await
                }
            },
        ))
        .await;
        let mut after = state.clone();
        for step in group {
            after = after.apply(step);
        }
        // The drivers go back before anything is judged, so an early return
        // leaves every driver for clean-up.
        let taken: Vec<(usize, &Step)> = taken
            .into_iter()
            .map(|(index, step, driver)| {
                drivers.insert(step.patient(), driver);
                (index, step)
            })
            .collect();
        let mut judged = Vec::new();
        for ((index, step), result) in taken.iter().zip(results) {
            run.steps_run += 1;
            run.coverage[step.action_index()] += 1;
            let mut observation = match result {
                Ok(observation) => observation,
                Err(error) => {
                    run.end = CaseEnd::TargetFailed {
                        step: *index,
                        error,
                    };
                    return run;
                }
            };
            for (_, seen) in &mut observation.seen {
                if let Seen::Unknown(n) = *seen
                    && let Some(alias) = book.resolve(n)
                {
                    *seen = Seen::Known(alias);
                }
            }
            run.trace.push(Trace::of(&observation));
            let judgement = oracle::check(canaries, &state, &after, *index, step, &observation);
            run.warnings.extend(judgement.warnings);
            run.own_seen += own_finished_seen(&after, step, &observation);
            judged.push((*index, *step, observation, judgement.violations));
        }
        let violations: Vec<Violation> = judged
            .iter()
            .flat_map(|(_, _, _, v)| v.iter().cloned())
            .collect();
        if !violations.is_empty() {
            run.end = CaseEnd::Violated { violations };
            return run;
        }
        for (index, step, observation, _) in &judged {
            if let Some(reason) = divergence(&state, step, observation) {
                run.end = CaseEnd::Diverged {
                    step: *index,
                    reason,
                    status: observation.status,
                };
                return run;
            }
        }
        state = after;
        start += size;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_staggered_step_is_never_sent_before_its_moment() {
        // Goal: replay keeps a recorded interleaving: a step given an offset
        // waits at least that long, including offsets below the timer's
        // millisecond and above it.
        for micros in [0, 1, 50, 700, 2_500] {
            let deadline = std::time::Instant::now() + std::time::Duration::from_micros(micros);
            wait_until(deadline).await;
            assert!(std::time::Instant::now() >= deadline, "{micros} us");
        }
    }
}
