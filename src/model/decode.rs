//! Decoding fuzz bytes into a valid step sequence, and encoding steps back.
//!
//! The `flows` fuzz target and `chaperone import-fuzz` both read a fuzz input
//! through [`Flow`] (via `arbitrary`), so an artifact the fuzzer saved decodes
//! to exactly the steps it ran. The input is a list of 3-byte [`Action`]s:
//! `kind` picks the kind of step (`kind % 11`, in [`ACTIONS`] order), `pick`
//! chooses among the steps of that kind whose preconditions hold in the
//! current state (`pick % n`, folded), `arg` fills in the rest (slot, chunk,
//! page; for a probe, from 0xF0 up, a cross-patient action or a forged
//! credential instead of a playback probe). A kind with no valid step right now is skipped. Fresh aliases come
//! from the state's counters, so the decoded steps are numbered in order of
//! first appearance, as a shrunk scenario is.
//!
//! **Invariant:** every decoded sequence is valid from the empty state
//! ([`super::first_invalid`] is `None`), whatever the bytes; at most
//! [`FLOW_STEPS_MAX`] steps are decoded. [`encode`] is a right inverse on the
//! sequences it accepts: `decode(encode(steps)) == steps`.

use arbitrary::{Arbitrary, Unstructured};

use super::caps::{Action as Capability, Scope};
use super::ids::{AppointmentId, CallId, PatientId, RecordingId};
use super::state::{Limits, Mode, PER_PAGE_CHOICES, State};
use super::step::{Act, Forgery, Scoped, Slot, Step};

/// The kinds an action byte chooses among (`kind % 11`), fixed so that old
/// artifacts keep decoding to the same steps: `view` covers every declared
/// view, and `erase` also offers `erase-account` after the recordings.
const KINDS: [&str; 11] = [
    "register",
    "book",
    "cancel",
    "start-call",
    "upgrade",
    "send-media",
    "end-call",
    "view",
    "play",
    "probe",
    "erase",
];

/// How many kinds an action byte chooses among (`kind % KIND_COUNT`).
pub const KIND_COUNT: usize = KINDS.len();

/// The decoding kind of a step (its position in [`KINDS`]).
fn kind_of(step: &Step) -> usize {
    match step {
        Step::EraseAccount { .. } => 10,
        Step::Forge { .. } => 9,
        other => other.action_index(),
    }
}

/// A probe action's `arg` from which it decodes to a cross-patient action or
/// a forged credential instead of a playback probe.
const TRESPASS_ARG: u8 = 0xF0;

/// The most steps one fuzz input decodes to; later actions are ignored.
/// Long enough for several patients' whole call lifecycles, short enough
/// that one input runs in milliseconds.
pub const FLOW_STEPS_MAX: usize = 64;

/// One undecoded action: three bytes of fuzz input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub struct Action {
    /// Which kind of step: `kind % 11`, in [`ACTIONS`] order.
    pub kind: u8,
    /// Which of the valid steps of that kind: `pick % n`.
    pub pick: u8,
    /// The step's free parameter (slot, chunk number, page), by kind.
    pub arg: u8,
}

/// A fuzz input: the actions, read until the bytes run out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Flow {
    /// The actions, in order; a trailing partial action reads missing bytes as 0.
    pub actions: Vec<Action>,
}

impl<'a> Arbitrary<'a> for Flow {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        // Reading every action until the data ends keeps the byte layout a
        // plain array of 3-byte actions (no length prefix), so libFuzzer's
        // mutations (insert, erase, copy a chunk) map to step-level edits.
        let mut actions = Vec::new();
        while !u.is_empty() && actions.len() < FLOW_STEPS_MAX * 4 {
            actions.push(Action::arbitrary(u)?);
        }
        Ok(Flow { actions })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary(&mut u)
    }
}

impl Flow {
    /// Read a fuzz input exactly as the `flows` fuzz target does.
    pub fn from_bytes(bytes: &[u8]) -> Flow {
        // `Flow::arbitrary` only reads u8s, which never fail on short data.
        Flow::arbitrary_take_rest(Unstructured::new(bytes)).unwrap_or_default()
    }

    /// The valid step sequence these actions decode to under `limits`.
    pub fn steps(&self, limits: Limits) -> Vec<Step> {
        let mut state = State::new(limits);
        let mut steps = Vec::new();
        for action in &self.actions {
            if steps.len() >= FLOW_STEPS_MAX {
                break;
            }
            let kind = usize::from(action.kind) % KINDS.len();
            let candidates = candidates(&state, kind, action.arg);
            if candidates.is_empty() {
                continue;
            }
            let step = candidates[usize::from(action.pick) % candidates.len()].clone();
            debug_assert!(state.precondition(&step), "decoded an invalid step {step}");
            state = state.apply(&step);
            steps.push(step);
        }
        steps
    }
}

