//! The oracle: pure functions from (model, observation) to violations, one file
//! per clause of the privacy property (DESIGN.md).
//!
//! **Architecture invariant:** nothing here does I/O or sees a service id; a
//! violation names aliases, a field path and whose canary it was — never a
//! payload. Completeness findings are warnings: they are not privacy leaks
//! (the runners make one a violation when the missing recording had been
//! shown to its owner finished before: it was lost, `Finding::Lost`).
//! Noninterference is judged by the runner, which alone can run a patient's
//! steps again without everybody else (`runner::alone_steps`).

mod completeness;
mod content;
mod erasure;
mod integrity;
mod ownership;
mod refusal;

use std::fmt;

pub use content::{Canaries, CanaryOwner};

use crate::driver::{Observation, Seen};
use crate::model::{Act, Forgery, PatientId, State, Step};

/// The clause of the privacy property a finding breaks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Clause {
    /// A patient saw a recording that is not theirs (foreign or phantom).
    Ownership,
    /// A patient received bytes carrying another patient's canary.
    Content,
    /// A cross-patient probe was served instead of refused.
    Refusal,
    /// An erased recording was visible again.
    Erasure,
    /// A patient's observation depended on what other patients did: a step
    /// refused in the case succeeds when the patient acts alone, or what a
    /// step showed differs from what it shows the patient alone.
    Noninterference,
    /// A field the model predicts (a view's total, a recording's kind, call
    /// or appointment) differs from the model.
    Integrity,
    /// A patient's own recording was missing (a warning, not a leak; a
    /// violation when it had been shown to them before: lost).
    Completeness,
}

impl Clause {
    /// Every clause, in DESIGN.md's order.
    pub const ALL: [Clause; 7] = [
        Clause::Ownership,
        Clause::Content,
        Clause::Refusal,
        Clause::Erasure,
        Clause::Noninterference,
        Clause::Integrity,
        Clause::Completeness,
    ];

    /// The clause's name as written in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Clause::Ownership => "ownership",
            Clause::Content => "content",
            Clause::Refusal => "refusal",
            Clause::Erasure => "erasure",
            Clause::Noninterference => "noninterference",
            Clause::Integrity => "integrity",
            Clause::Completeness => "completeness",
        }
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Clause {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Clause::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Clause::ALL.iter().map(|c| c.name()).collect();
                format!(
                    "unknown clause `{s}`; expected one of: {}",
                    names.join(", ")
                )
            })
    }
}

/// The clauses from the most to the least telling: the first a set of
/// violations has is its primary clause.
const PRIORITY: [Clause; 7] = [
    Clause::Refusal,
    Clause::Erasure,
    Clause::Content,
    Clause::Ownership,
    Clause::Integrity,
    Clause::Noninterference,
    Clause::Completeness,
];

/// Where `clause` stands in the order [`primary_clause`] picks by: 0 is the
/// most telling. A shrinker keeps a candidate only if its clause ranks no
/// lower than the original finding's, so a leak never shrinks into a
/// lesser finding.
pub fn clause_rank(clause: Clause) -> usize {
    PRIORITY
        .iter()
        .position(|c| *c == clause)
        .unwrap_or(PRIORITY.len())
}

/// The clause a scenario file records for a set of violations seen at one
/// step: the most specific one (a served probe is first a refusal, though the
/// probing patient was also shown a recording that is not theirs).
pub fn primary_clause(violations: &[Violation]) -> Option<Clause> {
    PRIORITY
        .into_iter()
        .find(|c| violations.iter().any(|v| v.clause == *c))
}

