//! Generation: proptest strategies for the next step from a state.
//!
//! Only steps whose preconditions hold are offered; fresh aliases come from the
//! state's counters so a generated step keeps its meaning when earlier steps
//! are deleted by the shrinker.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::strategy::Sequential;

use super::caps::{Action, Scope, ViewSpec};
use super::ids::{AppointmentId, CallId, PatientId, RecordingId};
use super::state::{Limits, Mode, PER_PAGE_CHOICES, State};
use super::step::{Act, Forgery, Scoped, Slot, Step};

/// The strategy for one next step from `state`, weighted so that calls,
/// upgrades, history views and probes are common.
pub fn next_step(state: &State) -> BoxedStrategy<Step> {
    let mut options: Vec<(u32, BoxedStrategy<Step>)> = Vec::new();
    let caps = state.limits.caps;
    let patients: Vec<PatientId> = state
        .patients
        .iter()
        .copied()
        .filter(|p| state.is_active(*p))
        .collect();

    if state.patients.len() < state.limits.patients_max as usize {
        let patient = PatientId(state.next_patient);
        let weight = if patients.len() < 2 { 12 } else { 2 };
        options.push((weight, Just(Step::Register { patient }).boxed()));
    }
    if !patients.is_empty() && caps.has(Action::Book) {
        let appointment = AppointmentId(state.next_appointment);
        let day = state.day;
        options.push((
            3,
            (select(patients.clone()), 0..2u16, 8..=17u8)
                .prop_map(move |(patient, later, hour)| Step::Book {
                    patient,
                    appointment,
                    slot: Slot {
                        day: day + later,
                        hour,
                    },
                })
                .boxed(),
        ));
    }
    if !patients.is_empty() || !state.gone.is_empty() {
        view_options(state, &patients, &mut options);
    }

    let idle: Vec<(PatientId, AppointmentId)> = state
        .appointments
        .iter()
        .filter(|(_, a)| !a.cancelled && a.active_call.is_none())
        .map(|(id, a)| (a.patient, *id))
        .collect();
    if !idle.is_empty() && caps.has(Action::StartCall) {
        let (call, recording) = (CallId(state.next_call), RecordingId(state.next_recording));
        options.push((
            4,
            select(idle.clone())
                .prop_map(move |(patient, appointment)| Step::StartCall {
                    patient,
                    appointment,
                    call,
                    recording,
                })
                .boxed(),
        ));
    }
    if !idle.is_empty() && caps.has(Action::Cancel) {
        options.push((
            1,
            select(idle)
                .prop_map(|(patient, appointment)| Step::Cancel {
                    patient,
                    appointment,
                })
                .boxed(),
        ));
    }

    let active: Vec<(PatientId, CallId, Mode)> = state
        .calls
        .iter()
        .filter(|(_, c)| !c.ended)
        .map(|(id, c)| (c.patient, *id, c.mode))
        .collect();
    let audio: Vec<(PatientId, CallId)> = active
        .iter()
        .filter(|(_, _, mode)| *mode == Mode::Audio)
        .map(|(p, c, _)| (*p, *c))
        .collect();
    if !audio.is_empty() && caps.has(Action::Upgrade) {
        let recording = RecordingId(state.next_recording);
        options.push((
            4,
            select(audio)
                .prop_map(move |(patient, call)| Step::Upgrade {
                    patient,
                    call,
                    recording,
                })
                .boxed(),
        ));
    }
    let active: Vec<(PatientId, CallId)> = active.iter().map(|(p, c, _)| (*p, *c)).collect();
    if !active.is_empty() && caps.has(Action::SendMedia) {
        options.push((
            3,
            (select(active.clone()), 1..=9u16)
                .prop_map(|((patient, call), chunk)| Step::SendMedia {
                    patient,
                    call,
                    chunk,
                })
                .boxed(),
        ));
    }
    if !active.is_empty() && caps.has(Action::EndCall) {
        options.push((
            2,
            select(active)
                .prop_map(|(patient, call)| Step::EndCall { patient, call })
                .boxed(),
        ));
    }

    let owned: Vec<(PatientId, RecordingId)> = state
        .recordings
        .iter()
        .filter(|(_, r)| state.is_active(r.owner))
        .map(|(id, r)| (r.owner, *id))
        .collect();
    let everyone: Vec<(PatientId, RecordingId)> = state
        .recordings
        .iter()
        .map(|(id, r)| (r.owner, *id))
        .collect();
    if !owned.is_empty() && caps.has(Action::Play) {
        options.push((
            2,
            select(owned.clone())
                .prop_map(|(patient, recording)| Step::Play { patient, recording })
                .boxed(),
        ));
    }
    if !everyone.is_empty() && caps.has(Action::Play) {
        let probes: Vec<(PatientId, RecordingId)> = patients
            .iter()
            .flat_map(|p| {
                everyone
                    .iter()
                    .filter(move |(owner, _)| owner != p)
                    .map(move |(_, r)| (*p, *r))
            })
            .collect();
        if !probes.is_empty() {
            options.push((
                2,
                select(probes)
                    .prop_map(|(patient, recording)| Step::Probe { patient, recording })
                    .boxed(),
            ));
        }
    }
    if !owned.is_empty() && caps.has(Action::Erase) {
        let erasable: Vec<(PatientId, RecordingId)> = state
            .recordings
            .iter()
            .filter(|(_, r)| r.finished && !r.erased && state.is_active(r.owner))
            .map(|(id, r)| (r.owner, *id))
            .collect();
        if !erasable.is_empty() {
            options.push((
                1,
                select(erasable)
                    .prop_map(|(patient, recording)| Step::Erase { patient, recording })
                    .boxed(),
            ));
        }
    }

    // The last patient who can act stays while no one new can register, so
    // a case always has a next step.
    let can_register = state.patients.len() < state.limits.patients_max as usize;
    if caps.has(Action::EraseAccount) && (patients.len() > 1 || can_register) {
        let leaving: Vec<PatientId> = patients
            .iter()
            .copied()
            .filter(|p| !state.calls.values().any(|c| c.patient == *p && !c.ended))
            .collect();
        if !leaving.is_empty() {
            options.push((
                1,
                select(leaving)
                    .prop_map(|patient| Step::EraseAccount { patient })
                    .boxed(),
            ));
        }
    }

    trespass_options(state, &patients, &mut options);

    Union::new_weighted(options).boxed()
}

