//! Shared code of Chaperone's fuzz targets (`fuzz_targets/*.rs`).
//!
//! - [`service`]: the [`Service`] trait, what `flows` needs of an in-process
//!   service (a router, and a reset between runs), and [`Clinic`], the
//!   reference clinic (api router over an in-process media router,
//!   in-memory SQLite): no sockets, one per fuzzing process.
//! - [`flows`](mod@flows): [`Flows`], the `flows` target's body: decode,
//!   execute through the same driver, model and oracles as `chaperone run`,
//!   judge. It takes any [`Service`] and binding.
//! - [`mutate`]: the structure-aware mutator and cross-over of `flows`.
//! - [`runtime`]: one single-threaded tokio runtime per fuzzing process.
//! - [`faults_from_env`]: the faults to plant, from `CHAPERONE_FUZZ_FAULTS`.
//! - [`requests`]: the `clinic_requests` target's input format, setup and
//!   properties.
//!
//! Every property failure is a panic whose message names aliases, clauses
//! and placeholders only: no service id, token or body.

pub mod flows;
pub mod mutate;
pub mod requests;
pub mod service;

use std::sync::LazyLock;

use axum::Router;
use chaperone::binding::Binding;
use chaperone::model::Flow;
use clinic::FaultSet;
use tokio::runtime::Runtime;

pub use flows::{Expect, FlowOutcome, Flows};
pub use service::{Clinic, Service};

/// The environment variable naming the faults to plant (`a,b`; unset or
/// empty for the clean clinic).
pub const FAULTS_ENV: &str = "CHAPERONE_FUZZ_FAULTS";

/// The process's runtime. The in-process services need no sockets; the
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

/// The reference clinic with `faults`, in-process and reset (as if just
/// started): its api router. One clinic per fault set and thread, kept for
/// the life of the process, so a fuzz target pays for the database and the
/// routers once, not once per input.
pub fn clinic(faults: &FaultSet) -> Router {
    thread_local! {
        static CLINICS: std::cell::RefCell<Vec<(String, Clinic)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    let key = faults.to_string();
    CLINICS.with_borrow_mut(|clinics| {
        let at = match clinics.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                clinics.push((key, Clinic::new(faults)));
                clinics.len() - 1
            }
        };
        let clinic = &mut clinics[at].1;
        clinic.reset();
        clinic.router()
    })
}

/// The reference clinic with `faults`, fuzzed through its `/v1` binding
/// (`bindings/clinic.toml`): a clean clinic must pass every flow, a faulty
/// one only fails on a privacy violation.
pub fn clinic_flows(faults: &FaultSet) -> Flows<Clinic> {
    let expect = if faults.is_empty() {
        Expect::Correct
    } else {
        Expect::Faulty
    };
    Flows::new(Clinic::new(faults), Binding::clinic(), expect)
}

/// Judge one `flow` on a clinic with `faults` (a new clinic each call: for
/// tests; the fuzz target keeps one [`Flows`]).
pub fn flows(flow: &Flow, faults: &FaultSet) -> FlowOutcome {
    clinic_flows(faults).run(flow)
}

#[cfg(test)]
mod tests {
    use chaperone::model::{self, Limits, Step};
    use clinic::Fault;

    use super::*;

    fn bytes_of(lines: &[&str]) -> Vec<u8> {
        let steps: Vec<Step> = lines.iter().map(|l| Step::parse(l).unwrap()).collect();
        model::encode(&steps, Limits::default()).expect("encodable")
    }

    /// The checked-in seed `name` in `dir` holds exactly `bytes`
    /// (`CHAPERONE_WRITE_SEEDS=1` writes a missing or stale one first).
    fn assert_seed_file(dir: &std::path::Path, name: &str, bytes: &[u8]) {
        let path = dir.join(name);
        if std::env::var_os("CHAPERONE_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(&path, bytes).unwrap();
        }
        let on_disk = std::fs::read(&path).unwrap_or_default();
        assert_eq!(
            on_disk, bytes,
            "{name} is stale; rerun with CHAPERONE_WRITE_SEEDS=1"
        );
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
        let incident: FaultSet = [Fault::UpgradeLatestCall].into_iter().collect();
        for (name, lines) in FLOWS_SEEDS {
            let bytes = bytes_of(lines);
            assert_seed_file(&dir, name, &bytes);
            let flow = Flow::from_bytes(&bytes);
            assert_eq!(flow.steps(Limits::default()).len(), lines.len(), "{name}");
            assert_eq!(
                flows(&flow, &FaultSet::default()),
                FlowOutcome::Passed,
                "{name}"
            );
            assert_eq!(flows(&flow, &incident), FlowOutcome::Passed, "{name}");
        }
    }

    /// `flows` seeds written for the FHIR binding (`CHAPERONE_FUZZ_BINDING=
    /// bindings/clinic-fhir.toml`): its views are not `/v1`'s, so these are
    /// encoded under its limits (under `/v1` the bytes decode to other flows).
    const FHIR_SEEDS: [(&str, &[&str]); 1] = [(
        "seed-fhir-encounter-pages",
        &[
            "P1 register",
            "P1 book A1 at d1-09h",
            "P1 start-call A1 -> C1 R1",
            "P1 send-media C1 #1",
            "P1 upgrade C1 -> R2",
            "P1 end-call C1",
            "P1 view encounter C1 page=2 per-page=1",
        ],
    )];

