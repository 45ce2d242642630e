//! tinyhealth: a small telehealth service shaped nothing like the reference
//! clinic, for proving that a Chaperone binding can drive any service.
//!
//! Accounts sign up and sign in to a cookie session (`th_session`); their own
//! id appears in paths (`/api/accounts/{account}/…`). A booked visit's id is
//! only in the `Location` header; consultations start on audio, switch to
//! video through a polled operation, take base64 media inside JSON and record
//! "clips". Clips are listed with opaque cursors, per account and per visit;
//! playback is indirect (metadata with a signed download link, which is a
//! bearer capability). There is no cancel. `README.md` beside this crate is
//! the API reference a client reads.
//!
//! Each [`Fault`] plants one real class of privacy bug. With an empty
//! [`FaultSet`] the service is correct: an account never lists, fetches or
//! downloads another account's clips.
//!
//! Code map:
//!
//! - [`fault`]: `Fault`, `FaultSet`, `UnknownFault`.
//! - [`api`]: `AppState`, the router, the cookie session, cursors, signed links.
//! - [`store`]: the in-memory data under one mutex, with every limit; the
//!   faulty branches live here and in `api`.
//! - [`openapi`]: the OpenAPI 3 document served at `/api/openapi.json`.
//! - [`error`]: the `{"error": {"code", "message"}}` body.
//!
//! [`start`] serves on a loopback port for tests and embedding; [`router`]
//! gives the same service for in-process use.
//!
//! **Architecture invariant:** tinyhealth knows nothing of the harness.

#![warn(missing_docs)]
#![recursion_limit = "512"]

pub mod api;
pub mod error;
pub mod fault;
pub mod openapi;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use fault::{Fault, FaultSet, UnknownFault};

/// The service as a router, for in-process use. Absolute links in its answers
/// (status URLs, download links) are built from each request's `Host` header.
pub fn router(faults: FaultSet) -> axum::Router {
    api::router(api::AppState::new(faults, None))
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}")]
pub struct StartError {
    /// The address asked for.
    pub addr: SocketAddr,
    /// What the OS said.
    #[source]
    pub source: std::io::Error,
}

/// A running service. Dropping it signals a shutdown without waiting;
/// [`Running::shutdown`] waits for it.
#[derive(Debug)]
pub struct Running {
    /// Where it listens.
    addr: SocketAddr,
    /// Sending, or dropping, starts a graceful shutdown.
    shutdown: Option<oneshot::Sender<()>>,
    /// The serving task; it ends once the shutdown completes.
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// Shuts the service down gracefully and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => eprintln!("tinyhealth: server stopped with an error: {err}"),
                Err(err) => eprintln!("tinyhealth: server task failed: {err}"),
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
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

/// The loopback address with an ephemeral port: `start(faults, EPHEMERAL)`.
pub const EPHEMERAL: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Serves tinyhealth on `addr` (port 0 for an ephemeral one) in a task on the
/// current tokio runtime. Absolute links use the bound address.
pub async fn start(faults: FaultSet, addr: SocketAddr) -> Result<Running, StartError> {
    let bind_error = |source| StartError { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    let state = api::AppState::new(faults, Some(url_of(local)));
    let router = api::router(state);
    let (shutdown, signal) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // A dropped sender is a shutdown signal too.
                let _ = signal.await;
            })
            .await
    });
    Ok(Running {
        addr: local,
        shutdown: Some(shutdown),
        task: Some(task),
    })
}