impl Flow {
    /// The actions of `self` that decode to a step under `limits`, and no
    /// others: the shortest input that decodes to the same steps (an action
    /// whose kind has no valid step is skipped by the decoder, so dropping it
    /// changes nothing; actions past [`FLOW_STEPS_MAX`] steps are ignored).
    /// The `flows` mutator keeps its inputs in this form, so every action of
    /// an input is a step and every edit of an action edits a step.
    pub fn canonical(&self, limits: Limits) -> Flow {
        let mut state = State::new(limits);
        let mut kept = Vec::new();
        for action in &self.actions {
            if kept.len() >= FLOW_STEPS_MAX {
                break;
            }
            let kind = usize::from(action.kind) % KINDS.len();
            let candidates = candidates(&state, kind, action.arg);
            if candidates.is_empty() {
                continue;
            }
            let step = &candidates[usize::from(action.pick) % candidates.len()];
            state = state.apply(step);
            kept.push(*action);
        }
        Flow { actions: kept }
    }

    /// The input bytes of these actions, three per action (the inverse of
    /// [`Flow::from_bytes`] on whole actions).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.actions
            .iter()
            .flat_map(|a| [a.kind, a.pick, a.arg])
            .collect()
    }
}

/// Decode fuzz bytes into a valid step sequence under `limits`.
pub fn decode(bytes: &[u8], limits: Limits) -> Vec<Step> {
    Flow::from_bytes(bytes).steps(limits)
}

/// The fuzz bytes that decode to `steps`, if every step is one the decoder
/// can produce (fresh aliases in order, a slot on the current day or the
/// next, chunks 1 to 9, a page size from [`PER_PAGE_CHOICES`]).
/// Used to write seed inputs from readable scenarios.
pub fn encode(steps: &[Step], limits: Limits) -> Option<Vec<u8>> {
    let mut state = State::new(limits);
    let mut bytes = Vec::with_capacity(steps.len() * 3);
    for step in steps.iter().take(FLOW_STEPS_MAX) {
        let kind = kind_of(step);
        let found = (0..=u8::MAX).find_map(|arg| {
            let candidates = candidates(&state, kind, arg);
            let pick = candidates.iter().position(|c| c == step)?;
            Some((u8::try_from(pick).ok()?, arg))
        });
        let (pick, arg) = found?;
        bytes.extend([kind as u8, pick, arg]);
        state = state.apply(step);
    }
    (steps.len() <= FLOW_STEPS_MAX).then_some(bytes)
}

/// Every valid step of kind `kind` (an index into [`ACTIONS`]) in `state`,
/// with `arg` as its free parameter, in a fixed order.
fn candidates(state: &State, kind: usize, arg: u8) -> Vec<Step> {
    raw_candidates(state, kind, arg)
        .into_iter()
        .filter(|s| state.precondition(s))
        .collect()
}

