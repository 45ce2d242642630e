//! Targets: where the service under test runs, hidden behind one type.
//!
//! - `embedded` (the default): the reference clinic in-process on 127.0.0.1
//!   ephemeral ports, a fresh one for every case, with the chosen faults.
//! - a URL: an already running deployment; cases share it and isolate
//!   themselves by registering fresh patients.
//!
//! Dropping a [`CaseTarget`] tears down whatever it started.

use std::fmt;

use clinic::FaultSet;

use crate::driver::{ClinicRest, RecordingBook, TargetError, clinic_rest};

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
#[error("unknown target `{0}`; expected `embedded` or a URL like http://127.0.0.1:8080")]
pub struct TargetSpecError(String);

impl std::str::FromStr for TargetSpec {
    type Err = TargetSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "embedded" {
            Ok(TargetSpec::Embedded)
        } else if let Some(rest) = s
            .strip_prefix("http://")
            .or_else(|| s.strip_prefix("https://"))
        {
            if rest.is_empty() {
                return Err(TargetSpecError(s.to_string()));
            }
            Ok(TargetSpec::Url(s.trim_end_matches('/').to_string()))
        } else {
            Err(TargetSpecError(s.to_string()))
        }
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
}

/// The service for one case. Dropping it stops an embedded clinic.
pub struct CaseTarget {
    base: String,
    client: reqwest::Client,
    embedded: Option<clinic::RunningClinic>,
}

impl Target {
    /// A target; `faults` only applies to the embedded clinic (a URL target's
    /// faults are whatever its operator started it with).
    pub fn new(spec: TargetSpec, faults: FaultSet) -> Target {
        Target {
            spec,
            faults,
            client: clinic_rest::http_client(),
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
                    client: self.client.clone(),
                    embedded: Some(running),
                })
            }
            TargetSpec::Url(url) => Ok(CaseTarget {
                base: url.clone(),
                client: self.client.clone(),
                embedded: None,
            }),
        }
    }
}

impl CaseTarget {
    /// A fresh driver (no sessions) for this case's service.
    pub fn driver(&self) -> ClinicRest {
        ClinicRest::new(self.client.clone(), self.base.clone())
    }

    /// A fresh driver (no sessions) that learns and names recordings in a
    /// shared `book`: concurrent patients each get one (soak, grouped replay).
    pub fn driver_sharing(&self, book: RecordingBook) -> ClinicRest {
        ClinicRest::sharing(self.client.clone(), self.base.clone(), book)
    }

    /// Stop an embedded clinic and wait for it; a no-op for a URL.
    pub async fn close(mut self) {
        if let Some(running) = self.embedded.take() {
            running.shutdown().await;
        }
    }
}
