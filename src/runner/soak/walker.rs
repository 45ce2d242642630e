//! One simulated patient's walk through the model during a soak.
//!
//! A [`Walker`] holds a model [`State`] that contains only its own patient
//! (their appointments, calls and recordings), so it stays small however long
//! the soak runs, and a ChaCha RNG seeded from the soak seed and the patient's
//! alias, so the patient's choices are reproducible even though the
//! interleaving of patients is not. Fresh aliases come from counters shared by
//! every patient ([`Aliases`]), so names never collide across patients.
//!
//! **Invariant:** every step a walker offers satisfies
//! [`State::precondition`] in its own state; a probe names a recording of
//! another patient that the service has already created.

use std::sync::atomic::{AtomicU32, Ordering};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::model::{
    Action, AppointmentId, CallId, Capabilities, Limits, Mode, PER_PAGE_CHOICES, PatientId,
    RecordingId, Slot, State, Step, ViewName,
};

/// The most non-erased recordings one patient keeps: past it the patient
/// erases before calling again, which bounds the per-patient state.
pub const RECORDINGS_PER_PATIENT_MAX: usize = 6;

/// The most open appointments one patient keeps.
const APPOINTMENTS_OPEN_MAX: usize = 2;

/// How patients choose their next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mix {
    /// Calls, upgrades, media, history views and probes in similar measure:
    /// the hunting mix.
    #[default]
    Balanced,
    /// Mostly history views: what a patient app mostly does, and the mix the
    /// throughput benchmark compares with a plain load generator.
    ReadHeavy,
}

impl Mix {
    /// The mix's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Balanced => "balanced",
            Mix::ReadHeavy => "read-heavy",
        }
    }

    /// Weights, indexed as [`crate::model::ACTIONS`] (register is forced first).
    fn weights(self) -> [u32; 11] {
        match self {
            // register book cancel start upgrade media end view play probe erase
            Mix::Balanced => [0, 3, 1, 5, 6, 3, 3, 5, 2, 2, 1],
            Mix::ReadHeavy => [0, 1, 1, 1, 1, 1, 1, 60, 4, 2, 1],
        }
    }
}

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "balanced" => Ok(Mix::Balanced),
            "read-heavy" => Ok(Mix::ReadHeavy),
            other => Err(format!(
                "unknown mix `{other}`; expected `balanced` or `read-heavy`"
            )),
        }
    }
}

/// Alias counters shared by every patient of a soak.
#[derive(Debug)]
pub struct Aliases {
    appointment: AtomicU32,
    call: AtomicU32,
}

impl Default for Aliases {
    fn default() -> Self {
        Aliases {
            appointment: AtomicU32::new(1),
            call: AtomicU32::new(1),
        }
    }
}

impl Aliases {
    fn appointment(&self) -> AppointmentId {
        AppointmentId(self.appointment.fetch_add(1, Ordering::Relaxed))
    }

    fn call(&self) -> CallId {
        CallId(self.call.fetch_add(1, Ordering::Relaxed))
    }
}

/// One patient: their own model state and their own RNG.
#[derive(Debug)]
pub struct Walker {
    /// The patient.
    pub patient: PatientId,
    /// The model state of this patient alone.
    pub state: State,
    rng: ChaCha8Rng,
    slot: u32,
    /// An upgrade succeeded and no history view has followed yet (coverage of
    /// "upgrade mid-call, then view history").
    pub upgraded_unviewed: bool,
    /// Own finished recordings a view has shown this patient: one that later
    /// goes missing from a view that should hold it was lost. Bounded by the
    /// patient's own recordings (`steps_per_patient_max`).
    pub seen_complete: std::collections::BTreeSet<crate::model::RecordingId>,
}

/// The limits of a walker's own state: any alias, three history pages, the
/// binding's capabilities.
fn limits(caps: Capabilities) -> Limits {
    Limits {
        patients_max: u32::MAX,
        history_pages_max: 3,
        caps,
    }
}

