//! Targets: where the service under test runs, hidden behind one type.
//!
//! - `embedded` (the default): the reference clinic in-process on 127.0.0.1
//!   ephemeral ports, a fresh one for every case, with the chosen faults.
//! - `containers` or a target file (`FILE.toml`): containerised services
//!   started once for the whole run ([`containers::Environment`]), with the
//!   faults passed as environment; removed by [`Target::shutdown`] or on drop.
//! - a URL: an already running deployment.
//!
//! **Isolation without restarts.** A shared target (containers, URL) serves
//! every case of a run. Each case registers fresh patients and, when it ends,
//! cleans up after itself through the driver ([`crate::driver::Driver::clean_up`]):
//! ends its calls and erases the recordings it saw created (never an id a
//! listing showed: a leaky service lists other users' recordings), so what an
//! earlier case left cannot show up in a later case's observations. For the
//! reference clinic with any one fault planted that is sufficient (its views
//! are per patient or skip erased recordings, its lists are ordered by
//! sequence); `tests/it/containers.rs` shows every fault's finding replays on a
//! fresh clinic, and that without the clean-up it would not. With several
//! faults at once it may not be: e.g. `upgrade-phantom` can hand a stray
//! recording to an earlier case's patient after its clean-up, which
//! `history-page2-unfiltered` then shows to everyone.
//! The embedded clinic is fresh per case and needs none of this.
//!
//! [`Target`] is `Send + Sync` and cheap to share by reference: concurrent
//! cases may call [`Target::open_case`] at once.
//!
//! Dropping a [`CaseTarget`] tears down whatever it started.

pub mod containers;
pub mod images;
pub mod services;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use clinic::FaultSet;
use tokio::sync::OnceCell;

use crate::binding::Binding;
use crate::driver::http::BodyLimits;
use crate::driver::{
    BindingDriver, RecordingBook, Store, StoreSpec, TargetError, Transport, health, http_client,
};
use crate::model::payload::CaseTag;
pub use containers::{Environment, StartError};
pub use services::{ServicesError, ServicesFile};

/// Which target to run against, as the user named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// The reference clinic, in-process.
    Embedded,
    /// A running clinic at this base URL.
    Url(String),
    /// Containerised services: `containers` (the built-in clinic file) or a target file.
    Containers(Arc<ServicesFile>),
}

/// A usage error in naming a target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetSpecError {
    /// Not a target name at all.
    #[error(
        "{0}; expected `embedded`, `containers`, a target file FILE.toml or a URL like http://127.0.0.1:8080"
    )]
    Unknown(String),
    /// A target file that does not validate.
    #[error("{0}")]
    File(#[from] ServicesError),
}

impl std::str::FromStr for TargetSpec {
    type Err = TargetSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "embedded" {
            Ok(TargetSpec::Embedded)
        } else if s == "containers" {
            Ok(TargetSpec::Containers(Arc::new(ServicesFile::clinic())))
        } else if s.ends_with(".toml") {
            Ok(TargetSpec::Containers(Arc::new(ServicesFile::read(
                Path::new(s),
            )?)))
        } else if s.starts_with("https://") {
            Err(TargetSpecError::Unknown(
                "https is not supported (the harness is built without TLS); use http:// on loopback".into(),
            ))
        } else if let Some(rest) = s.strip_prefix("http://") {
            let authority = rest.split('/').next().unwrap_or_default();
            if authority.is_empty() {
                return Err(TargetSpecError::Unknown("the URL has no host".into()));
            }
            if authority.contains('@') {
                // Credentials would be written into scenario files and reports.
                return Err(TargetSpecError::Unknown(
                    "the URL carries credentials (user@host), which would end up in scenario files and reports".into(),
                ));
            }
            Ok(TargetSpec::Url(s.trim_end_matches('/').to_string()))
        } else {
            // Not echoed: the text might be anything, a secret included.
            Err(TargetSpecError::Unknown("unknown target".into()))
        }
    }
}

impl TargetSpec {
    /// The target a scenario file records, as information only: nothing is
    /// read, started or called. A target file is named, not opened (it keeps
    /// the built-in clinic's services as a placeholder; replay and gate never
    /// run a scenario against its recorded target).
    pub fn recorded(s: &str) -> Result<TargetSpec, TargetSpecError> {
        if s.ends_with(".toml") {
            let mut file = ServicesFile::clinic();
            file.source = s.to_string();
            return Ok(TargetSpec::Containers(Arc::new(file)));
        }
        s.parse()
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Embedded => f.write_str("embedded"),
            TargetSpec::Url(url) => f.write_str(url),
            TargetSpec::Containers(file) => f.write_str(&file.source),
        }
    }
}

