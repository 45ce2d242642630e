//! The reference state: what exists, who owns it, and what each patient may see.
//!
//! [`State::precondition`] encodes every validity rule of a step; the shrinker
//! replays candidate sequences through it alone, so a rule missing here lets the
//! shrinker invent scenarios the service would rightly refuse.
//! [`State::apply`] is the step's effect, with no I/O.

use std::collections::BTreeMap;

use super::ids::{AppointmentId, CallId, PatientId, RecordingId};
use super::step::Step;

/// Limits on what the model generates. All limits live here, together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most patients registered in one case.
    pub patients_max: u32,
    /// Highest history page a patient asks for.
    pub history_pages_max: u8,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            patients_max: 4,
            history_pages_max: 3,
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
}

/// The whole reference state after some sequence of steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// Generation limits (carried here so preconditions can see them).
    pub limits: Limits,
    /// Registered patients.
    pub patients: Vec<PatientId>,
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

    /// Every validity rule of a step in this state.
    pub fn precondition(&self, step: &Step) -> bool {
        let registered = self.is_registered(step.patient());
        match *step {
            Step::Register { patient } => {
                !registered && patient.0 >= 1 && patient.0 <= self.limits.patients_max
            }
            Step::Book { appointment, .. } => {
                registered && !self.appointments.contains_key(&appointment)
            }
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
            Step::ViewHistory { page, per_page, .. } => {
                registered
                    && page >= 1
                    && page <= self.limits.history_pages_max.max(1)
                    && (1..=100).contains(&per_page)
            }
            Step::Play { patient, recording } => self
                .recordings
                .get(&recording)
                .is_some_and(|r| r.owner == patient),
            Step::Probe { patient, recording } => {
                registered
                    && self
                        .recordings
                        .get(&recording)
                        .is_some_and(|r| r.owner != patient)
            }
            Step::Erase { patient, recording } => self
                .recordings
                .get(&recording)
                .is_some_and(|r| r.owner == patient && r.finished && !r.erased),
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
            Step::SendMedia { call, .. } => {
                if let Some(current) = self.calls.get(&call).map(|c| c.current)
                    && let Some(r) = self.recordings.get_mut(&current)
                {
                    r.chunks += 1;
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
            Step::ViewHistory { .. } | Step::Play { .. } | Step::Probe { .. } => {}
            Step::Erase { recording, .. } => {
                if let Some(r) = self.recordings.get_mut(&recording) {
                    r.erased = true;
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

    /// What one page of `patient`'s history view should hold.
    pub fn expected_page(&self, patient: PatientId, page: u8, per_page: u8) -> Vec<RecordingId> {
        let start = (usize::from(page).saturating_sub(1)) * usize::from(per_page);
        self.visible_recordings(patient)
            .into_iter()
            .skip(start)
            .take(usize::from(per_page))
            .collect()
    }
}
