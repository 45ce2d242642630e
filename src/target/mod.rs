//! Targets: where the service under test runs, hidden behind one type.
//!
//! - `embedded` (the default): the reference clinic in-process on 127.0.0.1
//!   ephemeral ports, a fresh one for every case, with the chosen faults.
//! - a URL: an already running deployment; cases share it and isolate
//!   themselves by registering fresh patients.
//!
//! Dropping a [`CaseTarget`] tears down whatever it started.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use clinic::FaultSet;

use crate::driver::{ClinicRest, RecordingBook, TargetError, clinic_rest};
use crate::model::payload::CaseTag;

/// Which target to run against, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// The reference clinic, in-process.
    Embedded,
    /// A running clinic at this base URL.
    Url(String),
}

/// A usage error in naming a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetSpecError(String);

impl std::str::FromStr for TargetSpec {
    type Err = TargetSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "embedded" {
            return Ok(TargetSpec::Embedded);
        }
        let error = |why: &str| {
            TargetSpecError(format!(
                "{why}; expected `embedded` or a URL like http://127.0.0.1:8080"
            ))
        };
        if s.starts_with("https://") {
            return Err(error(
                "https is not supported (the harness is built without TLS); use http:// on loopback",
            ));
        }
        let Some(rest) = s.strip_prefix("http://") else {
            // Not echoed: the text might be anything, a secret included.
            return Err(error("unknown target"));
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(error("the URL has no host"));
        }
        if authority.contains('@') {
            // Credentials would be written into scenario files and reports.
            return Err(error(
                "the URL carries credentials (user@host), which would end up in scenario files and reports",
            ));
        }
        Ok(TargetSpec::Url(s.trim_end_matches('/').to_string()))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Embedded => f.write_str("embedded"),
            TargetSpec::Url(url) => f.write_str(url),
        }
    }
}

/// A target ready to serve cases: the spec, the faults to plant, one HTTP client.
#[derive(Debug, Clone)]
pub struct Target {
    spec: TargetSpec,
    faults: FaultSet,
    client: reqwest::Client,
    /// Tags for cases on a shared service: random per process, then counting,
    /// so no two cases (of this run or another) send the same canaries.
    next_tag: Arc<AtomicU32>,
}

/// The service for one case. Dropping it stops an embedded clinic.
pub struct CaseTarget {
    base: String,
    tag: CaseTag,
    client: reqwest::Client,
    embedded: Option<clinic::RunningClinic>,
}

impl Target {
    /// A target; `faults` only applies to the embedded clinic (a URL target's
    /// faults are whatever its operator started it with).
    pub fn new(spec: TargetSpec, faults: FaultSet) -> Target {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Target {
            spec,
            faults,
            client: clinic_rest::http_client(),
            next_tag: Arc::new(AtomicU32::new(hasher.finish() as u32)),
        }
    }

    /// The spec this target was made from.
    pub fn spec(&self) -> &TargetSpec {
        &self.spec
    }

    /// The faults planted in an embedded clinic.
    pub fn faults(&self) -> &FaultSet {
        &self.faults
    }

    /// Check the target answers before spending any cases on it.
    pub async fn probe(&self) -> Result<(), TargetError> {
        match &self.spec {
            TargetSpec::Embedded => Ok(()),
            TargetSpec::Url(url) => clinic_rest::health(&self.client, url).await,
        }
    }

    /// Get the service for one case: a fresh embedded clinic, or the shared URL.
    pub async fn open_case(&self) -> Result<CaseTarget, TargetError> {
        match &self.spec {
            TargetSpec::Embedded => {
                let config = clinic::Config {
                    faults: self.faults.clone(),
                    db_path: None,
                };
                let running = clinic::start(config)
                    .await
                    .map_err(|e| TargetError::Missing {
                        action: "start embedded clinic",
                        what: e.to_string(),
                    })?;
                Ok(CaseTarget {
                    base: running.api_url(),
                    // A fresh clinic per case: nothing of another case is there.
                    tag: CaseTag::default(),
                    client: self.client.clone(),
                    embedded: Some(running),
                })
            }
            TargetSpec::Url(url) => Ok(CaseTarget {
                base: url.clone(),
                tag: CaseTag(self.next_tag.fetch_add(1, Ordering::Relaxed)),
                client: self.client.clone(),
                embedded: None,
            }),
        }
    }
}

impl CaseTarget {
    /// A fresh driver (no sessions) for this case's service.
    pub fn driver(&self) -> ClinicRest {
        ClinicRest::new(self.client.clone(), self.base.clone()).with_tag(self.tag)
    }

    /// The tag that makes this case's canaries its own.
    pub fn tag(&self) -> CaseTag {
        self.tag
    }

    /// A fresh driver (no sessions) that learns and names recordings in a
    /// shared `book`: concurrent patients each get one (soak, grouped replay).
    pub fn driver_sharing(&self, book: RecordingBook) -> ClinicRest {
        ClinicRest::sharing(self.client.clone(), self.base.clone(), book).with_tag(self.tag)
    }

    /// Stop an embedded clinic and wait for it; a no-op for a URL.
    pub async fn close(mut self) {
        if let Some(running) = self.embedded.take() {
            running.shutdown().await;
        }
    }
}
