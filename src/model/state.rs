//! The reference state: what exists, who owns it, and what each patient may see.
//!
//! [`State::precondition`] encodes every validity rule of a step; the shrinker
//! replays candidate sequences through it alone, so a rule missing here lets the
//! shrinker invent scenarios the service would rightly refuse.
//! [`State::apply`] is the step's effect, with no I/O.

use std::collections::BTreeMap;

use super::caps::{Action, Capabilities, Order, Scope, ViewSpec};
use super::ids::{AppointmentId, CallId, PatientId, RecordingId};
use super::step::{Act, Scoped, Step};

/// Limits on what the model generates. All limits live here, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most patients registered in one case.
    pub patients_max: u32,
    /// Highest history page a patient asks for.
    pub history_pages_max: u8,
    /// What the service can do (from its binding): only these actions and
    /// views are generated, and a step outside them is invalid.
    pub caps: Capabilities,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            patients_max: 4,
            history_pages_max: 3,
            caps: Capabilities::default(),
        }
    }
}

/// Page sizes the generator picks from; small ones make multi-page histories likely.
pub const PER_PAGE_CHOICES: [u8; 4] = [1, 2, 3, 10];

/// An appointment as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appointment {
    /// Who booked it.
    pub patient: PatientId,
    /// Cancelled appointments cannot host calls.
    pub cancelled: bool,
    /// The call in progress, if any.
    pub active_call: Option<CallId>,
}

/// Audio, or video after an upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The call started as audio.
    Audio,
    /// The call was upgraded mid-call.
    Video,
}

/// A call as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The patient on the call.
    pub patient: PatientId,
    /// The appointment it belongs to.
    pub appointment: AppointmentId,
    /// Audio or video.
    pub mode: Mode,
    /// Ended calls accept nothing more.
    pub ended: bool,
    /// The recording media currently goes into.
    pub current: RecordingId,
}

/// A recording as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    /// The patient the model attributes it to.
    pub owner: PatientId,
    /// The call that made it.
    pub call: CallId,
    /// Audio or video.
    pub kind: Mode,
    /// Finished once upgraded away from or once the call ended.
    pub finished: bool,
    /// Erased by its owner: never visible again, to anyone.
    pub erased: bool,
    /// Media chunks the owner sent into it.
    pub chunks: u32,
    /// How many bytes those chunks hold (a chunk's length does not depend
    /// on the case's tag: canaries are fixed width).
    pub bytes: u64,
}

/// The whole reference state after some sequence of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Generation limits (carried here so preconditions can see them).
    pub limits: Limits,
    /// Registered patients (erased accounts included).
    pub patients: Vec<PatientId>,
    /// Patients who erased their account: they take no step but views, which
    /// their dead session must not be able to open.
    pub gone: Vec<PatientId>,
    /// Every appointment ever booked.
    pub appointments: BTreeMap<AppointmentId, Appointment>,
    /// Every call ever started.
    pub calls: BTreeMap<CallId, Call>,
    /// Every recording ever created.
    pub recordings: BTreeMap<RecordingId, Recording>,
    /// Recordings in the order they were created (the history view's order).
    pub creation_order: Vec<RecordingId>,
    /// Next fresh alias numbers, for the generator.
    pub next_patient: u32,
    /// Next fresh appointment alias.
    pub next_appointment: u32,
    /// Next fresh call alias.
    pub next_call: u32,
    /// Next fresh recording alias.
    pub next_recording: u32,
    /// Virtual calendar: the day bookings are made for (advances every few bookings).
    pub day: u16,
}

impl State {
    /// The empty state: nobody registered yet.
    pub fn new(limits: Limits) -> State {
        State {
            limits,
            patients: Vec::new(),
            gone: Vec::new(),
            appointments: BTreeMap::new(),
            calls: BTreeMap::new(),
            recordings: BTreeMap::new(),
            creation_order: Vec::new(),
            next_patient: 1,
            next_appointment: 1,
            next_call: 1,
            next_recording: 1,
            day: 1,
        }
    }

