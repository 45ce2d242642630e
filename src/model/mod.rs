//! The pure reference model: patients, appointments, calls, recordings, erasures.
//!
//! It generates steps (proptest strategies whose preconditions encode every
//! validity rule), decodes fuzz inputs into valid steps ([`decode`]) and
//! predicts what each patient may see.
//!
//! **Architecture invariant:** `model` knows nothing of HTTP, async or the
//! service's ids; it is deterministic and does no I/O.

pub mod caps;
pub mod decode;
mod generate;
mod ids;
pub mod payload;
mod state;
mod step;

use std::collections::HashMap;

pub use caps::{Action, Capabilities, Order, Scope, ViewName, ViewSpec};
pub use decode::{FLOW_STEPS_MAX, Flow, KIND_COUNT, decode, encode};
pub use generate::{next_step, sequences};
pub use ids::{AliasError, AppointmentId, CallId, PatientId, RecordingId};
pub use state::{Appointment, Call, Limits, Mode, PER_PAGE_CHOICES, Recording, State};
pub use step::{ACTIONS, Act, Forgery, Scoped, Slot, Step, StepParseError};

/// The first step (index) whose precondition fails, replaying from the empty state.
pub fn first_invalid(limits: Limits, steps: &[Step]) -> Option<usize> {
    let mut state = State::new(limits);
    for (i, step) in steps.iter().enumerate() {
        if !state.precondition(step) {
            return Some(i);
        }
        state = state.apply(step);
    }
    None
}

/// The steps `patient` takes in `steps` on their own: each of theirs that
/// names only their own objects (no probe, no tampering, no other patient's
/// object), in order. What another patient did is left out, so a
/// noninterference check can compare the patient's observations with and
/// without everybody else.
pub fn alone(limits: Limits, steps: &[Step], patient: PatientId) -> Vec<Step> {
    alone_indices(limits, steps, patient)
        .into_iter()
        .map(|i| steps[i].clone())
        .collect()
}

/// Where in `steps` the steps of [`alone`] stand: their indices, in order.
pub fn alone_indices(limits: Limits, steps: &[Step], patient: PatientId) -> Vec<usize> {
    let mut state = State::new(limits);
    let mut own = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        if !state.precondition(step) {
            break;
        }
        if step.patient() == patient && !state.is_cross_patient(step) {
            own.push(i);
        }
        state = state.apply(step);
    }
    own
}

/// The first step (index into `steps`) that cannot run where it stands when
/// steps are sent in groups: `groups` are the sizes of consecutive groups sent
/// together (empty: every step alone). Within a group every step must be by a
/// different patient and valid in the state before the group, since the group's
/// steps may reach the service in any order.
pub fn first_invalid_grouped(limits: Limits, steps: &[Step], groups: &[usize]) -> Option<usize> {
    if groups.is_empty() {
        return first_invalid(limits, steps);
    }
    let mut state = State::new(limits);
    let mut start = 0;
    for &size in groups {
        let group = steps.get(start..start + size)?;
        for (i, step) in group.iter().enumerate() {
            let repeated = group[..i].iter().any(|s| s.patient() == step.patient());
            if repeated || !state.precondition(step) {
                return Some(start + i);
            }
        }
        for (i, step) in group.iter().enumerate() {
            if !state.precondition(step) {
                return Some(start + i);
            }
            state = state.apply(step);
        }
        start += size;
    }
    (start != steps.len()).then_some(start.min(steps.len()))
}

/// Keep only the steps that are still valid after earlier ones were removed.
///
/// The shrinker deletes a step and then drops whatever depended on it (a call
/// whose appointment is gone, a probe of a recording never made).
pub fn prune(limits: Limits, steps: &[Step]) -> Vec<Step> {
    let mut state = State::new(limits);
    let mut kept = Vec::with_capacity(steps.len());
    for step in steps {
        if state.precondition(step) {
            state = state.apply(step);
            kept.push(step.clone());
        }
    }
    kept
}