/// Cross-patient actions (every bound action that names an object, tried on
/// another patient's object) and forged credentials.
fn trespass_options(
    state: &State,
    patients: &[PatientId],
    options: &mut Vec<(u32, BoxedStrategy<Step>)>,
) {
    let caps = state.limits.caps;
    let mut objects: Vec<(PatientId, Act)> = Vec::new();
    for (id, a) in &state.appointments {
        objects.push((a.patient, Act::Cancel(*id)));
        objects.push((a.patient, Act::StartCall(*id)));
    }
    for (id, c) in &state.calls {
        objects.push((c.patient, Act::Upgrade(*id)));
        objects.push((c.patient, Act::SendMedia(*id)));
        objects.push((c.patient, Act::EndCall(*id)));
    }
    for (id, r) in &state.recordings {
        objects.push((r.owner, Act::Erase(*id)));
    }
    let trespasses: Vec<(PatientId, Act)> = patients
        .iter()
        .flat_map(|p| {
            objects
                .iter()
                .filter(move |(owner, act)| owner != p && caps.has(act.action()))
                .map(move |(_, act)| (*p, *act))
        })
        .collect();
    if !trespasses.is_empty() {
        options.push((
            2,
            select(trespasses)
                .prop_map(|(patient, act)| Step::Trespass { patient, act })
                .boxed(),
        ));
    }
    if !patients.is_empty() && caps.views().any(|v| v.scope.is_none()) {
        options.push((
            1,
            (select(patients.to_vec()), select(Forgery::ALL.to_vec()))
                .prop_map(|(patient, forgery)| Step::Forge { patient, forgery })
                .boxed(),
        ));
    }
}

