//! `soak`: many concurrent simulated patients against one service, for
//! minutes to hours, every observation judged by the same oracles as `check`.
//!
//! Each patient slot is a tokio task walking the model ([`Walker`]) with its
//! own driver (its own sessions) and one shared [`RecordingBook`], so requests
//! are truly concurrent. A slot's patient lives for at most
//! `steps_per_patient_max` steps, then a fresh patient takes the slot: that
//! bounds per-patient state (own model state, driver maps, a step log), so
//! 10,000 slots fit in memory. A shared registry says who owns each recording
//! alias, for probes and for the ownership oracle.
//!
//! **Phantoms under concurrency.** A history view may show a recording whose
//! creating response (the owner's start-call or upgrade) has not arrived yet.
//! Such an id is not judged at once: it waits until every request that was
//! in flight when the observation completed has completed too, then is
//! resolved again; only ids still unknown are phantoms.
//!
//! **No finding is lost:** each violation is appended to the journal
//! (journal.jsonl in the report directory) when it is judged. A run ends when
//! the duration or the operation budget is spent, or on interruption; then
//! patients finish the step in flight, pending ids are resolved, and the
//! outcome is returned for the report.

mod history;
mod journal;
mod walker;

pub use history::{ALTERNATIVES_MAX, Built, Event, SlotLog, alternatives, build};
pub use journal::Journal;
pub use walker::{Aliases, Mix, RECORDINGS_PER_PATIENT_MAX, Walker};

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::Rng;
use serde_json::json;

use super::Verdict;
use crate::driver::{Driver, Observation, RecordingBook, Seen};
use crate::model::{ACTIONS, CallId, Mode, PatientId, Recording, RecordingId, State, Step};
use crate::oracle::{self, Canaries, CanaryOwner, Clause, Finding, Violation};
use crate::scenario::{Expect, Scenario};
use crate::target::{CaseTarget, Target};

/// Everything a soak is told. All limits live here.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    /// Seed of every patient's RNG (mixed with the patient's alias).
    pub seed: u64,
    /// Concurrent patient slots.
    pub patients: u32,
    /// Stop after this long (`None`: only `ops_max` or interruption stop it).
    pub duration: Option<Duration>,
    /// Stop after this many operations (requests) have been issued.
    pub ops_max: Option<u64>,
    /// Most operations per second, over all patients (`None`: as fast as the
    /// target answers).
    pub rate: Option<f64>,
    /// How patients choose actions.
    pub mix: Mix,
    /// Where the journal and scenario files go.
    pub report_dir: PathBuf,
    /// Steps a patient takes before a fresh patient takes over its slot.
    pub steps_per_patient_max: usize,
    /// Most scenario files written (the journal keeps every finding).
    pub scenarios_max: usize,
    /// Most findings kept in memory for the report (the journal keeps all).
    pub findings_kept_max: usize,
    /// How long after its owner retired a recording's id is kept (longer
    /// than any step in flight); then it leaves memory.
    pub forget_after: Duration,
    /// Accept a service on which patients never see their own finished
    /// recordings (a pass with completeness warnings instead of unknown).
    pub accept_incomplete: bool,
    /// Completeness warnings fail the run (`--strict`).
    pub strict: bool,
}

impl Default for SoakConfig {
    fn default() -> Self {
        SoakConfig {
            seed: 0,
            patients: 100,
            duration: Some(Duration::from_secs(60)),
            ops_max: None,
            rate: None,
            mix: Mix::Balanced,
            report_dir: PathBuf::from("soak-report"),
            steps_per_patient_max: 40,
            scenarios_max: 10,
            findings_kept_max: 200,
            forget_after: Duration::from_secs(60),
            accept_incomplete: false,
            strict: false,
        }
    }
}

/// A live view of the soak, given to [`SoakProgress::tick`] about twice a second.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Time since the start.
    pub elapsed: Duration,
    /// Time left, when the soak is bounded by duration.
    pub remaining: Option<Duration>,
    /// Operations answered so far.
    pub ops: u64,
    /// Operations allowed in all (`--ops-max`).
    pub ops_max: Option<u64>,
    /// Operations per second over the last tick.
    pub ops_per_s: f64,
    /// Patients with a task running.
    pub active: u32,
    /// Violations so far.
    pub violations: u64,
    /// Target errors and divergences so far.
    pub errors: u64,
    /// p99 latency over the last tick, in milliseconds.
    pub latency_ms_p99: f64,
}

/// Where a soak reports while it runs. `()` reports nothing.
pub trait SoakProgress {
    /// A periodic snapshot.
    fn tick(&mut self, _snapshot: &Snapshot) {}
    /// A finding, one line, in aliases (already in the journal).
    fn finding(&mut self, _line: &str) {}
}

impl SoakProgress for () {}

/// One finding as kept for the report.
#[derive(Debug, Clone)]
pub struct FindingRecord {
    /// Milliseconds since the start.
    pub at_ms: u64,
    /// The violation (its `step` is the patient's step number in its life).
    pub violation: Violation,
    /// The step it was observed at.
    pub step: Step,
    /// The scenario file written for it, if any.
    pub scenario: Option<PathBuf>,
    /// Who sent what, when (scenario aliases), when a scenario was built.
    pub history: Vec<String>,
}