impl Walker {
    /// A patient who has not registered yet; `seed` is the soak's seed.
    pub fn new(patient: PatientId, seed: u64, caps: Capabilities) -> Walker {
        let mixed = seed ^ u64::from(patient.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Walker {
            patient,
            state: State::new(limits(caps)),
            rng: ChaCha8Rng::seed_from_u64(mixed),
            slot: 0,
            upgraded_unviewed: false,
            seen_complete: std::collections::BTreeSet::new(),
        }
    }

    /// The next step. `new_recording` allocates a fresh recording alias owned
    /// by this patient; `probe_target` picks another patient's created
    /// recording (or `None`).
    pub fn choose(
        &mut self,
        mix: Mix,
        aliases: &Aliases,
        mut new_recording: impl FnMut() -> RecordingId,
        mut probe_target: impl FnMut(&mut ChaCha8Rng) -> Option<RecordingId>,
    ) -> Step {
        let patient = self.patient;
        if !self.state.is_registered(patient) {
            return Step::Register { patient };
        }
        let idle: Vec<AppointmentId> = self
            .state
            .appointments
            .iter()
            .filter(|(_, a)| !a.cancelled && a.active_call.is_none())
            .map(|(id, _)| *id)
            .collect();
        let active = self
            .state
            .calls
            .iter()
            .find(|(_, c)| !c.ended)
            .map(|(id, c)| (*id, c.mode));
        let live = self.state.recordings.values().filter(|r| !r.erased).count();
        let own: Vec<RecordingId> = self.state.recordings.keys().copied().collect();
        let erasable: Vec<RecordingId> = self
            .state
            .recordings
            .iter()
            .filter(|(_, r)| r.finished && !r.erased)
            .map(|(id, _)| *id)
            .collect();
        let full = live >= RECORDINGS_PER_PATIENT_MAX;

        let w = mix.weights();
        let mut options: [u32; 11] = [0; 11];
        options[1] = if idle.len() < APPOINTMENTS_OPEN_MAX {
            w[1]
        } else {
            0
        };
        options[2] = if idle.is_empty() { 0 } else { w[2] };
        options[3] = if !idle.is_empty() && active.is_none() && !full {
            w[3]
        } else {
            0
        };
        options[4] = if matches!(active, Some((_, Mode::Audio))) {
            w[4]
        } else {
            0
        };
        options[5] = if active.is_some() { w[5] } else { 0 };
        options[6] = if active.is_some() { w[6] } else { 0 };
        options[7] = w[7];
        options[8] = if own.is_empty() { 0 } else { w[8] };
        options[9] = w[9];
        options[10] = match (erasable.is_empty(), full) {
            (true, _) => 0,
            (false, true) => w[10] * 20 + 10,
            (false, false) => w[10],
        };

        // Only what the binding has; a view needs an unscoped view.
        let caps = self.state.limits.caps;
        let bound = [
            None,
            Some(Action::Book),
            Some(Action::Cancel),
            Some(Action::StartCall),
            Some(Action::Upgrade),
            Some(Action::SendMedia),
            Some(Action::EndCall),
            None,
            Some(Action::Play),
            Some(Action::Play),
            Some(Action::Erase),
        ];
        for (option, needs) in options.iter_mut().zip(bound) {
            if needs.is_some_and(|a| !caps.has(a)) {
                *option = 0;
            }
        }
        if self.whole_view().is_none() {
            options[7] = 0;
            options[9] = 0;
        }
        let total: u32 = options.iter().sum();
        if total == 0 {
            // Nothing bound applies right now: a booking opens new options.
            options[1] = 1;
        }
        let total: u32 = options.iter().sum();
        let mut pick = self.rng.random_range(0..total.max(1));
        let mut action = 7;
        for (i, weight) in options.iter().enumerate() {
            if pick < *weight {
                action = i;
                break;
            }
            pick -= weight;
        }
        let any =
            |rng: &mut ChaCha8Rng, items: &[RecordingId]| items[rng.random_range(0..items.len())];
        match action {
            1 => {
                self.slot += 1;
                let slot = Slot {
                    day: u16::try_from(1 + self.slot / 10).unwrap_or(u16::MAX),
                    hour: 8 + (self.slot % 10) as u8,
                };
                Step::Book {
                    patient,
                    appointment: aliases.appointment(),
                    slot,
                }
            }
            2 => Step::Cancel {
                patient,
                appointment: idle[self.rng.random_range(0..idle.len())],
            },
            3 => Step::StartCall {
                patient,
                appointment: idle[self.rng.random_range(0..idle.len())],
                call: aliases.call(),
                recording: new_recording(),
            },
            4 => Step::Upgrade {
                patient,
                call: active.map(|(c, _)| c).unwrap_or(CallId(0)),
                recording: new_recording(),
            },
            5 => Step::SendMedia {
                patient,
                call: active.map(|(c, _)| c).unwrap_or(CallId(0)),
                chunk: self.rng.random_range(1..=9),
            },
            6 => Step::EndCall {
                patient,
                call: active.map(|(c, _)| c).unwrap_or(CallId(0)),
            },
            8 => Step::Play {
                patient,
                recording: any(&mut self.rng, &own),
            },
            9 => match probe_target(&mut self.rng) {
                Some(recording) if !self.state.recordings.contains_key(&recording) => {
                    Step::Probe { patient, recording }
                }
                _ => self.view(),
            },
            10 => Step::Erase {
                patient,
                recording: any(&mut self.rng, &erasable),
            },
            _ => self.view(),
        }
    }

    fn view(&mut self) -> Step {
        // Mostly the first page at the default size, as real patients view it.
        let (page, per_page) = if self.rng.random_ratio(3, 4) {
            (1, 10)
        } else {
            let page = self.rng.random_range(1..=3u8);
            let per_page = PER_PAGE_CHOICES[self.rng.random_range(0..PER_PAGE_CHOICES.len())];
            (page, per_page)
        };
        Step::View {
            patient: self.patient,
            view: self.whole_view().unwrap_or(ViewName::HISTORY),
            of: None,
            subject: None,
            page,
            per_page,
        }
    }

    /// The first view that lists all of a patient's recordings (no scope).
    fn whole_view(&self) -> Option<ViewName> {
        self.state
            .limits
            .caps
            .views()
            .find(|v| v.scope.is_none())
            .map(|v| v.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walkers_offer_only_valid_steps_and_are_reproducible() {
        // Goal: every offered step is valid in the walker's own state, and the
        // same seed and alias give the same walk.
        // Method: walk two walkers with the same seed 500 steps, applying each
        // step as if the service had accepted it; compare their steps.
        let walk = || {
            let aliases = Aliases::default();
            let mut next = 0;
            let mut walker = Walker::new(PatientId(7), 42, Capabilities::default());
            let mut steps = Vec::new();
            for _ in 0..500 {
                let step = walker.choose(
                    Mix::Balanced,
                    &aliases,
                    || {
                        next += 1;
                        RecordingId(next)
                    },
                    |_| None,
                );
                assert!(walker.state.precondition(&step), "invalid {step}");
                walker.state = walker.state.clone().apply(&step);
                steps.push(step.to_string());
            }
            steps
        };
        let first = walk();
        assert_eq!(first, walk());
        for action in ["upgrade", "view history", "erase", "cancel", "end-call"] {
            assert!(first.iter().any(|s| s.contains(action)), "never {action}");
        }
    }
}
