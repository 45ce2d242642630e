//! Chaperone's integration tests: one binary, one module per concern.
//!
//! Every test uses fixed seeds and the embedded clinic (fresh per case), so
//! results are deterministic; nothing here depends on wall-clock speed.

mod bad_input;
mod bindings;
mod cli;
mod containers;
mod detection;
mod fhir;
mod hostile;
mod hostile_target;
mod import_fuzz;
mod noninterference;
mod scenarios;
mod soak;
mod tinyhealth;

use std::sync::Arc;

use chaperone::binding::Binding;
use chaperone::model::{self, Step};
use chaperone::oracle::Clause;
use chaperone::runner::{self, CaseRun, CheckConfig, CheckReport};
use chaperone::scenario::Scenario;
use chaperone::target::{Target, TargetSpec};
use clinic::{Fault, FaultSet};

/// A small runtime per test: tests run in parallel threads.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The embedded clinic with these faults.
pub fn embedded(faults: &[Fault]) -> Target {
    let mut set = FaultSet::default();
    for fault in faults {
        set.insert(*fault);
    }
    Target::new(TargetSpec::Embedded, set)
}

/// `chaperone run` as a library call.
pub fn check(faults: &[Fault], seed: u64, cases: u32) -> CheckReport {
    check_through(&clinic_binding(), faults, seed, cases)
}

/// `chaperone run --binding FILE` as a library call.
pub fn check_through(
    binding: &Arc<Binding>,
    faults: &[Fault],
    seed: u64,
    cases: u32,
) -> CheckReport {
    let config = CheckConfig {
        seed,
        cases,
        ..CheckConfig::default()
    };
    let target = embedded(faults).with_binding(binding.clone());
    runtime().block_on(runner::check(&target, &config, &mut ()))
}

/// Run `steps` once against a fresh embedded clinic with `faults`.
pub fn run_steps(faults: &[Fault], steps: &[Step]) -> CaseRun {
    run_steps_through(&clinic_binding(), faults, steps)
}

/// Run `steps` once through `binding` against a fresh embedded clinic with `faults`.
pub fn run_steps_through(binding: &Arc<Binding>, faults: &[Fault], steps: &[Step]) -> CaseRun {
    let limits = model::limits_for(binding.caps, steps);
    let target = embedded(faults).with_binding(binding.clone());
    runtime().block_on(runner::run_case(&target, limits, steps, None))
}

/// The reference clinic's `/v1` binding (the default).
pub fn clinic_binding() -> Arc<Binding> {
    Arc::new(Binding::clinic())
}

/// A binding file checked in under `bindings/`.
pub fn checked_in_binding(file: &str) -> Arc<Binding> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bindings")
        .join(file);
    Arc::new(Binding::load(&path).unwrap_or_else(|e| panic!("{e}")))
}

/// The reference clinic's FHIR R4-shaped API, `bindings/clinic-fhir.toml`.
pub fn fhir_binding() -> Arc<Binding> {
    checked_in_binding("clinic-fhir.toml")
}

/// The clauses a run violated.
pub fn clauses(run: &CaseRun) -> Vec<Clause> {
    let mut clauses: Vec<Clause> = run
        .violations()
        .unwrap_or_default()
        .iter()
        .map(|v| v.clause)
        .collect();
    clauses.dedup();
    clauses
}

/// Parse a checked-in or written scenario from text.
pub fn parse(text: &str) -> Scenario {
    Scenario::parse(std::path::Path::new("test.toml"), text).expect("scenario parses")
}

/// Insta settings: snapshots live in the top-level `snapshots/`.
pub fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

/// How many checked-in scenarios `scenarios/` holds (what the gate replays).
pub fn checked_in_scenarios() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios"))
        .expect("scenarios/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "toml"))
        .count()
}