/// Rename every alias by order of first appearance (`P3 P1` becomes `P1 P2`),
/// so a minimal scenario reads from `P1`, `A1`, `C1`, `R1` whatever was shrunk away.
pub fn renumber(steps: &[Step]) -> Vec<Step> {
    #[derive(Default)]
    struct Names {
        p: HashMap<u32, u32>,
        a: HashMap<u32, u32>,
        c: HashMap<u32, u32>,
        r: HashMap<u32, u32>,
    }
    fn next(map: &mut HashMap<u32, u32>, n: u32) -> u32 {
        let len = map.len() as u32;
        *map.entry(n).or_insert(len + 1)
    }
    let mut names = Names::default();
    steps
        .iter()
        .map(|step| {
            let mut p = |x: PatientId| PatientId(next(&mut names.p, x.0));
            let patient = p(step.patient());
            let names = &mut names;
            match *step {
                Step::Register { .. } => Step::Register { patient },
                Step::Book {
                    appointment, slot, ..
                } => Step::Book {
                    patient,
                    appointment: AppointmentId(next(&mut names.a, appointment.0)),
                    slot,
                },
                Step::Cancel { appointment, .. } => Step::Cancel {
                    patient,
                    appointment: AppointmentId(next(&mut names.a, appointment.0)),
                },
                Step::StartCall {
                    appointment,
                    call,
                    recording,
                    ..
                } => Step::StartCall {
                    patient,
                    appointment: AppointmentId(next(&mut names.a, appointment.0)),
                    call: CallId(next(&mut names.c, call.0)),
                    recording: RecordingId(next(&mut names.r, recording.0)),
                },
                Step::Upgrade {
                    call, recording, ..
                } => Step::Upgrade {
                    patient,
                    call: CallId(next(&mut names.c, call.0)),
                    recording: RecordingId(next(&mut names.r, recording.0)),
                },
                Step::SendMedia { call, chunk, .. } => Step::SendMedia {
                    patient,
                    call: CallId(next(&mut names.c, call.0)),
                    chunk,
                },
                Step::EndCall { call, .. } => Step::EndCall {
                    patient,
                    call: CallId(next(&mut names.c, call.0)),
                },
                Step::View {
                    view,
                    of,
                    subject,
                    page,
                    per_page,
                    ..
                } => Step::View {
                    patient,
                    view,
                    of: of.map(|of| match of {
                        Scoped::Appointment(a) => {
                            Scoped::Appointment(AppointmentId(next(&mut names.a, a.0)))
                        }
                        Scoped::Call(c) => Scoped::Call(CallId(next(&mut names.c, c.0))),
                    }),
                    subject: subject.map(|q| PatientId(next(&mut names.p, q.0))),
                    page,
                    per_page,
                },
                Step::EraseAccount { .. } => Step::EraseAccount { patient },
                Step::Play { recording, .. } => Step::Play {
                    patient,
                    recording: RecordingId(next(&mut names.r, recording.0)),
                },
                Step::Probe { recording, .. } => Step::Probe {
                    patient,
                    recording: RecordingId(next(&mut names.r, recording.0)),
                },
                Step::Erase { recording, .. } => Step::Erase {
                    patient,
                    recording: RecordingId(next(&mut names.r, recording.0)),
                },
                Step::Trespass { act, .. } => Step::Trespass {
                    patient,
                    act: match act {
                        Act::Cancel(a) => Act::Cancel(AppointmentId(next(&mut names.a, a.0))),
                        Act::StartCall(a) => Act::StartCall(AppointmentId(next(&mut names.a, a.0))),
                        Act::Upgrade(c) => Act::Upgrade(CallId(next(&mut names.c, c.0))),
                        Act::SendMedia(c) => Act::SendMedia(CallId(next(&mut names.c, c.0))),
                        Act::EndCall(c) => Act::EndCall(CallId(next(&mut names.c, c.0))),
                        Act::Erase(r) => Act::Erase(RecordingId(next(&mut names.r, r.0))),
                    },
                },
                Step::Forge { forgery, .. } => Step::Forge { patient, forgery },
            }
        })
        .collect()
}

/// The capabilities a scenario's steps use: every action, and each view it
/// names, shaped as the steps use it. A scenario is read before it is known
/// which binding it will replay through; [`first_outside`] then checks it
/// against the binding's own capabilities.
pub fn caps_for(steps: &[Step]) -> Capabilities {
    let mut caps = Capabilities::none();
    for action in Action::ALL {
        caps = caps.with(action);
    }
    let mut views: Vec<ViewSpec> = Vec::new();
    for step in steps {
        if let Step::View {
            view, of, subject, ..
        } = step
        {
            let scope = of.map(Scoped::scope);
            match views.iter_mut().find(|v| v.name == *view) {
                Some(spec) => spec.tamperable |= subject.is_some(),
                None => views.push(ViewSpec {
                    name: *view,
                    scope,
                    paged: true,
                    order: Order::Any,
                    tamperable: subject.is_some(),
                }),
            }
        }
    }
    // A forged credential asks the binding's first unscoped view, whichever
    // it is: a scenario that forges needs one.
    if steps.iter().any(|s| matches!(s, Step::Forge { .. }))
        && !views.iter().any(|v| v.scope.is_none())
        && !views.iter().any(|v| v.name == ViewName::HISTORY)
    {
        views.push(ViewSpec {
            name: ViewName::HISTORY,
            scope: None,
            paged: true,
            order: Order::Any,
            tamperable: false,
        });
    }
    for view in views {
        // A step naming a view with another shape than its first use fails
        // the validity check instead; more than VIEWS_MAX views likewise.
        if let Ok(more) = caps.with_view(view) {
            caps = more;
        }
    }
    caps
}

/// The first step a service with `caps` cannot perform (an action or view
/// its binding lacks, or a view used in another shape), if any.
pub fn first_outside(caps: Capabilities, steps: &[Step]) -> Option<usize> {
    steps.iter().position(|step| {
        if let Some(action) = step.capability()
            && !caps.has(action)
        {
            return true;
        }
        match step {
            Step::Forge { .. } => !caps.views().any(|v| v.scope.is_none()),
            Step::View {
                view, of, subject, ..
            } => match caps.view(*view) {
                None => true,
                Some(spec) => {
                    let scope = of.map(Scoped::scope);
                    spec.scope != scope || (subject.is_some() && !spec.tamperable)
                }
            },
            _ => false,
        }
    })
}

/// The limits that let a given scenario replay against a service with
/// `caps`: enough patients for its aliases, enough pages for its views.
pub fn limits_for(caps: Capabilities, steps: &[Step]) -> Limits {
    let mut limits = Limits {
        caps,
        ..Limits::default()
    };
    let highest_patient = steps.iter().map(|s| s.patient().0).max().unwrap_or(1);
    let highest_page = steps
        .iter()
        .filter_map(|s| match s {
            Step::View { page, .. } => Some(*page),
            _ => None,
        })
        .max()
        .unwrap_or(1);
    limits.patients_max = limits.patients_max.max(highest_patient);
    limits.history_pages_max = limits.history_pages_max.max(highest_page);
    limits
}

#[cfg(test)]
mod tests;