fn raw_candidates(state: &State, kind: usize, arg: u8) -> Vec<Step> {
    let caps = state.limits.caps;
    let everyone = &state.patients;
    let active_patients: Vec<PatientId> = everyone
        .iter()
        .copied()
        .filter(|p| state.is_active(*p))
        .collect();
    let patients = &active_patients;
    let appointment = AppointmentId(state.next_appointment);
    let (call, recording) = (CallId(state.next_call), RecordingId(state.next_recording));
    let idle = || {
        state
            .appointments
            .iter()
            .filter(|(_, a)| !a.cancelled && a.active_call.is_none())
            .map(|(id, a)| (a.patient, *id))
    };
    let active = || {
        state
            .calls
            .iter()
            .filter(|(_, c)| !c.ended)
            .map(|(id, c)| (c.patient, *id, c.mode))
    };
    let steps: Vec<Step> = match KINDS[kind] {
        "register" => (everyone.len() < state.limits.patients_max as usize)
            .then_some(Step::Register {
                patient: PatientId(state.next_patient),
            })
            .into_iter()
            .collect(),
        "book" => {
            // Bit 0: today or tomorrow; the rest: the hour, 8 to 17.
            let slot = Slot {
                day: state.day + u16::from(arg & 1),
                hour: 8 + (arg >> 1) % 10,
            };
            patients
                .iter()
                .map(|&patient| Step::Book {
                    patient,
                    appointment,
                    slot,
                })
                .collect()
        }
        "cancel" => idle()
            .map(|(patient, appointment)| Step::Cancel {
                patient,
                appointment,
            })
            .collect(),
        "start-call" => idle()
            .map(|(patient, appointment)| Step::StartCall {
                patient,
                appointment,
                call,
                recording,
            })
            .collect(),
        "upgrade" => active()
            .filter(|(_, _, mode)| *mode == Mode::Audio)
            .map(|(patient, call, _)| Step::Upgrade {
                patient,
                call,
                recording,
            })
            .collect(),
        "send-media" => active()
            .map(|(patient, call, _)| Step::SendMedia {
                patient,
                call,
                chunk: 1 + u16::from(arg % 9),
            })
            .collect(),
        "end-call" => active()
            .map(|(patient, call, _)| Step::EndCall { patient, call })
            .collect(),
        "view" => {
            // Low nibble: the page; high nibble: the page size, where 0 is
            // the default size of 10, as real patients mostly view it.
            let pages = state.limits.history_pages_max.max(1);
            let page = 1 + (arg & 0x0f) % pages;
            let sizes = PER_PAGE_CHOICES.len();
            let per_page = PER_PAGE_CHOICES[(sizes - 1 + usize::from(arg >> 4)) % sizes];
            let mut steps = Vec::new();
            for spec in caps.views() {
                let view = spec.name;
                let targets: Vec<(PatientId, Option<Scoped>)> = match spec.scope {
                    None => patients.iter().map(|p| (*p, None)).collect(),
                    // The owner first, then every other patient (a cross-patient probe).
                    Some(Scope::Appointment) => state
                        .appointments
                        .iter()
                        .flat_map(|(id, a)| {
                            let of = Some(Scoped::Appointment(*id));
                            std::iter::once((a.patient, of)).chain(
                                patients
                                    .iter()
                                    .filter(|p| **p != a.patient)
                                    .map(move |p| (*p, of)),
                            )
                        })
                        .collect(),
                    Some(Scope::Call) => state
                        .calls
                        .iter()
                        .flat_map(|(id, c)| {
                            let of = Some(Scoped::Call(*id));
                            std::iter::once((c.patient, of)).chain(
                                patients
                                    .iter()
                                    .filter(|p| **p != c.patient)
                                    .map(move |p| (*p, of)),
                            )
                        })
                        .collect(),
                };
                for (patient, of) in targets {
                    steps.push(Step::View {
                        patient,
                        view,
                        of,
                        subject: None,
                        page,
                        per_page,
                    });
                    if spec.tamperable {
                        for &subject in everyone.iter().filter(|q| **q != patient) {
                            steps.push(Step::View {
                                patient,
                                view,
                                of,
                                subject: Some(subject),
                                page,
                                per_page,
                            });
                        }
                    }
                }
                if spec.scope.is_none() {
                    for &patient in &state.gone {
                        steps.push(Step::View {
                            patient,
                            view,
                            of: None,
                            subject: None,
                            page,
                            per_page,
                        });
                    }
                }
            }
            steps
        }
        "play" => state
            .recordings
            .iter()
            .map(|(id, r)| Step::Play {
                patient: r.owner,
                recording: *id,
            })
            .collect(),
        // `arg` from 0xF0 up: cross-patient actions, then forged
        // credentials (added later; below it, probes decode as they always did).
        "probe" if arg >= TRESPASS_ARG => {
            let mut steps: Vec<Step> = Vec::new();
            for &patient in patients {
                for (id, a) in &state.appointments {
                    if a.patient != patient {
                        steps.push(Step::Trespass {
                            patient,
                            act: Act::Cancel(*id),
                        });
                        steps.push(Step::Trespass {
                            patient,
                            act: Act::StartCall(*id),
                        });
                    }
                }
                for (id, c) in &state.calls {
                    if c.patient != patient {
                        for act in [Act::Upgrade(*id), Act::SendMedia(*id), Act::EndCall(*id)] {
                            steps.push(Step::Trespass { patient, act });
                        }
                    }
                }
                for (id, r) in &state.recordings {
                    if r.owner != patient {
                        steps.push(Step::Trespass {
                            patient,
                            act: Act::Erase(*id),
                        });
                    }
                }
            }
            for &patient in patients {
                for forgery in Forgery::ALL {
                    steps.push(Step::Forge { patient, forgery });
                }
            }
            steps
        }
        "probe" => patients
            .iter()
            .flat_map(|&patient| {
                state
                    .recordings
                    .iter()
                    .filter(move |(_, r)| r.owner != patient)
                    .map(move |(id, _)| Step::Probe {
                        patient,
                        recording: *id,
                    })
            })
            .collect(),
        "erase" => {
            let mut steps: Vec<Step> = state
                .recordings
                .iter()
                .filter(|(_, r)| r.finished && !r.erased)
                .map(|(id, r)| Step::Erase {
                    patient: r.owner,
                    recording: *id,
                })
                .collect();
            if caps.has(Capability::EraseAccount) {
                steps.extend(
                    patients
                        .iter()
                        .map(|&patient| Step::EraseAccount { patient }),
                );
            }
            steps
        }
        other => unreachable!("KINDS has no `{other}`"),
    };
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::first_invalid;

    fn steps_of(lines: &[&str]) -> Vec<Step> {
        lines.iter().map(|l| Step::parse(l).unwrap()).collect()
    }

    #[test]
    fn any_bytes_decode_to_a_valid_bounded_sequence() {
        // Goal: the decoder's invariant: whatever the bytes, the steps are
        // valid from the empty state and at most FLOW_STEPS_MAX.
        // Method: 2,000 pseudo-random inputs of varied length from a fixed
        // xorshift seed, plus the degenerate ones.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let limits = Limits::default();
        let mut longest = 0;
        let mut kinds = [false; crate::model::ACTIONS.len()];
        for _ in 0..2_000 {
            let len = (next() % 400) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let steps = decode(&bytes, limits);
            assert_eq!(first_invalid(limits, &steps), None);
            assert!(steps.len() <= FLOW_STEPS_MAX);
            longest = longest.max(steps.len());
            for step in &steps {
                kinds[step.action_index()] = true;
            }
        }
        assert_eq!(longest, FLOW_STEPS_MAX, "long inputs reach the cap");
        assert!(
            kinds[..11].iter().all(|k| *k),
            "every kind the clinic has decodes: {kinds:?}"
        );
        assert!(decode(&[], limits).is_empty());
        assert!(
            decode(&[255; 2], limits).is_empty(),
            "nothing valid before register"
        );
    }

    #[test]
    fn the_canonical_flow_decodes_to_the_same_steps_with_one_action_each() {
        // Goal: `Flow::canonical` drops exactly the actions the decoder
        // skips, so the fuzz mutator may keep inputs in that form without
        // changing what they run.
        // Method: 500 pseudo-random inputs (fixed seed): the canonical form
        // decodes to the same steps, has one action per step, is its own
        // canonical form, and its bytes read back to it.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let limits = Limits::default();
        let mut dropped = 0;
        for _ in 0..500 {
            let len = (next() % 600) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let flow = Flow::from_bytes(&bytes);
            let canonical = flow.canonical(limits);
            let steps = flow.steps(limits);
            assert_eq!(canonical.steps(limits), steps);
            assert_eq!(canonical.actions.len(), steps.len());
            assert_eq!(canonical.canonical(limits), canonical);
            assert_eq!(Flow::from_bytes(&canonical.to_bytes()), canonical);
            dropped += flow.actions.len() - canonical.actions.len();
        }
        assert!(dropped > 0, "random inputs have actions the decoder skips");
    }

    #[test]
    fn encode_then_decode_gives_the_steps_back() {
        // Goal: seeds written from scenarios decode to those scenarios.
        // Method: the 2020 incident and a one-patient lifecycle round-trip;
        // a step the decoder cannot produce is refused.
        let limits = Limits::default();
        let incident = steps_of(&[
            "P1 register",
            "P2 register",
            "P1 book A1 at d1-08h",
            "P1 start-call A1 -> C1 R1",
            "P2 book A2 at d1-15h",
            "P2 start-call A2 -> C2 R2",
            "P1 upgrade C1 -> R3",
            "P2 view-history page=1 per-page=10",
        ]);
        let lifecycle = steps_of(&[
            "P1 register",
            "P1 book A1 at d2-17h",
            "P1 start-call A1 -> C1 R1",
            "P1 send-media C1 #9",
            "P1 upgrade C1 -> R2",
            "P1 send-media C1 #1",
            "P1 end-call C1",
            "P1 view-history page=3 per-page=1",
            "P1 play R2",
            "P1 erase R1",
            "P1 cancel A1",
        ]);
        for steps in [incident, lifecycle] {
            let bytes = encode(&steps, limits).expect("encodable");
            assert_eq!(bytes.len(), steps.len() * 3);
            assert_eq!(decode(&bytes, limits), steps);
        }
        let skipped_alias = steps_of(&["P2 register"]);
        assert_eq!(encode(&skipped_alias, limits), None);
    }
}
