//! Shared code of Chaperone's fuzz targets (`fuzz_targets/*.rs`).
//!
//! - [`clinic`]: the reference clinic in-process (api router over an
//!   in-process media router, in-memory SQLite), fresh per input: no sockets.
//! - [`runtime`]: one single-threaded tokio runtime per fuzzing process.
//! - [`faults_from_env`]: the faults to plant, from `CHAPERONE_FUZZ_FAULTS`.
//! - [`flows`]: the `flows` target's body: decode, execute through the same
//!   driver, model and oracles as `chaperone run`, judge.
//! - [`requests`]: the `clinic_requests` target's input format, setup and
//!   properties.
//!
//! Every property failure is a panic whose message names aliases, clauses
//! and placeholders only: no service id, token or body.

pub mod requests;

use std::sync::LazyLock;

use axum::Router;
use chaperone::binding::Binding;
use chaperone::driver::{BindingDriver, Store, Transport};
use chaperone::model::{Flow, Limits};
use chaperone::target::ServicesFile;

/// The reference clinic's `/v1` binding, compiled once per process.
fn clinic_binding() -> std::sync::Arc<Binding> {
    static BINDING: std::sync::OnceLock<std::sync::Arc<Binding>> = std::sync::OnceLock::new();
    BINDING
        .get_or_init(|| std::sync::Arc::new(Binding::clinic()))
        .clone()
}
use chaperone::oracle::Canaries;
use chaperone::runner::{
    CaseEnd, alone_for_comparison, alone_steps, differs, execute, interfered, suspects,
};
use clinic::media::MediaState;
use clinic::{Config, FaultSet, MediaLink, api, media};
use tokio::runtime::Runtime;

/// The environment variable naming the faults to plant (`a,b`; unset or
/// empty for the clean clinic).
pub const FAULTS_ENV: &str = "CHAPERONE_FUZZ_FAULTS";

/// The process's runtime. The in-process clinic needs no sockets; the
/// timer is for the store check's time bound. One thread keeps every input
/// deterministic.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime with a timer cannot fail to build")
    });
    &RUNTIME
}

/// The faults named by [`FAULTS_ENV`]. A bad name is a usage error: one
/// line on stderr and exit 2, before any input runs.
pub fn faults_from_env() -> FaultSet {
    let list = std::env::var(FAULTS_ENV).unwrap_or_default();
    match FaultSet::parse_list(&list) {
        Ok(faults) => faults,
        Err(error) => {
            eprintln!("error: {FAULTS_ENV}: {error}");
            std::process::exit(2);
        }
    }
}

/// A fresh reference clinic with `faults`, in-process: its api router.
pub fn clinic(faults: &FaultSet) -> Router {
    clinic_with_store(faults).0
}

/// A fresh reference clinic with `faults`, in-process: its api router, and
/// its media service's router (the store erasure is checked in).
pub fn clinic_with_store(faults: &FaultSet) -> (Router, Router) {
    let config = Config {
        faults: faults.clone(),
        db_path: None,
    };
    let media = media::router(MediaState::default());
    let link = MediaLink::InProcess(media.clone());
    let state = api::ApiState::new(&config, link)
        .expect("an in-memory database always opens and takes its schema");
    (api::router(state), media)
}

/// A driver for a fresh in-process clinic with `faults`, checking erasure in
/// its media store as `chaperone run` does on the embedded clinic.
fn fresh_driver(binding: std::sync::Arc<Binding>, faults: &FaultSet) -> BindingDriver {
    let (api, media) = clinic_with_store(faults);
    let spec = ServicesFile::clinic()
        .store()
        .map(|(_, spec)| spec.clone())
        .expect("the built-in target file names the media store");
    BindingDriver::in_process(binding, api).with_store(Store::new(
        Transport::InProcess(media),
        spec,
        false,
    ))
}

/// How one `flows` input ended, as the fuzz target judges it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOutcome {
    /// No violation (or, with faults planted, a divergence or target failure
    /// that a fault caused: the input ends without a finding).
    Passed,
    /// The property failed: the message names the step, clause and aliases.
    Failed(String),
}

