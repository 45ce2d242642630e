//! `clinic_requests`: arbitrary HTTP requests (method, path, headers, body,
//! whose token) against the clean clinic in-process, where two patients
//! have bookings, calls and recordings.
//!
//! Properties (see `chaperone_fuzz::requests`): never a 5xx or a panic,
//! never another patient's canary, id or token in a response, never a
//! success for a request naming another patient's object, nothing served
//! without a session but registration, health and the spec.

#![no_main]

use chaperone_fuzz::requests;
use clinic::FaultSet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let outcome = requests::run(data, &FaultSet::default());
    if let Some(failure) = outcome.failure {
        panic!("{failure}");
    }
});