/// Every violation with one signature (clause, kind of finding, the action
/// it was seen at): one bug found 2,581 times is one distinct finding with a
/// count, not 2,581 lines.
#[derive(Debug, Clone)]
pub struct DistinctFinding {
    /// `ownership foreign at view-history`.
    pub signature: String,
    /// The clause violated.
    pub clause: Clause,
    /// How many violations had this signature.
    pub count: u64,
    /// The first one, in prose (aliases only).
    pub first: String,
    /// When the first one was found, in milliseconds since the start.
    pub first_at_ms: u64,
    /// The first scenario file written for this signature, if any.
    pub scenario: Option<PathBuf>,
    /// Other scenarios for the same finding (other pairings of a race's
    /// steps, see [`alternatives`]; the soak's unscaled spacing; for a
    /// finding that names no one else, the observer with each likeliest race
    /// partner): if one replays more often than `scenario`, it replaces it in
    /// the file after the soak.
    pub alternatives: Vec<Scenario>,
    /// How many of the replays of `scenario` reproduced it, out of how many
    /// reached a verdict (measured after the soak, on the same target).
    pub reproduced: Option<(usize, usize)>,
}

/// Write `scenario` to `path` atomically, with the command that replays it.
pub fn write_scenario(path: &Path, scenario: &Scenario) -> std::io::Result<()> {
    let repeat = if scenario.is_concurrent() { 20 } else { 1 };
    let hint = format!("chaperone replay {} --repeat {repeat}", path.display());
    crate::report::write_atomic(path, scenario.to_toml(Some(&hint)))
}

/// Latency percentiles of one action, in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionLatency {
    /// The action.
    pub action: &'static str,
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

/// What a soak did and found.
#[derive(Debug, Clone)]
pub struct SoakOutcome {
    /// The configuration it ran with.
    pub config: SoakConfig,
    /// The target, as named.
    pub target: String,
    /// The faults planted in an embedded clinic.
    pub faults: Vec<String>,
    /// How long it ran.
    pub elapsed: Duration,
    /// It was interrupted (Ctrl-C) before its bound.
    pub interrupted: bool,
    /// Operations answered.
    pub ops: u64,
    /// Target failures and divergences (each ends that patient's life).
    pub errors: u64,
    /// The first few errors, in aliases.
    pub first_errors: Vec<String>,
    /// Completeness warnings.
    pub warnings: u64,
    /// Violations found (all in the journal).
    pub violations: u64,
    /// Violations by clause.
    pub by_clause: BTreeMap<Clause, u64>,
    /// Patients that took part (slots × lives).
    pub patients_total: u32,
    /// How often each action (indexed as [`ACTIONS`]) was answered.
    pub coverage: [u64; ACTIONS.len()],
    /// What the target's binding lets the model do.
    pub caps: crate::model::Capabilities,
    /// History views that followed an upgrade mid-call by the same patient.
    pub upgrade_then_history: u64,
    /// Latency percentiles per action.
    pub latency: Vec<ActionLatency>,
    /// `(seconds since start, operations per second)` samples.
    pub throughput: Vec<(f64, f64)>,
    /// The first findings (see `config.findings_kept_max`).
    pub findings: Vec<FindingRecord>,
    /// Every distinct finding with its count, most frequent first.
    pub distinct: Vec<DistinctFinding>,
    /// How often a patient was shown one of its own finished recordings.
    pub own_seen: u64,
    /// Recordings created over the whole soak.
    pub recordings_created: u64,
    /// Recording ids still held at the end: about the live patients' own,
    /// not the run's total (retired patients' are forgotten).
    pub recordings_held: usize,
    /// The journal file.
    pub journal: PathBuf,
    /// Peak resident memory of this process in KiB (Linux `VmHWM`; includes
    /// an embedded clinic), `None` where the platform does not say.
    pub peak_rss_kib: Option<u64>,
}

/// This process's peak resident set size in KiB, from `/proc/self/status`.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl SoakOutcome {
    /// The verdict: a violation always wins; then errors, then too little
    /// coverage (every action, and an upgrade mid-call followed by a history
    /// view) make it unknown.
    pub fn verdict(&self) -> Verdict {
        if self.violations > 0 {
            return Verdict::Violation;
        }
        if self.errors > 0 {
            return Verdict::Unknown(format!(
                "the target failed or diverged {} time(s), first: {}",
                self.errors,
                self.first_errors.first().map_or("?", String::as_str)
            ));
        }
        // Erase-account is never taken by a soak patient (a slot's patient
        // lives on until replaced), and actions the binding lacks cannot run.
        let never: Vec<&str> = ACTIONS
            .iter()
            .zip(self.coverage)
            .enumerate()
            .filter(|(i, (a, n))| *n == 0 && self.caps.offers(*i) && **a != "erase-account")
            .map(|(_, (a, _))| *a)
            .collect();
        if !never.is_empty() {
            return Verdict::Unknown(format!(
                "too little of the model was exercised: never ran {}; raise --duration, --ops-max or --patients",
                never.join(", ")
            ));
        }
        if self.config.strict && self.warnings > 0 {
            return Verdict::Unknown(super::strict_failure(self.warnings));
        }
        if self.own_seen == 0 && self.warnings > 0 && !self.config.accept_incomplete {
            return Verdict::Unknown(format!(
                "patients never saw their own finished recordings ({} completeness warnings): the service shows too \
                 little to judge; pass --accept-incomplete to accept it",
                self.warnings
            ));
        }
        if self.upgrade_then_history == 0 {
            return Verdict::Unknown(
                "too little of the model was exercised: no patient viewed their history after upgrading a call mid-call"
                    .to_string(),
            );
        }
        Verdict::Pass
    }
}