/// The `flows` target: decode `flow`, run it against a fresh in-process
/// clinic with `faults` through the same driver, model and oracles as
/// `chaperone run`, and judge it. On the clean clinic anything but a pass is
/// a failure (a correct clinic never leaks, never refuses a valid step and
/// never fails); with faults only a privacy violation is.
pub fn flows(flow: &Flow, faults: &FaultSet, canaries: &Canaries) -> FlowOutcome {
    let limits = Limits::default();
    debug_assert!(canaries.patients() >= limits.patients_max);
    let steps = flow.steps(limits);
    if steps.is_empty() {
        return FlowOutcome::Passed;
    }
    let mut driver = fresh_driver(clinic_binding(), faults);
    let run = runtime().block_on(execute(&mut driver, limits, canaries, &steps, None));
    let clean = faults.is_empty();
    // Noninterference, as `chaperone run` judges it: a refused step that
    // succeeds when its patient acts alone, on a fresh clinic.
    if let CaseEnd::Diverged { step, status, .. } = run.end
        && let Some(alone) = alone_steps(limits, &steps, step, &clinic_binding().shared)
    {
        let mut solo = fresh_driver(clinic_binding(), faults);
        let solo = runtime().block_on(execute(&mut solo, limits, canaries, &alone, None));
        if solo.end == CaseEnd::Passed {
            let violation = interfered(&steps, step, status, &alone);
            return FlowOutcome::Failed(format!(
                "privacy violation at step {step} `{}`: [{}] {violation};",
                steps[step - 1],
                violation.clause
            ));
        }
    }
    // And a passed case in which a patient's own finished recording was
    // missing: that patient's steps alone, every observation compared.
    if run.end == CaseEnd::Passed {
        let binding = clinic_binding();
        for (patient, upto) in suspects(&binding, &steps, &run) {
            let prefix = &steps[..upto];
            let Some((indices, alone)) = alone_for_comparison(limits, prefix, &run.trace, patient)
            else {
                continue;
            };
            let mut solo = fresh_driver(binding.clone(), faults);
            let solo = runtime().block_on(execute(&mut solo, limits, canaries, &alone, None));
            if let Some(violation) = differs(&binding, prefix, &run.trace, &indices, &solo, patient)
            {
                return FlowOutcome::Failed(format!(
                    "privacy violation at step {} `{}`: [{}] {violation};",
                    violation.step,
                    steps[violation.step - 1],
                    violation.clause
                ));
            }
        }
    }
    match run.end {
        CaseEnd::Passed => FlowOutcome::Passed,
        CaseEnd::Violated { violations } => {
            let mut message = format!(
                "privacy violation at step {} `{}`:",
                run.steps_run,
                steps[run.steps_run - 1]
            );
            for violation in &violations {
                message.push_str(&format!(" [{}] {violation};", violation.clause));
            }
            FlowOutcome::Failed(message)
        }
        CaseEnd::Diverged { step, reason, .. } if clean => FlowOutcome::Failed(format!(
            "the clean clinic diverged from the model at step {step}: {reason}"
        )),
        CaseEnd::TargetFailed { step, error } if clean => {
            FlowOutcome::Failed(format!("the clean clinic failed at step {step}: {error}"))
        }
        CaseEnd::Diverged { .. } | CaseEnd::TargetFailed { .. } => FlowOutcome::Passed,
    }
}

#[cfg(test)]
mod tests {
    use chaperone::model::{self, Step};
    use clinic::Fault;

    use super::*;

    fn bytes_of(lines: &[&str]) -> Vec<u8> {
        let steps: Vec<Step> = lines.iter().map(|l| Step::parse(l).unwrap()).collect();
        model::encode(&steps, Limits::default()).expect("encodable")
    }

    /// The `flows` seed corpus: each file is the encoding of these steps.
    const FLOWS_SEEDS: [(&str, &[&str]); 4] = [
        (
            "seed-one-patient-lifecycle",
            &[
                "P1 register",
                "P1 book A1 at d1-09h",
                "P1 start-call A1 -> C1 R1",
                "P1 send-media C1 #1",
                "P1 upgrade C1 -> R2",
                "P1 send-media C1 #2",
                "P1 end-call C1",
                "P1 view-history page=1 per-page=10",
                "P1 play R2",
                "P1 erase R1",
                "P1 view-history page=1 per-page=1",
                "P1 cancel A1",
            ],
        ),
        (
            "seed-two-patients-in-calls",
            &[
                "P1 register",
                "P2 register",
                "P2 book A1 at d1-10h",
                "P1 book A2 at d1-11h",
                "P2 start-call A1 -> C1 R1",
                "P1 start-call A2 -> C2 R2",
                "P1 upgrade C2 -> R3",
                "P1 send-media C2 #1",
                "P2 send-media C1 #2",
                "P2 end-call C1",
                "P1 end-call C2",
                "P2 view-history page=1 per-page=10",
                "P1 view-history page=1 per-page=10",
            ],
        ),
        (
            "seed-probe-and-pages",
            &[
                "P1 register",
                "P1 book A1 at d1-09h",
                "P1 start-call A1 -> C1 R1",
                "P1 send-media C1 #3",
                "P1 end-call C1",
                "P2 register",
                "P2 probe R1",
                "P2 view-history page=2 per-page=1",
                "P1 view-history page=2 per-page=1",
            ],
        ),
        (
            "seed-cancel-and-rebook",
            &[
                "P1 register",
                "P1 book A1 at d1-09h",
                "P1 cancel A1",
                "P2 register",
                "P2 book A2 at d2-09h",
                "P2 start-call A2 -> C1 R1",
                "P2 end-call C1",
                "P2 view-history page=1 per-page=10",
            ],
        ),
    ];

