//! Reports: what a run tells people and machines.
//!
//! - [`console`]: the header, the explanation of a finding, the summary.
//! - [`json`]: a machine-readable report.
//! - [`junit`]: JUnit XML for the gate.
//!
//! **Architecture invariant:** reports are built from aliases, clauses and
//! counts only; no service id, token or body can reach them, because the
//! runner never hands them any.

pub mod console;
pub mod json;
pub mod junit;
