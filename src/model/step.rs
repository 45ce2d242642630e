//! Steps: the transitions of the model, one per patient action.
//!
//! A step names everything it creates (`A2`, `C1`, `R3`) when it is generated,
//! not when it runs, so deleting an earlier step while shrinking never changes
//! what a later step refers to. The text form (`P1 start-call A1 -> C1 R1`) is
//! what scenario files hold; [`Step::parse`] reads it back.

use std::fmt;

use super::caps::{Action, Scope, ViewName, ViewNameError};
use super::ids::{AliasError, AppointmentId, CallId, PatientId, RecordingId};

/// A booking slot on the model's virtual calendar: a day and an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// Day number, from 1.
    pub day: u16,
    /// Hour of the day, 8 to 17.
    pub hour: u8,
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "d{}-{:02}h", self.day, self.hour)
    }
}

impl Slot {
    fn parse(s: &str) -> Option<Slot> {
        let (day, hour) = s.strip_prefix('d')?.split_once('-')?;
        let hour = hour.strip_suffix('h')?;
        let slot = Slot {
            day: day.parse().ok()?,
            hour: hour.parse().ok()?,
        };
        (slot.day >= 1 && (8..=17).contains(&slot.hour)).then_some(slot)
    }
}

/// One patient action: a transition of the model.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    /// `P1 register` — the patient signs up and gets a session.
    Register {
        /// Who registers.
        patient: PatientId,
    },
    /// `P1 book A1 at d1-09h` — the patient books an appointment.
    Book {
        /// Who books.
        patient: PatientId,
        /// The appointment it creates.
        appointment: AppointmentId,
        /// When.
        slot: Slot,
    },
    /// `P1 cancel A1` — the patient cancels an appointment with no active call.
    Cancel {
        /// Who cancels.
        patient: PatientId,
        /// Which of their appointments.
        appointment: AppointmentId,
    },
    /// `P1 start-call A1 -> C1 R1` — an audio call starts, recording into R1.
    StartCall {
        /// Who calls.
        patient: PatientId,
        /// Which of their appointments.
        appointment: AppointmentId,
        /// The call it creates.
        call: CallId,
        /// The audio recording it creates.
        recording: RecordingId,
    },
    /// `P1 upgrade C1 -> R2` — the call switches to video mid-call, recording into R2.
    Upgrade {
        /// Who upgrades.
        patient: PatientId,
        /// Which of their active audio calls.
        call: CallId,
        /// The video recording it creates.
        recording: RecordingId,
    },
    /// `P1 send-media C1 #3` — a media chunk carrying the patient's canary.
    SendMedia {
        /// Who sends.
        patient: PatientId,
        /// Into which of their active calls.
        call: CallId,
        /// Chunk number, part of the payload.
        chunk: u16,
    },
    /// `P1 end-call C1` — the call ends and its recording is finished.
    EndCall {
        /// Who hangs up.
        patient: PatientId,
        /// Which of their active calls.
        call: CallId,
    },
    /// `P1 view history page=1 per-page=10` — one page of a recording view
    /// (`P1 view visit A1 page=1 per-page=10` for a view of one appointment;
    /// `P2 view history subject=P1 page=1 per-page=10` puts P1's service id
    /// where the view names the patient's own, with P2's session: tampering).
    View {
        /// Who views (whose session is used).
        patient: PatientId,
        /// Which of the binding's views.
        view: ViewName,
        /// The patient's own object the view is parametrised by, for scoped views.
        of: Option<Scoped>,
        /// Another patient whose service id is put where the view names the
        /// viewer's own (parameter tampering), if any.
        subject: Option<PatientId>,
        /// Page number, from 1.
        page: u8,
        /// Items per page.
        per_page: u8,
    },
    /// `P1 play R1` — play back one of the patient's own recordings (erased ones too).
    Play {
        /// Who plays.
        patient: PatientId,
        /// Which of their recordings.
        recording: RecordingId,
    },
    /// `P2 probe R1` — a cross-patient probe: ask for another patient's recording by id.
    Probe {
        /// Who probes.
        patient: PatientId,
        /// A recording of somebody else.
        recording: RecordingId,
    },
    /// `P1 erase R1` — erase one of the patient's finished recordings.
    Erase {
        /// Who erases.
        patient: PatientId,
        /// Which of their recordings.
        recording: RecordingId,
    },
    /// `P1 erase-account` — the patient deletes themselves: afterwards none of
    /// their recordings is visible to anyone and their session no longer works.
    EraseAccount {
        /// Who leaves.
        patient: PatientId,
    },
    /// `P2 probe cancel A1` — a cross-patient action: the patient tries an
    /// action that names an object on another patient's object, with their
    /// own session. It must be refused and change nothing.
    Trespass {
        /// Who tries it (whose session is used).
        patient: PatientId,
        /// The action and the foreign object.
        act: Act,
    },
    /// `P1 forge truncated` — the patient's first unscoped view, asked with a
    /// forged credential (missing, empty, truncated, padded, wildcard-looking,
    /// with the wrong scheme). It must be refused: a forged credential never
    /// acts as any patient.
    Forge {
        /// Whose credential is forged.
        patient: PatientId,
        /// How.
        forgery: Forgery,
    },
}