    #[test]
    fn fhir_seeds_are_the_documented_flows_and_pass_where_they_should() {
        // Goal: the FHIR seeds decode, under the FHIR binding, to the flows
        // above, pass on the clean clinic, and do not already show the
        // paging fault they lead towards (the fuzzer must add the other
        // patient).
        // Method: as for the `/v1` seeds, through `Flows` with the binding.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let binding = Binding::load(&root.join("../bindings/clinic-fhir.toml")).unwrap();
        let dir = root.join("corpus/flows");
        let paging: FaultSet = [Fault::FhirNextLinkUnscoped].into_iter().collect();
        for (name, lines) in FHIR_SEEDS {
            let mut clean = Flows::new(
                Clinic::new(&FaultSet::default()),
                binding.clone(),
                Expect::Correct,
            );
            let steps: Vec<Step> = lines.iter().map(|l| Step::parse(l).unwrap()).collect();
            let bytes = model::encode(&steps, clean.limits()).expect("encodable");
            assert_seed_file(&dir, name, &bytes);
            let flow = Flow::from_bytes(&bytes);
            assert_eq!(flow.steps(clean.limits()), steps, "{name}");
            assert_eq!(clean.run(&flow), FlowOutcome::Passed, "{name}");
            let mut faulty = Flows::new(Clinic::new(&paging), binding.clone(), Expect::Faulty);
            assert_eq!(faulty.run(&flow), FlowOutcome::Passed, "{name}");
            // The same corpus feeds `/v1` runs, where the bytes are another flow.
            assert_eq!(
                flows(&flow, &FaultSet::default()),
                FlowOutcome::Passed,
                "{name} /v1"
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
            let outcome = flows(&flow, &scenario.faults);
            assert!(
                matches!(outcome, FlowOutcome::Failed(_)),
                "{}: {outcome:?}",
                path.display()
            );
            assert_eq!(
                flows(&flow, &FaultSet::default()),
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
        assert_eq!(flows(&flow, &FaultSet::default()), FlowOutcome::Passed);
        let faulty: FaultSet = [Fault::UpgradeLatestCall].into_iter().collect();
        match flows(&flow, &faulty) {
            FlowOutcome::Failed(message) => {
                assert!(message.contains("[ownership]"), "{message}");
                assert!(message.contains("step 8"), "{message}");
            }
            FlowOutcome::Passed => panic!("the incident was not found"),
        }
    }

    #[test]
    fn one_reset_clinic_judges_every_input_as_a_fresh_clinic_does() {
        // Goal: the fuzz target reuses one clinic and resets it between runs;
        // nothing of an earlier input may change a later one's outcome.
        // Method: every checked-in fault scenario and 300 pseudo-random
        // inputs (fixed seed), judged in one sequence on one `Flows` per
        // fault set and each on a fresh clinic: the outcomes must agree.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut inputs: Vec<(FaultSet, Vec<u8>)> = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let scenario = chaperone::scenario::Scenario::read(&path).unwrap();
            if scenario.faults.is_empty() || scenario.is_concurrent() {
                continue;
            }
            let bytes = model::encode(&scenario.steps, Limits::default()).unwrap();
            inputs.push((scenario.faults.clone(), bytes));
        }
        let mut x: u64 = 0x0DDB_1A5E_5BAD_5EED;
        for n in 0..300 {
            let len = 3 * (1 + (x % 50) as usize);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let faults = if n % 2 == 0 {
                FaultSet::default()
            } else {
                inputs[n % inputs.len()].0.clone()
            };
            inputs.push((faults, bytes));
        }
        let mut reused: std::collections::HashMap<String, Flows<Clinic>> = Default::default();
        let mut failed = 0;
        for (faults, bytes) in &inputs {
            let flow = Flow::from_bytes(bytes);
            let fresh = flows(&flow, faults);
            let kept = reused
                .entry(faults.to_string())
                .or_insert_with(|| clinic_flows(faults))
                .run(&flow);
            assert_eq!(
                kept,
                fresh,
                "faults {faults}: {:?}",
                flow.steps(Limits::default())
            );
            failed += usize::from(matches!(fresh, FlowOutcome::Failed(_)));
        }
        assert!(failed >= 10, "the inputs must include failures: {failed}");
    }

    #[test]
    fn flows_reaches_the_fhir_only_faults_through_the_fhir_binding() {
        // Goal: `Flows` takes any binding of an in-process service: through
        // `bindings/clinic-fhir.toml` (what CHAPERONE_FUZZ_BINDING selects)
        // it reaches the faults only the FHIR face has.
        // Method: every scenario under scenarios/fhir/ that plants faults,
        // encoded under the FHIR binding's limits: a failure with its fault,
        // a pass on the clean clinic.
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let binding = Binding::load(&root.join("bindings/clinic-fhir.toml")).unwrap();
        let mut fhir_only = FaultSet::default();
        for entry in std::fs::read_dir(root.join("scenarios/fhir")).unwrap() {
            let path = entry.unwrap().path();
            let scenario = chaperone::scenario::Scenario::read(&path).unwrap();
            if scenario.faults.is_empty() || scenario.is_concurrent() {
                continue;
            }
            let mut faulty = Flows::new(
                Clinic::new(&scenario.faults),
                binding.clone(),
                Expect::Faulty,
            );
            let bytes = model::encode(&scenario.steps, faulty.limits())
                .unwrap_or_else(|| panic!("{} is not expressible", path.display()));
            let flow = Flow::from_bytes(&bytes);
            let outcome = faulty.run(&flow);
            assert!(
                matches!(outcome, FlowOutcome::Failed(_)),
                "{}: {outcome:?}",
                path.display()
            );
            let mut clean = Flows::new(
                Clinic::new(&FaultSet::default()),
                binding.clone(),
                Expect::Correct,
            );
            assert_eq!(clean.run(&flow), FlowOutcome::Passed, "{}", path.display());
            fhir_only.extend(scenario.faults.iter().filter(|f| f.fhir_only()));
        }
        let expected: FaultSet = Fault::ALL.into_iter().filter(|f| f.fhir_only()).collect();
        assert_eq!(fhir_only, expected);
    }
}
