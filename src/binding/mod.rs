//! Bindings: a service's HTTP API described as data (work in progress).

pub mod file;
