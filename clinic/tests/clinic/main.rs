//! The clinic's one integration test binary.
//!
//! Each test starts its own clinic with `clinic::start` (so tests share no
//! state and run in parallel) and drives it over HTTP with `reqwest`. Nothing
//! depends on timing: every request is awaited before the next is sent.

mod clean;
mod cli;
mod faults;
mod fhir_api;
mod fhir_faults;
mod fhir_support;
mod in_process;
mod openapi;
mod startup;
mod support;
