//! Generation: proptest strategies for the next step from a state.
//!
//! Only steps whose preconditions hold are offered; fresh aliases come from the
//! state's counters so a generated step keeps its meaning when earlier steps
//! are deleted by the shrinker.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::{BoxedStrategy, Union};
use proptest_state_machine::strategy::Sequential;

use super::ids::{AppointmentId, CallId, PatientId, RecordingId};
use super::state::{Limits, Mode, PER_PAGE_CHOICES, State};
use super::step::{Slot, Step};

/// The strategy for one next step from `state`, weighted so that calls,
/// upgrades, history views and probes are common.
pub fn next_step(state: &State) -> BoxedStrategy<Step> {
    let mut options: Vec<(u32, BoxedStrategy<Step>)> = Vec::new();
    let patients = state.patients.clone();

    if patients.len() < state.limits.patients_max as usize {
        let patient = PatientId(state.next_patient);
        let weight = if patients.len() < 2 { 12 } else { 2 };
        options.push((weight, Just(Step::Register { patient }).boxed()));
    }
    if !patients.is_empty() {
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
        // Mostly the first page at the default size, as real patients view
        // it; sometimes later pages and small sizes, for paging bugs.
        let pages = state.limits.history_pages_max.max(1);
        let page = prop_oneof![3 => Just(1u8), 1 => 1..=pages];
        let per_page = prop_oneof![2 => Just(10u8), 1 => select(PER_PAGE_CHOICES.to_vec())];
        options.push((
            4,
            (select(patients.clone()), page, per_page)
                .prop_map(|(patient, page, per_page)| Step::ViewHistory {
                    patient,
                    page,
                    per_page,
                })
                .boxed(),
        ));
    }

    let idle: Vec<(PatientId, AppointmentId)> = state
        .appointments
        .iter()
        .filter(|(_, a)| !a.cancelled && a.active_call.is_none())
        .map(|(id, a)| (a.patient, *id))
        .collect();
    if !idle.is_empty() {
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
    if !audio.is_empty() {
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
    if !active.is_empty() {
        let active: Vec<(PatientId, CallId)> = active.iter().map(|(p, c, _)| (*p, *c)).collect();
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
        .map(|(id, r)| (r.owner, *id))
        .collect();
    if !owned.is_empty() {
        options.push((
            2,
            select(owned.clone())
                .prop_map(|(patient, recording)| Step::Play { patient, recording })
                .boxed(),
        ));
        let probes: Vec<(PatientId, RecordingId)> = patients
            .iter()
            .flat_map(|p| {
                owned
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
        let erasable: Vec<(PatientId, RecordingId)> = state
            .recordings
            .iter()
            .filter(|(_, r)| r.finished && !r.erased)
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

    Union::new_weighted(options).boxed()
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
