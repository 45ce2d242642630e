//! `flows`: fuzz bytes decode (through `arbitrary`, [`chaperone::model::Flow`])
//! into a valid sequence of patient steps, run against the reference clinic
//! in-process through the same driver, model and oracles as `chaperone run`.
//!
//! `CHAPERONE_FUZZ_BINDING=bindings/clinic-fhir.toml` drives the clinic's
//! FHIR face instead of `/v1` (and reaches the FHIR-only faults).
//!
//! Property: the clinic keeps the privacy property. With no fault planted
//! (`CHAPERONE_FUZZ_FAULTS` unset) any violation, divergence from the model
//! or clinic failure is a crash; with faults planted, any privacy violation
//! is. Turn a crash into a scenario with `chaperone import-fuzz ARTIFACT`.
//!
//! This file is also the template for fuzzing a team's own service: copy it,
//! put your router behind [`Service`] instead of [`Clinic`], and your binding
//! in place of `bindings/clinic.toml` (see `fuzz/README.md`).

#![no_main]

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use chaperone::binding::Binding;
use chaperone::model::Flow;
use chaperone_fuzz::mutate::{crossover, mutate};
use chaperone_fuzz::{Clinic, Expect, FlowOutcome, Flows, faults_from_env};
use libfuzzer_sys::{fuzz_crossover, fuzz_mutator, fuzz_target};

/// The binding the flows go through, compiled into the target.
const BINDING: &str = include_str!("../../bindings/clinic.toml");

/// Another binding file of the same service to go through instead (the
/// clinic's FHIR face: `bindings/clinic-fhir.toml`), read at start-up.
const BINDING_ENV: &str = "CHAPERONE_FUZZ_BINDING";

/// One service per fuzzing process, reset before every run.
static FLOWS: LazyLock<Mutex<Flows<Clinic>>> = LazyLock::new(|| {
    let binding = match std::env::var_os(BINDING_ENV) {
        Some(path) => Binding::load(std::path::Path::new(&path)),
        None => Binding::parse(BINDING, "bindings/clinic.toml"),
    }
    .unwrap_or_else(|error| {
        eprintln!("error: {BINDING_ENV}: {error}");
        std::process::exit(2);
    });
    let faults = faults_from_env();
    let expect = if faults.is_empty() {
        Expect::Correct
    } else {
        Expect::Faulty
    };
    Mutex::new(Flows::new(Clinic::new(&faults), binding, expect))
});

fn flows() -> MutexGuard<'static, Flows<Clinic>> {
    FLOWS.lock().unwrap_or_else(PoisonError::into_inner)
}

fuzz_target!(|flow: Flow| {
    if let FlowOutcome::Failed(message) = flows().run(&flow) {
        panic!("{message} (faults: {})", faults_from_env());
    }
});

// Whole-action edits: every mutant is a flow of whole 3-byte actions.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    let limits = flows().limits();
    mutate(data, size, max_size, seed, limits)
});

fuzz_crossover!(|data1: &[u8], data2: &[u8], out: &mut [u8], seed: u32| {
    let limits = flows().limits();
    crossover(data1, data2, out, seed, limits)
});