/// What exactly went wrong, in aliases.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Finding {
    /// The patient saw a recording the model attributes to `owner`.
    Foreign {
        /// The recording.
        recording: Seen,
        /// Its owner in the model.
        owner: PatientId,
    },
    /// The patient saw a recording the harness never saw created.
    Phantom {
        /// The unknown recording.
        recording: Seen,
    },
    /// The patient received another patient's canary.
    Canary {
        /// Whose canary.
        owner: CanaryOwner,
    },
    /// A probe of `owner`'s recording was answered with success.
    Served {
        /// The probed recording.
        recording: Seen,
        /// Its owner.
        owner: PatientId,
        /// The status the service answered.
        status: u16,
    },
    /// An action on `owner`'s object, with another patient's session, was
    /// answered with success.
    Trespassed {
        /// The action and the object.
        act: Act,
        /// The object's owner.
        owner: PatientId,
        /// The status the service answered.
        status: u16,
    },
    /// A cross-patient request was refused, but not as the same request
    /// about an id that never existed: the refusal tells the object exists.
    Reveals {
        /// What was asked about: a recording, or an action on an object.
        asked: String,
        /// The object's owner.
        owner: PatientId,
        /// Status and body shape of the refusal of the foreign object.
        foreign: (u16, String),
        /// Status and body shape of the refusal of an id that never existed.
        unknown: (u16, String),
    },
    /// A step refused in the case (`status`) succeeded when its patient's
    /// own `alone` steps ran without anybody else.
    Interfered {
        /// The step, as scenario text.
        step: String,
        /// The status it was refused with in the case.
        status: u16,
        /// How many steps the patient took alone, the refused one last.
        alone: usize,
    },
    /// A step's observation (`field` of it) differed from what the same
    /// patient saw taking only their own `alone` steps, without anybody else.
    Differs {
        /// The step, as scenario text.
        step: String,
        /// Which part: one of [`crate::binding::COMPARED_FIELDS`].
        field: &'static str,
        /// What it was among the other patients, in aliases.
        with_others: String,
        /// What it was alone, in aliases.
        alone: String,
        /// How many steps the patient took alone, this one included.
        alone_steps: usize,
    },
    /// A mapped field differs from what the model predicts.
    Mismatch {
        /// The item it is about (`None` for a view's total).
        recording: Option<Seen>,
        /// Which field: `total`, `kind`, `call` or `appointment`.
        what: &'static str,
        /// What the model predicts, in aliases or numbers.
        expected: String,
        /// What the service said, in aliases or numbers.
        got: String,
        /// The patient whose call or appointment it was shown under, if
        /// another's.
        other: Option<PatientId>,
    },
    /// Soak: one of the patient's own finished recordings, shown to them
    /// before, is missing from a view that should hold it.
    Lost {
        /// The lost recording.
        recording: Seen,
    },
    /// A forged credential was answered with success.
    Forged {
        /// How it was forged.
        forgery: Forgery,
        /// The status the service answered.
        status: u16,
    },
    /// An erased recording was listed or played back.
    ErasedVisible {
        /// The erased recording.
        recording: Seen,
        /// Who erased it.
        owner: PatientId,
    },
    /// One of the patient's own finished recordings was missing.
    /// A patient who erased their account could still use their old session.
    DeadSession {
        /// The status the dead session got.
        status: u16,
    },
    Missing {
        /// The missing recording.
        recording: Seen,
    },
}