impl TargetSpec {
    /// Whether one service serves every case of a run (so cases clean up after themselves).
    pub fn is_shared(&self) -> bool {
        !matches!(self, TargetSpec::Embedded)
    }

    /// Whether `--fault` can be planted in this target.
    pub fn plants_faults(&self) -> bool {
        match self {
            TargetSpec::Embedded => true,
            TargetSpec::Url(_) => false,
            TargetSpec::Containers(file) => file.takes_faults(),
        }
    }
}

/// A target ready to serve cases: the spec, the faults to plant, one HTTP
/// client, and for containers the environment, started on first use.
#[derive(Debug, Clone)]
pub struct Target {
    spec: TargetSpec,
    faults: FaultSet,
    client: reqwest::Client,
    binding: Arc<Binding>,
    started: Arc<OnceCell<Started>>,
    /// Tags for cases on a shared service: random per process, then counting,
    /// so no two cases (of this run or another) send the same canaries.
    next_tag: Arc<AtomicU32>,
    /// How large a response body may be (over a cap is a target failure).
    limits: BodyLimits,
}

/// A started containers environment and its API's URL.
#[derive(Debug)]
struct Started {
    api_url: String,
    /// The store service's URL, if the file names one.
    store_url: Option<String>,
    environment: Mutex<Option<Environment>>,
}

// Concurrent runners (soak) share one `Target` by reference across tasks.
const _: fn() = || {
    fn shareable<T: Send + Sync + Clone>() {}
    shareable::<Target>();
};

/// Why a target could not be made ready.
#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    /// The containers would not start.
    #[error("{0}")]
    Start(#[from] StartError),
    /// The target does not answer its health check.
    #[error("{0}")]
    Unhealthy(#[from] TargetError),
}

impl ReadyError {
    /// Exit code: 2 for a set-up the user must fix, 3 for a failing target.
    pub fn exit_code(&self) -> u8 {
        match self {
            ReadyError::Start(e) => e.exit_code(),
            ReadyError::Unhealthy(_) => 3,
        }
    }
}

/// The service for one case. Dropping it stops an embedded clinic.
pub struct CaseTarget {
    base: String,
    tag: CaseTag,
    client: reqwest::Client,
    binding: Arc<Binding>,
    limits: BodyLimits,
    embedded: Option<clinic::RunningClinic>,
    shared: bool,
    /// The store the target file names: its base URL and how to list it.
    store: Option<(String, StoreSpec)>,
}

impl Target {
    /// A target; `faults` are planted in the embedded clinic or passed to
    /// containers (a URL target's faults are whatever its operator started it with).
    pub fn new(spec: TargetSpec, faults: FaultSet) -> Target {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Target {
            spec,
            faults,
            client: http_client(),
            binding: Arc::new(Binding::clinic()),
            started: Arc::new(OnceCell::new()),
            next_tag: Arc::new(AtomicU32::new(hasher.finish() as u32)),
            limits: BodyLimits::default(),
        }
    }

    /// The same target driven through `binding` (default: the clinic's `/v1`).
    pub fn with_binding(mut self, binding: Arc<Binding>) -> Target {
        self.binding = binding;
        self
    }

    /// The binding the target is driven through.
    pub fn binding(&self) -> &Arc<Binding> {
        &self.binding
    }

    /// The same target, reading response bodies under `limits`.
    pub fn with_body_limits(mut self, limits: BodyLimits) -> Target {
        self.limits = limits;
        self
    }

    /// The spec this target was made from.
    pub fn spec(&self) -> &TargetSpec {
        &self.spec
    }

    /// The faults planted in an embedded clinic.
    pub fn faults(&self) -> &FaultSet {
        &self.faults
    }

    /// Make the target ready: start containers (once per `Target`), then check
    /// the API answers before spending any cases on it.
    pub async fn ready(&self) -> Result<(), ReadyError> {
        match &self.spec {
            TargetSpec::Embedded => Ok(()),
            TargetSpec::Url(url) => Ok(self.health(url).await?),
            TargetSpec::Containers(_) => {
                let url = self.containers().await?.api_url.clone();
                Ok(self.health(&url).await?)
            }
        }
    }

    /// Check the target answers before spending any cases on it (starting
    /// containers first if needed); any failure is a [`TargetError`].
    pub async fn probe(&self) -> Result<(), TargetError> {
        self.ready().await.map_err(|e| match e {
            ReadyError::Unhealthy(e) => e,
            ReadyError::Start(e) => TargetError::Missing {
                action: "start containers",
                what: e.to_string(),
            },
        })
    }

    /// The binding's health check, if it declares one.
    async fn health(&self, base: &str) -> Result<(), TargetError> {
        match &self.binding.health {
            Some(path) => health(&self.client, base, path).await,
            None => Ok(()),
        }
    }

    async fn containers(&self) -> Result<&Started, StartError> {
        let TargetSpec::Containers(file) = &self.spec else {
            return Err(StartError::Config("not a containers target".into()));
        };
        self.started
            .get_or_try_init(|| async {
                let environment = Environment::start(file, &self.faults).await?;
                Ok(Started {
                    api_url: environment.api_url().to_string(),
                    store_url: environment.store_url().map(str::to_string),
                    environment: Mutex::new(Some(environment)),
                })
            })
            .await
    }

    /// Run `f` on the started containers environment, if there is one.
    pub fn with_environment<T>(&self, f: impl FnOnce(&Environment) -> T) -> Option<T> {
        let started = self.started.get()?;
        let guard = started
            .environment
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.as_ref().map(f)
    }

    /// Remove the containers environment, if one was started. Cases opened
    /// afterwards fail (the target is gone); dropping the last clone of the
    /// target without calling this removes it too.
    pub async fn shutdown(&self) {
        let environment = self.started.get().and_then(|started| {
            started
                .environment
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take()
        });
        if let Some(environment) = environment {
            environment.shutdown().await;
        }
    }

    fn fresh_tag(&self) -> CaseTag {
        CaseTag(self.next_tag.fetch_add(1, Ordering::Relaxed))
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
                // The embedded clinic is the built-in target file's services
                // in-process: its media service is the same store.
                let store = ServicesFile::clinic()
                    .store()
                    .map(|(_, spec)| (running.media_url(), spec.clone()));
                Ok(CaseTarget {
                    base: running.api_url(),
                    // A fresh clinic per case: nothing of another case is there.
                    tag: CaseTag::default(),
                    client: self.client.clone(),
                    binding: self.binding.clone(),
                    limits: self.limits,
                    embedded: Some(running),
                    shared: false,
                    store,
                })
            }
            TargetSpec::Url(url) => Ok(CaseTarget {
                base: url.clone(),
                tag: self.fresh_tag(),
                client: self.client.clone(),
                binding: self.binding.clone(),
                limits: self.limits,
                embedded: None,
                shared: true,
                store: None,
            }),
            TargetSpec::Containers(file) => {
                let started = self.containers().await.map_err(|e| TargetError::Missing {
                    action: "start containers",
                    what: e.to_string(),
                })?;
                let store = started
                    .store_url
                    .clone()
                    .zip(file.store().map(|(_, spec)| spec.clone()));
                Ok(CaseTarget {
                    base: started.api_url.clone(),
                    tag: self.fresh_tag(),
                    client: self.client.clone(),
                    binding: self.binding.clone(),
                    limits: self.limits,
                    embedded: None,
                    shared: true,
                    store,
                })
            }
        }
    }
}