/// Why a soak could not start.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    /// The report directory or journal could not be written.
    #[error("cannot write the report directory {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The target could not be started or reached.
    #[error("the target could not be opened: {0}")]
    Target(String),
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections are single updates; a poisoned lock holds usable data.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Who owns a recording alias, and whether it was erased.
#[derive(Debug, Clone, Copy)]
struct Owned {
    owner: PatientId,
    erased: bool,
    /// Its owner's life is over: nobody chooses it for a probe any more.
    retired: bool,
    /// Its id has left the book; once every older recording's has too, it
    /// leaves memory.
    forgotten: bool,
}

/// The recordings of a soak by alias, oldest first; retired ones at the
/// front are dropped, so memory follows the live patients, not the run's
/// length. Alias `R(base + i + 1)` is `list[i]`.
#[derive(Debug, Default)]
struct Owners {
    base: u32,
    list: std::collections::VecDeque<Owned>,
}

impl Owners {
    fn get(&self, recording: RecordingId) -> Option<&Owned> {
        let index = recording.0.checked_sub(self.base)?.checked_sub(1)?;
        self.list.get(usize::try_from(index).ok()?)
    }

    fn get_mut(&mut self, recording: RecordingId) -> Option<&mut Owned> {
        let index = recording.0.checked_sub(self.base)?.checked_sub(1)?;
        self.list.get_mut(usize::try_from(index).ok()?)
    }

    /// The alias range still held: `first..=last`, if any.
    fn held(&self) -> Option<(u32, u32)> {
        let len = u32::try_from(self.list.len()).ok()?;
        (len > 0).then(|| (self.base + 1, self.base + len))
    }
}

/// A history view's unknown id, waiting for the requests in flight with it.
#[derive(Debug, Clone)]
struct Pending {
    patient: PatientId,
    slot: usize,
    index: usize,
    step: Step,
    field: String,
    unknown: u32,
    /// Every request numbered up to here must have completed first.
    watermark: u64,
}

#[derive(Debug)]
struct Stats {
    latency: Vec<Histogram<u64>>,
    /// The fastest served (2xx) answer of each action, in microseconds (0:
    /// none yet): what a replay on an unloaded service should take.
    fastest_us: [u64; ACTIONS.len()],
    recent: Histogram<u64>,
    coverage: [u64; ACTIONS.len()],
    upgrade_then_history: u64,
    warnings: u64,
    own_seen: u64,
    by_clause: BTreeMap<Clause, u64>,
    first_errors: Vec<String>,
    throughput: Vec<(f64, f64)>,
    findings: Vec<FindingRecord>,
    scenarios: usize,
    distinct: BTreeMap<String, DistinctFinding>,
    lines: Vec<String>,
}

fn histogram() -> Histogram<u64> {
    // Microseconds, 1 µs to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static histogram bounds are valid")
}

/// Most other patients tried as the partner of a race whose finding names
/// no one else (see [`Shared::race_partners`]).
const RACE_PARTNERS_MAX: usize = 2;

struct Shared {
    config: SoakConfig,
    target: Target,
    canaries: Canaries,
    book: RecordingBook,
    aliases: Aliases,
    owners: Mutex<Owners>,
    /// Retired patients and their recordings, waiting `config.forget_after`
    /// to be forgotten.
    graveyard: Mutex<std::collections::VecDeque<(Instant, PatientId, Vec<RecordingId>)>>,
    next_patient: AtomicU32,
    start: Instant,
    stop: AtomicBool,
    issued: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    violations: AtomicU64,
    active: AtomicU32,
    next_request: AtomicU64,
    in_flight: Mutex<BTreeSet<u64>>,
    pending: Mutex<Vec<Pending>>,
    logs: Vec<Mutex<SlotLog>>,
    stats: Mutex<Stats>,
    journal: Mutex<Journal>,
}