    /// Whether the patient has registered.
    pub fn is_registered(&self, patient: PatientId) -> bool {
        self.patients.contains(&patient)
    }

    fn call_of(&self, patient: PatientId, call: CallId) -> Option<&Call> {
        self.calls.get(&call).filter(|c| c.patient == patient)
    }

    /// Whether the patient registered and has not erased their account.
    pub fn is_active(&self, patient: PatientId) -> bool {
        self.is_registered(patient) && !self.gone.contains(&patient)
    }

    /// Every validity rule of a step in this state.
    pub fn precondition(&self, step: &Step) -> bool {
        let caps = &self.limits.caps;
        let active = self.is_active(step.patient());
        if let Some(action) = step.capability()
            && !caps.has(action)
        {
            return false;
        }
        if !active && !matches!(step, Step::Register { .. } | Step::View { .. }) {
            return false;
        }
        match *step {
            Step::Register { patient } => {
                !self.is_registered(patient)
                    && patient.0 >= 1
                    && patient.0 <= self.limits.patients_max
            }
            Step::Book { appointment, .. } => !self.appointments.contains_key(&appointment),
            Step::Cancel {
                patient,
                appointment,
            } => self
                .appointments
                .get(&appointment)
                .is_some_and(|a| a.patient == patient && !a.cancelled && a.active_call.is_none()),
            Step::StartCall {
                patient,
                appointment,
                call,
                recording,
            } => {
                self.appointments.get(&appointment).is_some_and(|a| {
                    a.patient == patient && !a.cancelled && a.active_call.is_none()
                }) && !self.calls.contains_key(&call)
                    && !self.recordings.contains_key(&recording)
            }
            Step::Upgrade {
                patient,
                call,
                recording,
            } => {
                self.call_of(patient, call)
                    .is_some_and(|c| !c.ended && c.mode == Mode::Audio)
                    && !self.recordings.contains_key(&recording)
            }
            Step::SendMedia { patient, call, .. } | Step::EndCall { patient, call } => {
                self.call_of(patient, call).is_some_and(|c| !c.ended)
            }
            Step::View {
                patient,
                view,
                of,
                subject,
                page,
                per_page,
            } => {
                let Some(spec) = caps.view(view) else {
                    return false;
                };
                // The object may be another patient's: a cross-patient probe
                // of the view, judged like any view (nothing foreign shown).
                let scoped = match (spec.scope, of) {
                    (None, None) => true,
                    (Some(Scope::Appointment), Some(Scoped::Appointment(a))) => self
                        .appointments
                        .get(&a)
                        .is_some_and(|a| a.patient == patient || active),
                    (Some(Scope::Call), Some(Scoped::Call(c))) => self
                        .calls
                        .get(&c)
                        .is_some_and(|c| c.patient == patient || active),
                    _ => false,
                };
                // A dead session views only what it could before: no tampering.
                let subject_ok = match subject {
                    None => true,
                    Some(other) => {
                        active && spec.tamperable && other != patient && self.is_registered(other)
                    }
                };
                self.is_registered(patient)
                    && scoped
                    && subject_ok
                    && page >= 1
                    && page <= self.limits.history_pages_max.max(1)
                    && (1..=100).contains(&per_page)
            }
            Step::Play { patient, recording } => self
                .recordings
                .get(&recording)
                .is_some_and(|r| r.owner == patient),
            Step::Probe { patient, recording } => self
                .recordings
                .get(&recording)
                .is_some_and(|r| r.owner != patient),
            Step::Erase { patient, recording } => self
                .recordings
                .get(&recording)
                .is_some_and(|r| r.owner == patient && r.finished && !r.erased),
            Step::EraseAccount { patient } => !self
                .calls
                .values()
                .any(|c| c.patient == patient && !c.ended),
            // Any object of somebody else's, in any state: a trespass must be
            // refused whatever the object's state.
            Step::Trespass { patient, act } => match act {
                Act::Cancel(a) | Act::StartCall(a) => self
                    .appointments
                    .get(&a)
                    .is_some_and(|a| a.patient != patient),
                Act::Upgrade(c) | Act::SendMedia(c) | Act::EndCall(c) => {
                    self.calls.get(&c).is_some_and(|c| c.patient != patient)
                }
                Act::Erase(r) => self.recordings.get(&r).is_some_and(|r| r.owner != patient),
            },
            Step::Forge { .. } => caps.views().any(|v| v.scope.is_none()),
        }
    }

