//! `flows`: fuzz bytes decode (through `arbitrary`, [`chaperone::model::Flow`])
//! into a valid sequence of patient steps, run against a fresh in-process
//! clinic through the same driver, model and oracles as `chaperone run`.
//!
//! Property: the clinic keeps the privacy property. With no fault planted
//! (`CHAPERONE_FUZZ_FAULTS` unset) any violation, divergence from the model
//! or clinic failure is a crash; with faults planted, any privacy violation
//! is. Turn a crash into a scenario with `chaperone import-fuzz ARTIFACT`.

#![no_main]

use std::sync::LazyLock;

use chaperone::model::{Flow, Limits};
use chaperone::oracle::Canaries;
use chaperone_fuzz::{FlowOutcome, faults_from_env, flows};
use clinic::FaultSet;
use libfuzzer_sys::fuzz_target;

static FAULTS: LazyLock<FaultSet> = LazyLock::new(faults_from_env);
static CANARIES: LazyLock<Canaries> =
    LazyLock::new(|| Canaries::new(Limits::default().patients_max));

fuzz_target!(|flow: Flow| {
    if let FlowOutcome::Failed(message) = flows(&flow, &FAULTS, &CANARIES) {
        panic!("{message} (faults: {})", *FAULTS);
    }
});