impl Shared {
    fn micros(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn new_recording(&self, owner: PatientId) -> RecordingId {
        let mut owners = lock(&self.owners);
        owners.list.push_back(Owned {
            owner,
            erased: false,
            retired: false,
            forgotten: false,
        });
        let len = u32::try_from(owners.list.len()).unwrap_or(u32::MAX);
        RecordingId(owners.base.saturating_add(len))
    }

    fn owner(&self, recording: RecordingId) -> Option<Owned> {
        lock(&self.owners).get(recording).copied()
    }

    /// A patient's life is over: its recordings are no longer chosen for
    /// probes at once, and after `config.forget_after` (longer than any step in
    /// flight, which may have chosen one just before) the book forgets their
    /// ids and the patient's own id (a later sighting of a recording by
    /// anyone else is a phantom, still an ownership violation) and retired
    /// recordings at the front leave memory.
    fn retire(&self, patient: PatientId, recordings: &[RecordingId]) {
        {
            let mut owners = lock(&self.owners);
            for recording in recordings {
                if let Some(owned) = owners.get_mut(*recording) {
                    owned.retired = true;
                }
            }
        }
        let due: Vec<(PatientId, Vec<RecordingId>)> = {
            let mut graveyard = lock(&self.graveyard);
            graveyard.push_back((Instant::now(), patient, recordings.to_vec()));
            let mut due = Vec::new();
            while graveyard
                .front()
                .is_some_and(|(at, _, _)| at.elapsed() >= self.config.forget_after)
            {
                if let Some((_, patient, batch)) = graveyard.pop_front() {
                    due.push((patient, batch));
                }
            }
            due
        };
        if due.is_empty() {
            return;
        }
        let mut owners = lock(&self.owners);
        for (patient, batch) in &due {
            self.book.forget(*patient, batch);
            for recording in batch {
                if let Some(owned) = owners.get_mut(*recording) {
                    owned.forgotten = true;
                }
            }
        }
        while owners.list.front().is_some_and(|o| o.forgotten) {
            owners.list.pop_front();
            owners.base += 1;
        }
    }

    fn probe_target(
        &self,
        rng: &mut rand_chacha::ChaCha8Rng,
        me: PatientId,
    ) -> Option<RecordingId> {
        let (first, last) = lock(&self.owners).held()?;
        // A few tries: most recordings are someone else's and already created.
        for _ in 0..4 {
            let alias = RecordingId(rng.random_range(first..=last));
            if self
                .owner(alias)
                .is_some_and(|o| o.owner != me && !o.retired)
                && self.book.knows(alias)
            {
                return Some(alias);
            }
        }
        None
    }

    fn error(&self, line: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut stats = lock(&self.stats);
        if stats.first_errors.len() < 10 {
            stats.first_errors.push(line);
        }
    }

    /// The model state to judge `step` in: the patient's own state plus every
    /// other patient's recording the step or its observation names.
    fn view(&self, own: &State, step: &Step, observation: &Observation) -> State {
        let mut view = own.clone();
        let mut named: Vec<RecordingId> = observation
            .seen
            .iter()
            .filter_map(|(_, s)| match s {
                Seen::Known(r) => Some(*r),
                Seen::Unknown(_) => None,
            })
            .collect();
        if let Step::Probe { recording, .. } = step {
            named.push(*recording);
        }
        for recording in named {
            if view.recordings.contains_key(&recording) {
                continue;
            }
            if let Some(owned) = self.owner(recording) {
                view.recordings.insert(
                    recording,
                    Recording {
                        owner: owned.owner,
                        call: CallId(0),
                        kind: Mode::Video,
                        finished: true,
                        erased: owned.erased,
                        chunks: 0,
                        bytes: 0,
                    },
                );
                view.creation_order.push(recording);
            }
        }
        view
    }

    /// Journal a violation at once, then (for the first few kinds) build its
    /// scenario file and keep it for the report.
    fn violation(&self, violation: Violation, step: &Step, slot: usize) {
        let at_ms = self.start.elapsed().as_millis() as u64;
        self.violations.fetch_add(1, Ordering::Relaxed);
        let signature = format!(
            "{} {} at {}",
            violation.clause,
            match &violation.finding {
                Finding::Foreign { .. } => "foreign",
                Finding::Phantom { .. } => "phantom",
                Finding::Canary { .. } => "canary",
                Finding::Served { .. } => "served",
                Finding::Trespassed { .. } => "trespassed",
                Finding::Forged { .. } => "forged",
                Finding::Reveals { .. } => "reveals",
                Finding::Interfered { .. } => "interfered",
                Finding::Differs { .. } => "differs",
                Finding::Lost { .. } => "lost",
                Finding::Mismatch { .. } => "mismatch",
                Finding::ErasedVisible { .. } => "erased",
                Finding::Missing { .. } => "missing",
                Finding::DeadSession { .. } => "dead-session",
            },
            step.action()
        );
        let wants_scenario = {
            let mut stats = lock(&self.stats);
            *stats.by_clause.entry(violation.clause).or_default() += 1;
            let fresh = !stats.distinct.contains_key(&signature);
            (fresh || stats.scenarios < 3) && stats.scenarios < self.config.scenarios_max
        };
        let (scenario, history, others) = if wants_scenario {
            self.scenario_for(&violation, slot)
        } else {
            (None, Vec::new(), Vec::new())
        };
        let text = violation.to_string();
        let line = json!({
            "kind": "violation",
            "at_ms": at_ms,
            "clause": violation.clause.name(),
            "patient": violation.patient.to_string(),
            "patient_step": violation.step,
            "action": step.action(),
            "step": step.to_string(),
            "field": violation.field,
            "finding": text,
            "scenario": scenario.as_ref().map(|p| p.display().to_string()),
            "history": history,
        });
        if let Err(error) = lock(&self.journal).append(&line) {
            // The journal is the one place a finding must reach: say so loudly.
            eprintln!("error: could not append to the soak journal: {error}");
        }
        let mut stats = lock(&self.stats);
        // Only a new signature is printed: one bug seen thousands of times
        // is one line on stderr, and its count is in the summary and report.
        let fresh = !stats.distinct.contains_key(&signature);
        if fresh {
            stats.lines.push(format!(
                "{}: {text}{} (further violations like it are counted, not printed)",
                violation.clause,
                scenario
                    .as_ref()
                    .map(|p| format!(" (scenario {})", p.display()))
                    .unwrap_or_default()
            ));
        }
        let entry = stats
            .distinct
            .entry(signature.clone())
            .or_insert_with(|| DistinctFinding {
                signature,
                clause: violation.clause,
                count: 0,
                first: text.clone(),
                first_at_ms: at_ms,
                scenario: None,
                alternatives: Vec::new(),
                reproduced: None,
            });
        entry.count += 1;
        if entry.scenario.is_none() {
            entry.scenario = scenario.clone();
            entry.alternatives = others;
        }
        if stats.findings.len() < self.config.findings_kept_max {
            stats.findings.push(FindingRecord {
                at_ms,
                violation,
                step: step.clone(),
                scenario,
                history,
            });
        }
    }

    fn scenario_for(
        &self,
        violation: &Violation,
        slot: usize,
    ) -> (Option<PathBuf>, Vec<String>, Vec<Scenario>) {
        let mut involved: BTreeSet<PatientId> = BTreeSet::new();
        involved.insert(violation.patient);
        match &violation.finding {
            Finding::Foreign { owner, .. }
            | Finding::Canary {
                owner: CanaryOwner::Patient(owner),
            }
            | Finding::Served { owner, .. }
            | Finding::Trespassed { owner, .. }
            | Finding::Reveals { owner, .. }
            | Finding::Mismatch {
                other: Some(owner), ..
            }
            | Finding::ErasedVisible { owner, .. } => {
                involved.insert(*owner);
            }
            Finding::Canary { .. }
            | Finding::Phantom { .. }
            | Finding::Missing { .. }
            | Finding::Forged { .. }
            | Finding::Interfered { .. }
            | Finding::Differs { .. }
            | Finding::Lost { .. }
            | Finding::Mismatch { other: None, .. }
            | Finding::DeadSession { .. } => {}
        }
        let mut events: Vec<Event> = Vec::new();
        let own = lock(&self.logs[slot]).of(&involved);
        let observed = own
            .iter()
            .filter(|e| e.step.patient() == violation.patient)
            .nth(violation.step.saturating_sub(1))
            .map(|e| (e.sent_us, e.answered_us));
        if matches!(violation.finding, Finding::Phantom { .. })
            && let Some((sent, answered)) = observed
        {
            // Whoever was in flight with the observation may have made the phantom.
            for (i, log) in self.logs.iter().enumerate() {
                if i == slot {
                    continue;
                }
                let log = lock(log);
                let overlapped = log
                    .current
                    .iter()
                    .any(|e| e.sent_us <= answered && e.answered_us >= sent);
                if overlapped && let Some(first) = log.current.first() {
                    involved.insert(first.step.patient());
                }
                if involved.len() >= 8 {
                    break;
                }
            }
        }
        for log in &self.logs {
            events.extend(lock(log).of(&involved));
        }
        let key = match &violation.finding {
            Finding::Foreign {
                recording: Seen::Known(r),
                ..
            }
            | Finding::Served {
                recording: Seen::Known(r),
                ..
            }
            | Finding::ErasedVisible {
                recording: Seen::Known(r),
                ..
            } => Some(*r),
            _ => None,
        };
        // The fastest served answer of each action so far: what a replay on
        // an unloaded service should take (see `history::stagger`).
        let fastest_us = lock(&self.stats).fastest_us;
        let (observer, index) = (violation.patient, violation.step);
        let Some(built) = build(events.clone(), observer, index, key, &fastest_us) else {
            return (None, Vec::new(), Vec::new());
        };
        let mut others = alternatives(&events, observer, index, key, &fastest_us, &built);
        // The spacing as the soak saw it, unscaled: tried after the others,
        // in case the fastest answers understate a replay's.
        if let Some(unscaled) = build(events.clone(), observer, index, key, &[])
            && unscaled.stagger_us != built.stagger_us
        {
            others.push(unscaled);
        }
        if involved.len() == 1 {
            // A finding that names no one else may still be a race's: more
            // candidates add each of the likeliest partners, measured like
            // the others after the soak. Only what the observer sent before
            // the observation was answered can have raced with it.
            let cutoff = observed.map_or(u64::MAX, |(sent, answered)| sent.max(answered));
            let mine: Vec<Event> = own
                .iter()
                .filter(|e| e.sent_us <= cutoff)
                .cloned()
                .collect();
            for partner in self.race_partners(slot, &mine) {
                let pair = BTreeSet::from([observer, partner]);
                let mut paired: Vec<Event> = Vec::new();
                for log in &self.logs {
                    paired.extend(lock(log).of(&pair));
                }
                // The partner's life may have been forgotten meanwhile.
                if !paired.iter().any(|e| e.step.patient() == partner) {
                    continue;
                }
                if let Some(with_partner) = build(paired, observer, index, None, &fastest_us)
                    && !others.iter().chain(std::iter::once(&built)).any(|o| {
                        (&o.steps, &o.groups) == (&with_partner.steps, &with_partner.groups)
                    })
                {
                    others.push(with_partner);
                }
            }
        }
        let n = {
            let mut stats = lock(&self.stats);
            stats.scenarios += 1;
            stats.scenarios
        };
        let label = if self.target.faults().is_empty() {
            "clean".to_string()
        } else {
            self.target
                .faults()
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join("+")
        };
        let path = self
            .config
            .report_dir
            .join("scenarios")
            .join(format!("{label}-soak-seed-{}-{n}.toml", self.config.seed));
        let scenario_of = |built: Built| Scenario {
            description: Some(format!(
                "found by soak (seed {}): {}",
                self.config.seed, violation.clause
            )),
            target: self.target.spec().clone(),
            binding: self.target.binding().name.clone(),
            faults: self.target.faults().clone(),
            seed: Some(self.config.seed),
            expect: Expect::Violation(violation.clause),
            steps: built.steps,
            groups: built.groups,
            stagger_us: built.stagger_us,
        };
        let history = built.history.clone();
        let scenario = scenario_of(built);
        let others: Vec<Scenario> = others.into_iter().map(scenario_of).collect();
        let written = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
            .and_then(|()| write_scenario(&path, &scenario));
        match written {
            Ok(()) => (Some(path), history, others),
            Err(error) => {
                eprintln!("error: could not write {}: {error}", path.display());
                (None, history, Vec::new())
            }
        }
    }

    /// The other patients whose changes were in flight with `mine` (the
    /// observer's events, in slot `slot`) the longest, at most
    /// [`RACE_PARTNERS_MAX`], likeliest first ([`history::changes_overlap`]).
    fn race_partners(&self, slot: usize, mine: &[Event]) -> Vec<PatientId> {
        let mut scored: Vec<((u64, u64), PatientId)> = Vec::new();
        for (i, log) in self.logs.iter().enumerate() {
            if i == slot {
                continue;
            }
            // Copied out, so the slot's worker is not held up meanwhile.
            let lives = {
                let log = lock(log);
                [log.previous.clone(), log.current.clone()]
            };
            for life in &lives {
                let Some(first) = life.first() else {
                    continue;
                };
                let together = history::changes_overlap(mine, life);
                if together.1 > 0 {
                    scored.push((together, first.step.patient()));
                }
            }
        }
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(RACE_PARTNERS_MAX)
            .map(|(_, patient)| patient)
            .collect()
    }

    /// Judge the pending unknown ids whose in-flight requests have all completed.
    fn resolve_pending(&self, all: bool) {
        let floor = lock(&self.in_flight).first().copied().unwrap_or(u64::MAX);
        let ready: Vec<Pending> = {
            let mut pending = lock(&self.pending);
            let (ready, waiting): (Vec<Pending>, Vec<Pending>) =
                pending.drain(..).partition(|p| all || p.watermark < floor);
            *pending = waiting;
            ready
        };
        for p in ready {
            let seen = Seen::Unknown(p.unknown);
            let finding = match self.book.resolve(p.unknown) {
                None => Some((Clause::Ownership, Finding::Phantom { recording: seen })),
                Some(alias) => match self.owner(alias) {
                    Some(owned) if owned.owner != p.patient => Some((
                        Clause::Ownership,
                        Finding::Foreign {
                            recording: Seen::Known(alias),
                            owner: owned.owner,
                        },
                    )),
                    Some(owned) if owned.erased => Some((
                        Clause::Erasure,
                        Finding::ErasedVisible {
                            recording: Seen::Known(alias),
                            owner: owned.owner,
                        },
                    )),
                    _ => None,
                },
            };
            if let Some((clause, finding)) = finding {
                let violation = Violation {
                    clause,
                    step: p.index,
                    patient: p.patient,
                    field: p.field,
                    finding,
                };
                self.violation(violation, &p.step, p.slot);
            }
        }
    }
}

/// Run a soak against `target`: one service for the whole run (a fresh
/// embedded clinic, or the URL/containers deployment), `config.patients`
/// concurrent patients. `interrupt` ends it early but cleanly (Ctrl-C).
pub async fn soak(
    target: &Target,
    config: &SoakConfig,
    progress: &mut dyn SoakProgress,
    interrupt: impl Future<Output = ()>,
) -> Result<SoakOutcome, SoakError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SoakError::Io { path, source }
    };
    // One run per directory: a report directory holding anything already
    // (an earlier run's journal, scenarios or report) is refused, so a
    // report is never a mix of two runs.
    if std::fs::read_dir(&config.report_dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(SoakError::Io {
            path: config.report_dir.clone(),
            source: std::io::Error::other(
                "it is not empty (an earlier run's report?); pass --report NEW_DIR or remove it",
            ),
        });
    }
    std::fs::create_dir_all(&config.report_dir).map_err(io(&config.report_dir))?;
    let journal_path = config.report_dir.join("journal.jsonl");
    let mut journal = Journal::create(&journal_path).map_err(io(&journal_path))?;
    let faults: Vec<String> = target
        .faults()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    journal
        .append(&json!({
            "kind": "start",
            "seed": config.seed,
            "patients": config.patients,
            "duration_s": config.duration.map(|d| d.as_secs_f64()),
            "ops_max": config.ops_max,
            "rate": config.rate,
            "mix": config.mix.name(),
            "steps_per_patient_max": config.steps_per_patient_max,
            "target": target.spec().to_string(),
            "faults": faults,
        }))
        .map_err(io(&journal_path))?;
    let case = target
        .open_case()
        .await
        .map_err(|e| SoakError::Target(e.to_string()))?;
    let case = Arc::new(case);
    let slots = config.patients.max(1) as usize;
    let shared = Arc::new(Shared {
        config: config.clone(),
        target: target.clone(),
        canaries: Canaries::any_in(case.tag()),
        book: RecordingBook::new(),
        aliases: Aliases::default(),
        owners: Mutex::new(Owners::default()),
        graveyard: Mutex::new(std::collections::VecDeque::new()),
        next_patient: AtomicU32::new(config.patients.max(1) + 1),
        start: Instant::now(),
        stop: AtomicBool::new(false),
        issued: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        violations: AtomicU64::new(0),
        active: AtomicU32::new(0),
        next_request: AtomicU64::new(1),
        in_flight: Mutex::new(BTreeSet::new()),
        pending: Mutex::new(Vec::new()),
        logs: (0..slots).map(|_| Mutex::new(SlotLog::default())).collect(),
        stats: Mutex::new(Stats {
            latency: ACTIONS.iter().map(|_| histogram()).collect(),
            fastest_us: [0; ACTIONS.len()],
            recent: histogram(),
            coverage: [0; ACTIONS.len()],
            upgrade_then_history: 0,
            warnings: 0,
            own_seen: 0,
            by_clause: BTreeMap::new(),
            first_errors: Vec::new(),
            throughput: Vec::new(),
            findings: Vec::new(),
            scenarios: 0,
            distinct: BTreeMap::new(),
            lines: Vec::new(),
        }),
        journal: Mutex::new(journal),
    });

    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..slots {
        let shared = Arc::clone(&shared);
        let case = Arc::clone(&case);
        shared.active.fetch_add(1, Ordering::Relaxed);
        tasks.spawn(async move {
            patient_slot(&shared, &case, slot).await;
            shared.active.fetch_sub(1, Ordering::Relaxed);
        });
    }

    let tick = Duration::from_millis(500);
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut interrupted = false;
    let mut last = (Instant::now(), 0u64);
    let mut interrupt = std::pin::pin!(interrupt);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now = Instant::now();
                let done = shared.done.load(Ordering::Relaxed);
                let rate = (done - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-6);
                last = (now, done);
                let elapsed = shared.start.elapsed();
                if config.duration.is_some_and(|d| elapsed >= d) {
                    shared.stop.store(true, Ordering::Relaxed);
                }
                shared.resolve_pending(false);
                let (p99, lines) = {
                    let mut stats = lock(&shared.stats);
                    stats.throughput.push((elapsed.as_secs_f64(), rate));
                    let p99 = stats.recent.value_at_quantile(0.99) as f64 / 1000.0;
                    stats.recent.reset();
                    (p99, std::mem::take(&mut stats.lines))
                };
                for line in &lines {
                    progress.finding(line);
                }
                progress.tick(&Snapshot {
                    elapsed,
                    remaining: config.duration.map(|d| d.saturating_sub(elapsed)),
                    ops: done,
                    ops_max: config.ops_max,
                    ops_per_s: rate,
                    active: shared.active.load(Ordering::Relaxed),
                    violations: shared.violations.load(Ordering::Relaxed),
                    errors: shared.errors.load(Ordering::Relaxed),
                    latency_ms_p99: p99,
                });
            }
            joined = tasks.join_next() => {
                match joined {
                    None => break,
                    Some(Err(error)) if error.is_panic() => {
                        shared.error(format!("a patient task panicked: {error}"));
                    }
                    Some(_) => {}
                }
            }
            () = &mut interrupt, if !interrupted => {
                interrupted = true;
                shared.stop.store(true, Ordering::Relaxed);
            }
        }
    }
    // Everything has completed: whatever is still unknown is a phantom.
    shared.resolve_pending(true);
    let elapsed = shared.start.elapsed();
    let lines = std::mem::take(&mut lock(&shared.stats).lines);
    for line in &lines {
        progress.finding(line);
    }
    if let Ok(case) = Arc::try_unwrap(case) {
        case_close(case).await;
    }
    let shared = Arc::try_unwrap(shared)
        .map_err(|_| SoakError::Target("internal: patient tasks outlived the soak".to_string()))?;
    let mut stats = shared
        .stats
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let done = shared.done.load(Ordering::Relaxed);
    stats.throughput.push((
        elapsed.as_secs_f64(),
        if stats.throughput.is_empty() {
            done as f64 / elapsed.as_secs_f64().max(1e-6)
        } else {
            stats.throughput.last().map_or(0.0, |t| t.1)
        },
    ));
    let latency = ACTIONS
        .iter()
        .zip(&stats.latency)
        .map(|(action, h)| {
            let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
            ActionLatency {
                action,
                count: h.len(),
                p50: ms(0.5),
                p90: ms(0.9),
                p99: ms(0.99),
                p999: ms(0.999),
                max: h.max() as f64 / 1000.0,
            }
        })
        .collect();
    let outcome = SoakOutcome {
        caps: target.binding().caps,
        config: config.clone(),
        target: target.spec().to_string(),
        faults,
        elapsed,
        interrupted,
        ops: done,
        errors: shared.errors.load(Ordering::Relaxed),
        first_errors: stats.first_errors,
        warnings: stats.warnings,
        violations: shared.violations.load(Ordering::Relaxed),
        by_clause: stats.by_clause,
        patients_total: shared.next_patient.load(Ordering::Relaxed) - 1,
        coverage: stats.coverage,
        upgrade_then_history: stats.upgrade_then_history,
        latency,
        throughput: stats.throughput,
        findings: stats.findings,
        distinct: {
            let mut distinct: Vec<DistinctFinding> = stats.distinct.into_values().collect();
            distinct.sort_by(|a, b| {
                b.count
                    .cmp(&a.count)
                    .then_with(|| a.signature.cmp(&b.signature))
            });
            distinct
        },
        journal: journal_path,
        recordings_created: {
            let owners = lock(&shared.owners);
            u64::from(owners.base) + owners.list.len() as u64
        },
        recordings_held: shared.book.len(),
        own_seen: stats.own_seen,
        peak_rss_kib: peak_rss_kib(),
    };
    let mut journal = shared
        .journal
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    let verdict = outcome.verdict();
    let _ = journal.append(&json!({
        "kind": "end",
        "verdict": verdict.name(),
        "interrupted": interrupted,
        "elapsed_s": elapsed.as_secs_f64(),
        "ops": outcome.ops,
        "violations": outcome.violations,
        "errors": outcome.errors,
    }));
    Ok(outcome)
}