/// An action that names an object, aimed at another patient's object by a
/// [`Step::Trespass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Act {
    /// Cancel the appointment.
    Cancel(AppointmentId),
    /// Start a call of the appointment.
    StartCall(AppointmentId),
    /// Switch the call to video.
    Upgrade(CallId),
    /// Send a media chunk (carrying the trespasser's canary) into the call.
    SendMedia(CallId),
    /// Hang up the call.
    EndCall(CallId),
    /// Erase the recording.
    Erase(RecordingId),
}

impl Act {
    /// The bound action it exercises.
    pub fn action(self) -> Action {
        match self {
            Act::Cancel(_) => Action::Cancel,
            Act::StartCall(_) => Action::StartCall,
            Act::Upgrade(_) => Action::Upgrade,
            Act::SendMedia(_) => Action::SendMedia,
            Act::EndCall(_) => Action::EndCall,
            Act::Erase(_) => Action::Erase,
        }
    }

    /// The action word, as in scenario text.
    pub fn word(self) -> &'static str {
        match self {
            Act::Cancel(_) => "cancel",
            Act::StartCall(_) => "start-call",
            Act::Upgrade(_) => "upgrade",
            Act::SendMedia(_) => "send-media",
            Act::EndCall(_) => "end-call",
            Act::Erase(_) => "erase",
        }
    }

    fn parse(word: &str, object: &str) -> Result<Option<Act>, StepParseError> {
        Ok(Some(match word {
            "cancel" => Act::Cancel(object.parse()?),
            "start-call" => Act::StartCall(object.parse()?),
            "upgrade" => Act::Upgrade(object.parse()?),
            "send-media" => Act::SendMedia(object.parse()?),
            "end-call" => Act::EndCall(object.parse()?),
            "erase" => Act::Erase(object.parse()?),
            _ => return Ok(None),
        }))
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = self.word();
        match self {
            Act::Cancel(a) | Act::StartCall(a) => write!(f, "{word} {a}"),
            Act::Upgrade(c) | Act::SendMedia(c) | Act::EndCall(c) => write!(f, "{word} {c}"),
            Act::Erase(r) => write!(f, "{word} {r}"),
        }
    }
}

/// How a [`Step::Forge`] forges the patient's credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Forgery {
    /// No credential at all.
    Missing,
    /// The credential's place, holding an empty token.
    Empty,
    /// The token without its last character.
    Truncated,
    /// The token with one character more.
    Padded,
    /// `%` for the token (a SQL `LIKE` wildcard).
    Wildcard,
    /// `*` for the token (a glob).
    Glob,
    /// The token under another scheme (`Basic` for `Bearer`).
    Scheme,
}