    /// The effect of a step. The step must satisfy [`State::precondition`].
    pub fn apply(mut self, step: &Step) -> State {
        debug_assert!(self.precondition(step), "applying invalid step {step}");
        match *step {
            Step::Register { patient } => {
                self.patients.push(patient);
                self.next_patient = self.next_patient.max(patient.0.saturating_add(1));
            }
            Step::Book {
                patient,
                appointment,
                slot,
            } => {
                self.appointments.insert(
                    appointment,
                    Appointment {
                        patient,
                        cancelled: false,
                        active_call: None,
                    },
                );
                self.next_appointment = self.next_appointment.max(appointment.0.saturating_add(1));
                self.day = self.day.max(slot.day);
            }
            Step::Cancel { appointment, .. } => {
                if let Some(a) = self.appointments.get_mut(&appointment) {
                    a.cancelled = true;
                }
            }
            Step::StartCall {
                patient,
                appointment,
                call,
                recording,
            } => {
                if let Some(a) = self.appointments.get_mut(&appointment) {
                    a.active_call = Some(call);
                }
                self.calls.insert(
                    call,
                    Call {
                        patient,
                        appointment,
                        mode: Mode::Audio,
                        ended: false,
                        current: recording,
                    },
                );
                self.create_recording(recording, patient, call, Mode::Audio);
                self.next_call = self.next_call.max(call.0.saturating_add(1));
            }
            Step::Upgrade {
                patient,
                call,
                recording,
            } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    let audio = std::mem::replace(&mut c.current, recording);
                    c.mode = Mode::Video;
                    if let Some(r) = self.recordings.get_mut(&audio) {
                        r.finished = true;
                    }
                }
                self.create_recording(recording, patient, call, Mode::Video);
            }
            Step::SendMedia {
                patient,
                call,
                chunk,
            } => {
                if let Some(current) = self.calls.get(&call).map(|c| c.current)
                    && let Some(r) = self.recordings.get_mut(&current)
                {
                    r.chunks += 1;
                    r.bytes += super::payload::media_chunk(patient, call, chunk).len() as u64;
                }
            }
            Step::EndCall { call, .. } => {
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ended = true;
                    let (current, appointment) = (c.current, c.appointment);
                    if let Some(r) = self.recordings.get_mut(&current) {
                        r.finished = true;
                    }
                    if let Some(a) = self.appointments.get_mut(&appointment) {
                        a.active_call = None;
                    }
                }
            }
            Step::View { .. }
            | Step::Play { .. }
            | Step::Probe { .. }
            | Step::Trespass { .. }
            | Step::Forge { .. } => {}
            Step::Erase { recording, .. } => {
                if let Some(r) = self.recordings.get_mut(&recording) {
                    r.erased = true;
                }
            }
            Step::EraseAccount { patient } => {
                self.gone.push(patient);
                for r in self.recordings.values_mut().filter(|r| r.owner == patient) {
                    r.erased = true;
                }
                for a in self
                    .appointments
                    .values_mut()
                    .filter(|a| a.patient == patient)
                {
                    a.cancelled = true;
                }
            }
        }
        self
    }

    fn create_recording(&mut self, id: RecordingId, owner: PatientId, call: CallId, kind: Mode) {
        self.recordings.insert(
            id,
            Recording {
                owner,
                call,
                kind,
                finished: false,
                erased: false,
                chunks: 0,
                bytes: 0,
            },
        );
        self.creation_order.push(id);
        self.next_recording = self.next_recording.max(id.0.saturating_add(1));
    }

    /// The recordings `patient` may see in the history view, in its order.
    pub fn visible_recordings(&self, patient: PatientId) -> Vec<RecordingId> {
        self.creation_order
            .iter()
            .copied()
            .filter(|id| {
                self.recordings
                    .get(id)
                    .is_some_and(|r| r.owner == patient && !r.erased)
            })
            .collect()
    }

    /// The recordings `patient` may see in `view` (parametrised by `of`),
    /// in the view's order (creation order when it has none).
    pub fn visible_in(
        &self,
        patient: PatientId,
        view: &ViewSpec,
        of: Option<Scoped>,
    ) -> Vec<RecordingId> {
        let in_scope = |r: &Recording| match of {
            None => true,
            Some(Scoped::Call(c)) => r.call == c,
            Some(Scoped::Appointment(a)) => {
                self.calls.get(&r.call).is_some_and(|c| c.appointment == a)
            }
        };
        let mut ids: Vec<RecordingId> = self
            .visible_recordings(patient)
            .into_iter()
            .filter(|id| self.recordings.get(id).is_some_and(in_scope))
            .collect();
        if view.order == Order::NewestFirst {
            ids.reverse();
        }
        ids
    }

    /// What one page of a view should hold, where the model can tell: `None`
    /// for a view whose order is unspecified and whose page may not hold
    /// everything.
    pub fn expected_page(
        &self,
        patient: PatientId,
        view: &ViewSpec,
        of: Option<Scoped>,
        page: u8,
        per_page: u8,
    ) -> Option<Vec<RecordingId>> {
        let all = self.visible_in(patient, view, of);
        if !view.paged {
            return Some(all);
        }
        if view.order == Order::Any && !(page == 1 && all.len() <= usize::from(per_page)) {
            return None;
        }
        let start = (usize::from(page).saturating_sub(1)) * usize::from(per_page);
        Some(
            all.into_iter()
                .skip(start)
                .take(usize::from(per_page))
                .collect(),
        )
    }
}