    #[test]
    fn flows_seeds_are_the_documented_flows_and_pass_where_they_should() {
        // Goal: the checked-in `flows` seeds are the flows listed above, pass
        // on the clean clinic, and do not already show upgrade-latest-call
        // (so CI's check that the fuzzer finds it shows the fuzzer at work).
        // Method: compare each file with the encoding of its steps
        // (CHAPERONE_WRITE_SEEDS=1 writes missing or stale files), then run it.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/flows");
        let canaries = Canaries::new(Limits::default().patients_max);
        let incident: FaultSet = [Fault::UpgradeLatestCall].into_iter().collect();
        for (name, lines) in FLOWS_SEEDS {
            let bytes = bytes_of(lines);
            let path = dir.join(name);
            if std::env::var_os("CHAPERONE_WRITE_SEEDS").is_some() {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
            }
            let on_disk = std::fs::read(&path).unwrap_or_default();
            assert_eq!(
                on_disk, bytes,
                "{name} is stale; rerun with CHAPERONE_WRITE_SEEDS=1"
            );
            let flow = Flow::from_bytes(&bytes);
            assert_eq!(flow.steps(Limits::default()).len(), lines.len(), "{name}");
            assert_eq!(
                flows(&flow, &FaultSet::default(), &canaries),
                FlowOutcome::Passed,
                "{name}"
            );
            assert_eq!(
                flows(&flow, &incident, &canaries),
                FlowOutcome::Passed,
                "{name}"
            );
        }
    }

    #[test]
    fn every_checked_in_fault_scenario_is_a_flows_input_the_target_fails() {
        // Goal: the decoder can express the trigger of every planted fault,
        // and the `flows` target fails on it with that fault and passes on
        // the clean clinic (so a fault it does not find in a bounded run is
        // a matter of search, not of reach).
        // Method: encode each scenario under scenarios/ that records a fault.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let canaries = Canaries::new(Limits::default().patients_max);
        let mut faults_seen = FaultSet::default();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let scenario = chaperone::scenario::Scenario::read(&path).unwrap();
            // Sequential flows cannot express steps sent together: a race
            // scenario (`&` groups) is soak's and replay's, not this target's.
            if scenario.faults.is_empty() || scenario.is_concurrent() {
                continue;
            }
            let bytes = model::encode(&scenario.steps, Limits::default())
                .unwrap_or_else(|| panic!("{} is not expressible", path.display()));
            let flow = Flow::from_bytes(&bytes);
            assert_eq!(flow.steps(Limits::default()), scenario.steps);
            let outcome = flows(&flow, &scenario.faults, &canaries);
            assert!(
                matches!(outcome, FlowOutcome::Failed(_)),
                "{}: {outcome:?}",
                path.display()
            );
            assert_eq!(
                flows(&flow, &FaultSet::default(), &canaries),
                FlowOutcome::Passed,
                "{}",
                path.display()
            );
            faults_seen.extend(scenario.faults.iter());
        }
        // Every fault but the race, which only truly concurrent requests
        // show, and the FHIR-only ones, which `/v1` flows cannot reach.
        let sequential: FaultSet = Fault::ALL
            .into_iter()
            .filter(|f| *f != Fault::UpgradeSharedSlot && !f.fhir_only())
            .collect();
        assert_eq!(faults_seen, sequential);
    }

    #[test]
    fn flows_judges_the_incident_as_a_violation_only_with_its_fault() {
        // Goal: the `flows` property can fail, and only where it should.
        // Method: the 2020 incident's steps, encoded as a fuzz input, against
        // the clean clinic and with upgrade-latest-call planted.
        let bytes = bytes_of(&[
            "P1 register",
            "P2 register",
            "P1 book A1 at d1-08h",
            "P1 start-call A1 -> C1 R1",
            "P2 book A2 at d1-15h",
            "P2 start-call A2 -> C2 R2",
            "P1 upgrade C1 -> R3",
            "P2 view-history page=1 per-page=10",
        ]);
        let flow = Flow::from_bytes(&bytes);
        let canaries = Canaries::new(Limits::default().patients_max);
        assert_eq!(
            flows(&flow, &FaultSet::default(), &canaries),
            FlowOutcome::Passed
        );
        let faulty: FaultSet = [Fault::UpgradeLatestCall].into_iter().collect();
        match flows(&flow, &faulty, &canaries) {
            FlowOutcome::Failed(message) => {
                assert!(message.contains("[ownership]"), "{message}");
                assert!(message.contains("step 8"), "{message}");
            }
            FlowOutcome::Passed => panic!("the incident was not found"),
        }
    }
}