impl Forgery {
    /// Every forgery, in a fixed order.
    pub const ALL: [Forgery; 7] = [
        Forgery::Missing,
        Forgery::Empty,
        Forgery::Truncated,
        Forgery::Padded,
        Forgery::Wildcard,
        Forgery::Glob,
        Forgery::Scheme,
    ];

    /// Its name in scenario text.
    pub fn name(self) -> &'static str {
        match self {
            Forgery::Missing => "missing",
            Forgery::Empty => "empty",
            Forgery::Truncated => "truncated",
            Forgery::Padded => "padded",
            Forgery::Wildcard => "wildcard",
            Forgery::Glob => "glob",
            Forgery::Scheme => "scheme",
        }
    }
}

impl fmt::Display for Forgery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The object a scoped view is parametrised by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scoped {
    /// One of the patient's appointments.
    Appointment(AppointmentId),
    /// One of the patient's calls.
    Call(CallId),
}

impl Scoped {
    /// The kind of view scope this object fits.
    pub fn scope(self) -> Scope {
        match self {
            Scoped::Appointment(_) => Scope::Appointment,
            Scoped::Call(_) => Scope::Call,
        }
    }
}

impl fmt::Display for Scoped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scoped::Appointment(a) => write!(f, "{a}"),
            Scoped::Call(c) => write!(f, "{c}"),
        }
    }
}

/// The name of every kind of step, in a fixed order (used for coverage tables).
pub const ACTIONS: [&str; 12] = [
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
    "erase-account",
];