/// One breach of one clause, observed at one step.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Violation {
    /// Which clause.
    pub clause: Clause,
    /// The step it was observed at, from 1.
    pub step: usize,
    /// The patient who observed it.
    pub patient: PatientId,
    /// Where in the response: `items[0]`, `media`, `display_name`, ...
    pub field: String,
    /// What went wrong.
    pub finding: Finding,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = self.patient;
        let at = &self.field;
        match &self.finding {
            Finding::Foreign { recording, owner } => write!(
                f,
                "{p} was shown {recording} at `{at}`, but {recording} belongs to {owner} (foreign recording)"
            ),
            Finding::Phantom { recording } => write!(
                f,
                "{p} was shown {recording} at `{at}`, a recording no simulated patient ever made (phantom recording)"
            ),
            Finding::Canary {
                owner: CanaryOwner::Patient(owner),
            } => write!(
                f,
                "{p} received {owner}'s canary at `{at}`: {owner}'s data reached {p}"
            ),
            Finding::Canary {
                owner: CanaryOwner::Outsider,
            } => write!(
                f,
                "{p} received the canary of a patient from another case or run at `{at}`: their data reached {p}"
            ),
            Finding::Served {
                recording,
                owner,
                status,
            } => write!(
                f,
                "{p} asked for {owner}'s {recording} by id and the service answered {status} instead of refusing (401/403/404)"
            ),
            Finding::Trespassed { act, owner, status } => write!(
                f,
                "{p} tried `{act}` on {owner}'s object with their own session and the service answered {status} instead of refusing (cross-patient action)"
            ),
            Finding::Reveals {
                asked,
                owner,
                foreign,
                unknown,
            } => {
                write!(
                    f,
                    "{p} asked `{asked}` of {owner}'s object and was refused with {}",
                    foreign.0
                )?;
                if foreign.0 == unknown.0 {
                    write!(f, " (body {})", foreign.1)?;
                }
                write!(f, ", but an id that never existed gets {}", unknown.0)?;
                if foreign.0 == unknown.0 {
                    write!(f, " (body {})", unknown.1)?;
                }
                write!(
                    f,
                    ": the refusal tells the object exists (if the service answers 403 by design, say `policy = \"forbidden\"` under `[refusal]` in the binding)"
                )
            }
            Finding::Interfered {
                step,
                status,
                alone,
            } => write!(
                f,
                "`{step}` was refused ({status}), yet succeeds when {p}'s own {alone} steps run alone: what other patients did changed what {p} may do"
            ),
            Finding::Differs {
                step,
                field,
                with_others,
                alone,
                alone_steps,
            } => write!(
                f,
                "`{step}` showed {p} {field} {with_others} among the other patients, but {alone} when {p}'s own {alone_steps} steps ran alone: what other patients did changed what {p} sees"
            ),
            Finding::Mismatch {
                recording: None,
                what,
                expected,
                got,
                ..
            } => write!(
                f,
                "{p}'s view says its {what} is {got} at `{at}`, but {p} has {expected}: it counts recordings that are not {p}'s own"
            ),
            Finding::Mismatch {
                recording: Some(recording),
                what,
                expected,
                got,
                ..
            } => write!(
                f,
                "{p} was shown their {recording} with {what} {got} at `{at}`, but {recording} is {expected}"
            ),
            Finding::Lost { recording } => write!(
                f,
                "{p}'s own finished recording {recording}, shown to {p} before, has vanished from `{at}` (lost)"
            ),
            Finding::Forged { forgery, status } => write!(
                f,
                "{p}'s credential, forged ({forgery}), was answered {status} instead of being refused: a forged credential acted as a patient"
            ),
            Finding::ErasedVisible { recording, owner } if at == "store" => write!(
                f,
                "{owner} erased {recording}, yet its bytes are still in the store the target file names: the erasure hid the row and kept the media"
            ),
            Finding::ErasedVisible { recording, owner } => write!(
                f,
                "{recording} was erased by {owner}, yet {p} was shown it again at `{at}`"
            ),
            Finding::DeadSession { status } => write!(
                f,
                "{p} erased their account, yet their old session still worked ({status} at `{at}`)"
            ),
            Finding::Missing { recording } => write!(
                f,
                "{p}'s own finished recording {recording} was missing at `{at}`"
            ),
        }
    }
}

/// Everything the oracle concluded about one observation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Judgement {
    /// Privacy violations (ownership, content, refusal, erasure).
    pub violations: Vec<Violation>,
    /// Completeness warnings.
    pub warnings: Vec<Violation>,
}

/// Check one observation against every clause.
///
/// `before` is the model state before the step, `after` the state after it;
/// `index` is the step's position from 1.
pub fn check(
    canaries: &Canaries,
    before: &State,
    after: &State,
    index: usize,
    step: &Step,
    observation: &Observation,
) -> Judgement {
    let ctx = Context {
        before,
        after,
        index,
        step,
        patient: step.patient(),
        observation,
    };
    let mut violations = Vec::new();
    violations.extend(ownership::check(&ctx));
    violations.extend(content::check(canaries, &ctx));
    violations.extend(refusal::check(&ctx));
    violations.extend(erasure::check(&ctx));
    violations.extend(integrity::check(&ctx));
    violations.sort();
    violations.dedup();
    let mut warnings = completeness::check(&ctx);
    warnings.sort();
    Judgement {
        violations,
        warnings,
    }
}

/// What every clause's check looks at.
struct Context<'a> {
    before: &'a State,
    after: &'a State,
    index: usize,
    step: &'a Step,
    patient: PatientId,
    observation: &'a Observation,
}

impl Context<'_> {
    fn violation(&self, clause: Clause, field: impl Into<String>, finding: Finding) -> Violation {
        Violation {
            clause,
            step: self.index,
            patient: self.patient,
            field: field.into(),
            finding,
        }
    }
}

#[cfg(test)]
mod tests;