async fn case_close(case: CaseTarget) {
    case.close().await;
}

/// How long a slot waits before a fresh patient replaces one that failed.
const SLOT_REFILL_PAUSE: Duration = Duration::from_millis(100);

/// One patient slot: patients one after another, each for a bounded life.
async fn patient_slot(shared: &Shared, case: &CaseTarget, slot: usize) {
    let config = &shared.config;
    let mut patient = PatientId(u32::try_from(slot + 1).unwrap_or(u32::MAX));
    loop {
        let alive = live(shared, case, slot, patient).await;
        lock(&shared.logs[slot]).retire();
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        if !alive {
            // A patient whose step failed or diverged is done (its state is
            // no longer known), but the slot is not: a fresh patient takes
            // it, so the soak keeps its concurrency. The pause keeps a dead
            // target from being hammered by a hot loop of registrations.
            tokio::time::sleep(SLOT_REFILL_PAUSE).await;
        }
        patient = PatientId(shared.next_patient.fetch_add(1, Ordering::Relaxed));
        if config.steps_per_patient_max == 0 {
            return;
        }
    }
}

/// One patient's life. Returns whether the slot should go on (false after a
/// target failure or divergence: the patient's state is no longer known, and
/// the failure is already counted).
async fn live(shared: &Shared, case: &CaseTarget, slot: usize, patient: PatientId) -> bool {
    let mut mine = Vec::new();
    let alive = live_recording(shared, case, slot, patient, &mut mine).await;
    shared.retire(patient, &mine);
    alive
}

