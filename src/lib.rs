//! Chaperone hunts cross-patient privacy leaks in telehealth services.
//!
//! A pure model drives simulated patients through booking, calls, mid-call
//! upgrades to video, media, history views, playback and erasure against a
//! real running service, and after every observation the oracle checks that
//! each patient sees only their own recordings and none of anyone else's
//! bytes. Read the modules in this order:
//!
//! - [`model`]: the pure reference state machine and its step generator.
//! - [`driver`]: the only code that speaks HTTP; steps in, observations out.
//! - [`oracle`]: one check per clause of the privacy property.
//! - [`runner`]: `check` (search + shrinking), `replay`, `gate` and `soak` (many
//!   concurrent patients); verdicts.
//! - [`target`]: embedded clinic, containers or a URL, behind one type.
//! - [`scenario`]: reading and writing scenario files.
//! - [`import`]: a `flows` fuzz crash input into a scenario file.
//! - [`report`]: console text, JSON and JUnit XML.
//! - [`cli`]: the `chaperone` command line.

pub mod binding;
pub mod cli;
pub mod driver;
pub mod import;
pub mod model;
pub mod oracle;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod target;