impl CaseTarget {
    /// A fresh driver (no sessions) for this case's service. It also checks
    /// erasure in the store the target file names, if any: a sequential
    /// case can afford the listing; concurrent patients
    /// ([`CaseTarget::driver_sharing`]) do not, since it would change the
    /// timing they are sent with.
    pub fn driver(&self) -> BindingDriver {
        let driver = self.driver_sharing(RecordingBook::new());
        match &self.store {
            Some((base, spec)) => driver.with_store(Store::new(
                Transport::Http {
                    client: self.client.clone(),
                    base: base.clone(),
                },
                spec.clone(),
                self.shared,
            )),
            None => driver,
        }
    }

    /// The tag that makes this case's canaries its own.
    pub fn tag(&self) -> CaseTag {
        self.tag
    }

    /// The binding this case is driven through.
    pub fn binding(&self) -> &Arc<Binding> {
        &self.binding
    }

    /// Whether other cases share this service (so the case must clean up after itself).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// A fresh driver (no sessions) that learns and names recordings in a
    /// shared `book`: concurrent patients each get one (soak, grouped replay).
    pub fn driver_sharing(&self, book: RecordingBook) -> BindingDriver {
        let transport = Transport::Http {
            client: self.client.clone(),
            base: self.base.clone(),
        };
        BindingDriver::new(self.binding.clone(), transport, book)
            .with_tag(self.tag)
            .with_limits(self.limits)
    }

    /// Stop an embedded clinic and wait for it; a no-op for a shared target.
    pub async fn close(mut self) {
        if let Some(running) = self.embedded.take() {
            running.shutdown().await;
        }
    }
}