/// [`live`], noting in `mine` every recording alias the patient was given.
async fn live_recording(
    shared: &Shared,
    case: &CaseTarget,
    slot: usize,
    patient: PatientId,
    mine: &mut Vec<RecordingId>,
) -> bool {
    let config = &shared.config;
    let mut walker = Walker::new(patient, config.seed, case.binding().caps);
    let mut driver = case.driver_sharing(shared.book.clone());
    for index in 1..=config.steps_per_patient_max {
        if shared.stop.load(Ordering::Relaxed) {
            return false;
        }
        let k = shared.issued.fetch_add(1, Ordering::Relaxed);
        if config.ops_max.is_some_and(|max| k >= max) {
            shared.stop.store(true, Ordering::Relaxed);
            return false;
        }
        if let Some(rate) = config.rate.filter(|r| *r > 0.0) {
            let at = shared.start + Duration::from_secs_f64(k as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            if shared.stop.load(Ordering::Relaxed) {
                return false;
            }
        }
        let step = walker.choose(
            config.mix,
            &shared.aliases,
            || {
                let recording = shared.new_recording(patient);
                mine.push(recording);
                recording
            },
            |rng| shared.probe_target(rng, patient),
        );
        let request = shared.next_request.fetch_add(1, Ordering::Relaxed);
        lock(&shared.in_flight).insert(request);
        let sent_us = shared.micros();
        lock(&shared.logs[slot]).current.push(Event {
            step: step.clone(),
            sent_us,
            answered_us: 0,
            ok: false,
        });
        let sent = Instant::now();
        let result = driver.perform(&step).await;
        let latency_us = u64::try_from(sent.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        // The driver has learnt any id the answer created before we get here,
        // so leaving the in-flight set now is what lets pending ids resolve.
        lock(&shared.in_flight).remove(&request);
        let watermark = shared.next_request.load(Ordering::Relaxed) - 1;
        let answered_us = shared.micros();
        shared.done.fetch_add(1, Ordering::Relaxed);
        {
            let served = result.as_ref().is_ok_and(Observation::is_success);
            let mut stats = lock(&shared.stats);
            let _ = stats.latency[step.action_index()].record(latency_us);
            let _ = stats.recent.record(latency_us);
            let fastest = &mut stats.fastest_us[step.action_index()];
            if served && (*fastest == 0 || latency_us < *fastest) {
                *fastest = latency_us;
            }
        }
        let observation = match result {
            Ok(observation) => observation,
            Err(error) => {
                shared.error(format!("{patient} step {index} `{step}`: {error}"));
                return false;
            }
        };
        let accepted =
            observation.is_success() || matches!(step, Step::Probe { .. } | Step::Play { .. });
        if let Some(event) = lock(&shared.logs[slot]).current.last_mut() {
            event.answered_us = answered_us;
            event.ok = accepted;
        }
        let before = shared.view(&walker.state, &step, &observation);
        if !before.precondition(&step) {
            // Only a probe whose recording was forgotten while the step was
            // in flight (a process stalled past `forget_after`) lands here:
            // there is nothing left to judge it against.
            continue;
        }
        let after = before.clone().apply(&step);
        let mut judgement = oracle::check(
            &shared.canaries,
            &before,
            &after,
            index,
            &step,
            &observation,
        );
        // A recording shown finished and later missing is lost: a finding.
        super::execute::lost(
            &mut judgement,
            &mut walker.seen_complete,
            &after,
            &step,
            &observation,
        );
        let mut phantoms = Vec::new();
        for violation in judgement.violations {
            match violation.finding {
                Finding::Phantom {
                    recording: Seen::Unknown(n),
                } => phantoms.push((violation.field, n)),
                _ => shared.violation(violation, &step, slot),
            }
        }
        if !phantoms.is_empty() {
            let mut pending = lock(&shared.pending);
            for (field, unknown) in phantoms {
                pending.push(Pending {
                    patient,
                    slot,
                    index,
                    step: step.clone(),
                    field,
                    unknown,
                    watermark,
                });
            }
        }
        {
            let mut stats = lock(&shared.stats);
            stats.warnings += judgement.warnings.len() as u64;
            stats.own_seen += super::execute::own_finished_seen(&after, &step, &observation);
            if accepted {
                stats.coverage[step.action_index()] += 1;
                if matches!(step, Step::View { .. }) && walker.upgraded_unviewed {
                    stats.upgrade_then_history += 1;
                    walker.upgraded_unviewed = false;
                }
            }
        }
        if !accepted {
            shared.error(format!(
                "{patient} step {index} `{step}` is valid in the model but the service answered {}",
                observation.status
            ));
            return false;
        }
        match step {
            Step::Upgrade { .. } => walker.upgraded_unviewed = true,
            Step::Erase { recording, .. } => {
                if let Some(owned) = lock(&shared.owners).get_mut(recording) {
                    owned.erased = true;
                }
            }
            _ => {}
        }
        // Reads change nothing, and a probe names a recording the patient's
        // own state does not hold.
        if !matches!(
            step,
            Step::Probe { .. } | Step::View { .. } | Step::Play { .. }
        ) {
            walker.state = walker.state.clone().apply(&step);
        }
    }
    true
}