/// Why a line of text is not a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepParseError {
    /// The line is empty.
    #[error("empty step; expected `P<n> <action> ...`")]
    Empty,
    /// An alias was malformed.
    #[error(transparent)]
    Alias(#[from] AliasError),
    /// The action word is not known.
    #[error("unknown action `{0}`; expected one of: {actions}, forge", actions = ACTIONS.join(", "))]
    UnknownAction(String),
    /// A view name is malformed.
    #[error(transparent)]
    ViewName(#[from] ViewNameError),
    /// The words after the action do not fit it.
    #[error("`{action}` expects `{usage}`")]
    Usage {
        /// The action.
        action: &'static str,
        /// The form it takes.
        usage: &'static str,
    },
}

impl Step {
    /// The patient who takes this step.
    pub fn patient(&self) -> PatientId {
        match *self {
            Step::Register { patient }
            | Step::Book { patient, .. }
            | Step::Cancel { patient, .. }
            | Step::StartCall { patient, .. }
            | Step::Upgrade { patient, .. }
            | Step::SendMedia { patient, .. }
            | Step::EndCall { patient, .. }
            | Step::View { patient, .. }
            | Step::Play { patient, .. }
            | Step::Probe { patient, .. }
            | Step::Erase { patient, .. }
            | Step::EraseAccount { patient }
            | Step::Trespass { patient, .. }
            | Step::Forge { patient, .. } => patient,
        }
    }

    /// The action word, one of [`ACTIONS`].
    pub fn action(&self) -> &'static str {
        ACTIONS[self.action_index()]
    }

    /// The position of this step's action in [`ACTIONS`].
    pub fn action_index(&self) -> usize {
        match self {
            Step::Register { .. } => 0,
            Step::Book { .. } => 1,
            Step::Cancel { .. } => 2,
            Step::StartCall { .. } => 3,
            Step::Upgrade { .. } => 4,
            Step::SendMedia { .. } => 5,
            Step::EndCall { .. } => 6,
            Step::View { .. } => 7,
            Step::Play { .. } => 8,
            // A cross-patient action counts as a probe; a forged credential
            // (one patient is enough) as the view it asks.
            Step::Probe { .. } | Step::Trespass { .. } => 9,
            Step::Forge { .. } => 7,
            Step::Erase { .. } => 10,
            Step::EraseAccount { .. } => 11,
        }
    }

    /// Parse the text form written by `Display`.
    pub fn parse(line: &str) -> Result<Step, StepParseError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (&who, rest) = words.split_first().ok_or(StepParseError::Empty)?;
        let patient: PatientId = who.parse()?;
        let (&action, args) = rest.split_first().ok_or(StepParseError::Usage {
            action: "step",
            usage: "P<n> <action> ...",
        })?;
        let usage =
            |action: &'static str, usage: &'static str| StepParseError::Usage { action, usage };
        let step = match (action, args) {
            ("register", []) => Step::Register { patient },
            ("register", _) => return Err(usage("register", "P1 register")),
            ("book", [a, "at", slot]) => Step::Book {
                patient,
                appointment: a.parse()?,
                slot: Slot::parse(slot)
                    .ok_or(usage("book", "P1 book A1 at d1-09h (hours 08-17)"))?,
            },
            ("book", _) => return Err(usage("book", "P1 book A1 at d1-09h")),
            ("cancel", [a]) => Step::Cancel {
                patient,
                appointment: a.parse()?,
            },
            ("cancel", _) => return Err(usage("cancel", "P1 cancel A1")),
            ("start-call", [a, "->", c, r]) => Step::StartCall {
                patient,
                appointment: a.parse()?,
                call: c.parse()?,
                recording: r.parse()?,
            },
            ("start-call", _) => return Err(usage("start-call", "P1 start-call A1 -> C1 R1")),
            ("upgrade", [c, "->", r]) => Step::Upgrade {
                patient,
                call: c.parse()?,
                recording: r.parse()?,
            },
            ("upgrade", _) => return Err(usage("upgrade", "P1 upgrade C1 -> R2")),
            ("send-media", [c, n]) => Step::SendMedia {
                patient,
                call: c.parse()?,
                chunk: n
                    .strip_prefix('#')
                    .and_then(|n| n.parse().ok())
                    .ok_or(usage("send-media", "P1 send-media C1 #1"))?,
            },
            ("send-media", _) => return Err(usage("send-media", "P1 send-media C1 #1")),
            ("end-call", [c]) => Step::EndCall {
                patient,
                call: c.parse()?,
            },
            ("end-call", _) => return Err(usage("end-call", "P1 end-call C1")),
            ("view-history", [page, per_page]) => {
                // The form written before views had names: the history view.
                let (page, per_page) = paging(page, per_page).ok_or(usage(
                    "view-history",
                    "P1 view-history page=1 per-page=10 (page 1-255, per-page 1-100)",
                ))?;
                Step::View {
                    patient,
                    view: ViewName::HISTORY,
                    of: None,
                    subject: None,
                    page,
                    per_page,
                }
            }
            ("view-history", _) => {
                return Err(usage("view-history", "P1 view-history page=1 per-page=10"));
            }
            ("view", [name, middle @ .., page, per_page]) => {
                const USAGE: &str = "P1 view NAME [A1|C1] [subject=P2] page=1 per-page=10 (page 1-255, per-page 1-100)";
                let view = ViewName::new(name)?;
                let (page, per_page) = paging(page, per_page).ok_or(usage("view", USAGE))?;
                let (mut of, mut subject) = (None, None);
                for word in middle {
                    if let Some(p) = word.strip_prefix("subject=") {
                        if subject.replace(p.parse()?).is_some() {
                            return Err(usage("view", USAGE));
                        }
                    } else if word.starts_with('A') && of.is_none() {
                        of = Some(Scoped::Appointment(word.parse()?));
                    } else if word.starts_with('C') && of.is_none() {
                        of = Some(Scoped::Call(word.parse()?));
                    } else {
                        return Err(usage("view", USAGE));
                    }
                }
                Step::View {
                    patient,
                    view,
                    of,
                    subject,
                    page,
                    per_page,
                }
            }
            ("view", _) => {
                return Err(usage("view", "P1 view history page=1 per-page=10"));
            }
            ("play", [r]) => Step::Play {
                patient,
                recording: r.parse()?,
            },
            ("play", _) => return Err(usage("play", "P1 play R1")),
            ("probe", [r]) => Step::Probe {
                patient,
                recording: r.parse()?,
            },
            ("probe", [word, object]) => Step::Trespass {
                patient,
                act: Act::parse(word, object)?.ok_or(usage(
                    "probe",
                    "P2 probe R1, or P2 probe cancel|start-call A1, upgrade|send-media|end-call C1, erase R1",
                ))?,
            },
            ("probe", _) => return Err(usage("probe", "P2 probe R1 (or P2 probe cancel A1)")),
            ("forge", [how]) => Step::Forge {
                patient,
                forgery: Forgery::ALL
                    .into_iter()
                    .find(|f| f.name() == *how)
                    .ok_or(usage(
                        "forge",
                        "P1 forge missing|empty|truncated|padded|wildcard|glob|scheme",
                    ))?,
            },
            ("forge", _) => {
                return Err(usage(
                    "forge",
                    "P1 forge missing|empty|truncated|padded|wildcard|glob|scheme",
                ));
            }
            ("erase", [r]) => Step::Erase {
                patient,
                recording: r.parse()?,
            },
            ("erase", _) => return Err(usage("erase", "P1 erase R1")),
            ("erase-account", []) => Step::EraseAccount { patient },
            ("erase-account", _) => return Err(usage("erase-account", "P1 erase-account")),
            (other, _) => return Err(StepParseError::UnknownAction(other.to_string())),
        };
        Ok(step)
    }
}