impl State {
    /// Whether `step` asks about something that is not its patient's own
    /// (another patient's id in a view, another patient's object, or a
    /// session whose account was erased): the service may rightly refuse it,
    /// and the oracles judge what it shows.
    pub fn is_cross_patient(&self, step: &Step) -> bool {
        match *step {
            Step::Probe { .. } | Step::Trespass { .. } | Step::Forge { .. } => true,
            Step::View {
                patient,
                of,
                subject,
                ..
            } => {
                let foreign_object = match of {
                    Some(Scoped::Appointment(a)) => self
                        .appointments
                        .get(&a)
                        .is_some_and(|a| a.patient != patient),
                    Some(Scoped::Call(c)) => {
                        self.calls.get(&c).is_some_and(|c| c.patient != patient)
                    }
                    None => false,
                };
                subject.is_some() || foreign_object || self.gone.contains(&patient)
            }
            _ => false,
        }
    }
}

impl Step {
    /// The optional capability this step needs, if any (register needs none;
    /// a view needs its view, checked separately; a probe needs playback).
    pub fn capability(&self) -> Option<Action> {
        match self {
            Step::Register { .. } | Step::View { .. } => None,
            Step::Book { .. } => Some(Action::Book),
            Step::Cancel { .. } => Some(Action::Cancel),
            Step::StartCall { .. } => Some(Action::StartCall),
            Step::Upgrade { .. } => Some(Action::Upgrade),
            Step::SendMedia { .. } => Some(Action::SendMedia),
            Step::EndCall { .. } => Some(Action::EndCall),
            Step::Play { .. } | Step::Probe { .. } => Some(Action::Play),
            Step::Erase { .. } => Some(Action::Erase),
            Step::EraseAccount { .. } => Some(Action::EraseAccount),
            Step::Trespass { act, .. } => Some(act.action()),
            Step::Forge { .. } => None,
        }
    }
}
