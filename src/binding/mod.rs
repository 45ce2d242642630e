//! Bindings: a service's HTTP API described as data (work in progress).

pub mod file;
pub mod init;
pub mod schema;