/// `page=N` and `per-page=M`: page 1-255, per-page 1-100.
fn paging(page: &str, per_page: &str) -> Option<(u8, u8)> {
    let number = |word: &str, key: &str| {
        word.strip_prefix(key)
            .and_then(|n| n.parse::<u8>().ok())
            .filter(|n| *n >= 1)
    };
    let page = number(page, "page=")?;
    let per_page = number(per_page, "per-page=").filter(|n| *n <= 100)?;
    Some((page, per_page))
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Register { patient } => write!(f, "{patient} register"),
            Step::Book {
                patient,
                appointment,
                slot,
            } => write!(f, "{patient} book {appointment} at {slot}"),
            Step::Cancel {
                patient,
                appointment,
            } => write!(f, "{patient} cancel {appointment}"),
            Step::StartCall {
                patient,
                appointment,
                call,
                recording,
            } => write!(
                f,
                "{patient} start-call {appointment} -> {call} {recording}"
            ),
            Step::Upgrade {
                patient,
                call,
                recording,
            } => write!(f, "{patient} upgrade {call} -> {recording}"),
            Step::SendMedia {
                patient,
                call,
                chunk,
            } => write!(f, "{patient} send-media {call} #{chunk}"),
            Step::EndCall { patient, call } => write!(f, "{patient} end-call {call}"),
            Step::View {
                patient,
                view,
                of,
                subject,
                page,
                per_page,
            } => {
                write!(f, "{patient} view {view}")?;
                if let Some(of) = of {
                    write!(f, " {of}")?;
                }
                if let Some(subject) = subject {
                    write!(f, " subject={subject}")?;
                }
                write!(f, " page={page} per-page={per_page}")
            }
            Step::Play { patient, recording } => write!(f, "{patient} play {recording}"),
            Step::Probe { patient, recording } => write!(f, "{patient} probe {recording}"),
            Step::Erase { patient, recording } => write!(f, "{patient} erase {recording}"),
            Step::EraseAccount { patient } => write!(f, "{patient} erase-account"),
            Step::Trespass { patient, act } => write!(f, "{patient} probe {act}"),
            Step::Forge { patient, forgery } => write!(f, "{patient} forge {forgery}"),
        }
    }
}
