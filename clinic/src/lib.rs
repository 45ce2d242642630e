//! The clinic: the reference telehealth service Chaperone tests against.
//!
//! Two HTTP services, as a real deployment has them:
//!
//! - the **api** service ([`api`]): patients, appointments, calls, the history
//!   view, playback and erasure, over JSON with bearer tokens, data in SQLite,
//!   in two shapes: `/v1` (custom REST) and `/fhir` (FHIR R4-shaped, [`fhir`]);
//! - the **media** service ([`media`]): stores recording media; the api service
//!   reaches it through a [`MediaLink`], over HTTP or in-process.
//!
//! Each [`Fault`] plants one real class of privacy bug. With an empty
//! [`FaultSet`] the clinic is correct: a patient never lists, fetches or
//! changes another patient's recordings.
//!
//! Code map:
//!
//! - [`fault`]: `Fault`, `FaultSet`, `UnknownFault`.
//! - [`api`]: `ApiState` and the api router (`/v1`, with `/fhir` nested).
//! - [`fhir`]: the FHIR R4-shaped API under `/fhir` over the same store and
//!   media service; its OpenAPI document and CapabilityStatement.
//! - `service` (private): the operations both shapes share, and with them
//!   the faults that live in an operation; the others live in the store.
//! - [`media`]: `MediaState` and the media router.
//! - [`openapi`]: the api's OpenAPI document, true to its behaviour.
//! - `db` (private): the SQLite schema and queries; ownership is a join;
//!   `db::fhir` maps FHIR logical ids to internal ids.
//! - `link` (private): [`MediaLink`], the api's way to the media service.
//! - `error`, `ids` (private): JSON error bodies; random ids and tokens.
//!
//! [`start`] runs both services on loopback ports for embedding and tests.
//!
//! **Architecture invariant:** the clinic knows nothing of the harness.

#![warn(missing_docs)]

pub mod api;
mod db;
mod error;
pub mod fault;
pub mod fhir;
mod ids;
mod link;
pub mod media;
pub mod openapi;
mod service;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fault::{Fault, FaultSet, UnknownFault};
pub use link::{MEDIA_TIMEOUT, MediaLink};

/// Configuration of one clinic (both services).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// The planted faults; empty for a correct clinic.
    pub faults: FaultSet,
    /// The api service's SQLite file, created if missing; `None` for in-memory.
    pub db_path: Option<PathBuf>,
}

/// Why a clinic, or one of its services, could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The SQLite database could not be opened or given its schema.
    #[error("cannot open the database {path}")]
    Database {
        /// The file, or `:memory:`.
        path: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A listening socket could not be bound or inspected.
    #[error("cannot listen for the {service} service on {addr}")]
    Bind {
        /// `api` or `media`.
        service: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The media service URL is not an `http://host[:port]` URL.
    #[error("invalid media service url {url:?}: {reason}")]
    MediaUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client for the media service could not be built.
    #[error("cannot build the media service client")]
    MediaClient(#[source] reqwest::Error),
}

/// Both services running on local ports. Dropping it signals both to shut down
/// without waiting; [`RunningClinic::shutdown`] waits for them.
#[derive(Debug)]
pub struct RunningClinic {
    /// Where the api service listens.
    api_addr: SocketAddr,
    /// Where the media service listens.
    media_addr: SocketAddr,
    /// The servers, api first, so that shutdown stops the caller before the callee.
    servers: Vec<Server>,
}

/// One spawned server and its shutdown signal.
#[derive(Debug)]
struct Server {
    /// Sending, or dropping, starts a graceful shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serving task; it ends once the shutdown completes.
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Serves `router` on `listener` in a new task until signalled.
    fn spawn(listener: TcpListener, router: axum::Router) -> Server {
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender is a shutdown signal too.
                    let _ = signal.await;
                })
                .await
        });
        Server {
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Signals the server and waits until it has stopped.
    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => eprintln!("clinic: server stopped with an error: {err}"),
                Err(err) => eprintln!("clinic: server task failed: {err}"),
            }
        }
    }
}

impl RunningClinic {
    /// The api service's address.
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The media service's address.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// The api service's base URL, `http://127.0.0.1:PORT`.
    pub fn api_url(&self) -> String {
        url_of(self.api_addr)
    }

    /// The media service's base URL, `http://127.0.0.1:PORT`.
    pub fn media_url(&self) -> String {
        url_of(self.media_addr)
    }

    /// Shuts both services down gracefully (api first) and waits for them.
    pub async fn shutdown(mut self) {
        for server in &mut self.servers {
            server.stop().await;
        }
    }
}

impl Drop for RunningClinic {
    fn drop(&mut self) {
        for server in &mut self.servers {
            if let Some(shutdown) = server.shutdown.take() {
                let _ = shutdown.send(());
            }
        }
    }
}

/// The base URL for reaching `addr`; an unspecified address (`0.0.0.0`, `::`)
/// is reached through loopback.
pub fn url_of(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// Starts media then api on `127.0.0.1`, each on an ephemeral port. Must be
/// called inside a tokio runtime; the servers run as tasks on it.
pub async fn start(config: Config) -> Result<RunningClinic, StartError> {
    let ephemeral = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    start_on(config, ephemeral, ephemeral).await
}

/// Like [`start`], on the given addresses (port 0 for an ephemeral port). The
/// api service reaches the media service over HTTP at its bound address.
pub async fn start_on(
    config: Config,
    api_listen: SocketAddr,
    media_listen: SocketAddr,
) -> Result<RunningClinic, StartError> {
    let (media_listener, media_addr) = bind("media", media_listen).await?;
    let media = Server::spawn(media_listener, media::router(media::MediaState::default()));
    // From here on an early return drops `media`, which shuts it down.
    let link = MediaLink::http(&url_of(media_addr))?;
    let state = api::ApiState::new(&config, link)?;
    let (api_listener, api_addr) = bind("api", api_listen).await?;
    let api = Server::spawn(api_listener, api::router(state));
    Ok(RunningClinic {
        api_addr,
        media_addr,
        servers: vec![api, media],
    })
}

/// Binds a listener for `service`; returns it with the address it got.
pub async fn bind(
    service: &'static str,
    addr: SocketAddr,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        service,
        addr,
        source,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}