/// Page and page size: mostly the first page at the default size, as real
/// patients view it; sometimes later pages and small sizes, for paging bugs.
fn paging(state: &State) -> BoxedStrategy<(u8, u8)> {
    let pages = state.limits.history_pages_max.max(1);
    let page = prop_oneof![3 => Just(1u8), 1 => 1..=pages];
    let per_page = prop_oneof![2 => Just(10u8), 1 => select(PER_PAGE_CHOICES.to_vec())];
    (page, per_page).boxed()
}

/// The view steps: every declared view, for each patient and, for a scoped
/// view, each of the patient's own objects; a view that names the patient's
/// own id is also tried with another patient's id (tampering); a patient who
/// erased their account still tries their old session now and then.
fn view_options(
    state: &State,
    patients: &[PatientId],
    options: &mut Vec<(u32, BoxedStrategy<Step>)>,
) {
    let views: Vec<ViewSpec> = state.limits.caps.views().collect();
    // One view: the weight the history view always had, so runs against a
    // one-view binding explore exactly as before.
    let weight = if views.len() <= 1 { 4 } else { 2 };
    for spec in views {
        let view = spec.name;
        let targets: Vec<(PatientId, Option<Scoped>)> = match spec.scope {
            None => patients.iter().map(|p| (*p, None)).collect(),
            Some(Scope::Appointment) => state
                .appointments
                .iter()
                .filter(|(_, a)| patients.contains(&a.patient))
                .map(|(id, a)| (a.patient, Some(Scoped::Appointment(*id))))
                .collect(),
            Some(Scope::Call) => state
                .calls
                .iter()
                .filter(|(_, c)| patients.contains(&c.patient))
                .map(|(id, c)| (c.patient, Some(Scoped::Call(*id))))
                .collect(),
        };
        if spec.scope.is_none() && !state.gone.is_empty() {
            options.push((
                1,
                (select(state.gone.clone()), paging(state))
                    .prop_map(move |(patient, (page, per_page))| Step::View {
                        patient,
                        view,
                        of: None,
                        subject: None,
                        page,
                        per_page,
                    })
                    .boxed(),
            ));
        }
        // A scoped view asked about another patient's object.
        if spec.scope.is_some() {
            let foreign: Vec<(PatientId, Option<Scoped>)> = patients
                .iter()
                .flat_map(|p| {
                    targets
                        .iter()
                        .filter(move |(owner, _)| owner != p)
                        .map(move |(_, of)| (*p, *of))
                })
                .collect();
            if !foreign.is_empty() {
                options.push((
                    1,
                    (select(foreign), paging(state))
                        .prop_map(move |((patient, of), (page, per_page))| Step::View {
                            patient,
                            view,
                            of,
                            subject: None,
                            page,
                            per_page,
                        })
                        .boxed(),
                ));
            }
        }
        if targets.is_empty() {
            continue;
        }
        options.push((
            weight,
            (select(targets.clone()), paging(state))
                .prop_map(move |((patient, of), (page, per_page))| Step::View {
                    patient,
                    view,
                    of,
                    subject: None,
                    page,
                    per_page,
                })
                .boxed(),
        ));
        if spec.tamperable && state.patients.len() >= 2 {
            let pairs: Vec<(PatientId, Option<Scoped>, PatientId)> = targets
                .iter()
                .flat_map(|(p, of)| {
                    state
                        .patients
                        .iter()
                        .filter(move |q| *q != p)
                        .map(move |q| (*p, *of, *q))
                })
                .collect();
            options.push((
                1,
                (select(pairs), paging(state))
                    .prop_map(
                        move |((patient, of, subject), (page, per_page))| Step::View {
                            patient,
                            view,
                            of,
                            subject: Some(subject),
                            page,
                            per_page,
                        },
                    )
                    .boxed(),
            ));
        }
    }
}

/// The strategy the `check` runner explores: sequences of 1 to `steps_max`
/// valid steps from the empty state, shrinkable by proptest-state-machine.
pub fn sequences(
    limits: Limits,
    steps_max: usize,
) -> Sequential<State, Step, Just<State>, BoxedStrategy<Step>> {
    Sequential::new(
        (1..=steps_max.max(1)).into(),
        move || Just(State::new(limits)),
        |state: &State, step: &Step| state.precondition(step),
        next_step,
        |state: State, step: &Step| state.apply(step),
    )
}
