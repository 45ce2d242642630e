//! How the api service reaches the media service: over HTTP, or in-process.
//!
//! [`MediaLink`] hides the transport. Over HTTP it is a `reqwest` client and a
//! base URL; in-process it calls the media [`Router`] directly with
//! `tower::ServiceExt::oneshot`, so fuzzing needs no sockets. Either way the api
//! service sees the same requests and the same [`MediaError`]s.

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt as _;

use crate::StartError;

/// How long one call to the media service may take before the api service gives
/// up and answers 502. Generous: media calls are local and small.
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(10);

/// The api service's connection to the media service.
#[derive(Clone, Debug)]
pub enum MediaLink {
    /// The media service at `base_url` (`http://host:port`, no trailing slash).
    Http {
        /// Scheme, host and port of the media service.
        base_url: String,
        /// The client every media call goes through.
        client: reqwest::Client,
    },
    /// The media service's router, called in-process.
    InProcess(Router),
}

/// Why a media call failed, as the api service needs to tell it apart.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MediaError {
    /// The media service does not have the object.
    #[error("media object not found")]
    NotFound,
    /// Unreachable, timed out, or answered something unexpected.
    #[error("media service unavailable: {0}")]
    Unavailable(String),
}

impl MediaLink {
    /// A link to the media service at `base_url` (`http://host:port`), with a
    /// client that ignores proxy settings and times out after [`MEDIA_TIMEOUT`].
    pub fn http(base_url: &str) -> Result<MediaLink, StartError> {
        let invalid = |reason: &str| StartError::MediaUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let url = reqwest::Url::parse(base_url).map_err(|err| invalid(&err.to_string()))?;
        if url.scheme() != "http" {
            return Err(invalid("the scheme must be http"));
        }
        if url.host_str().is_none() {
            return Err(invalid("the url has no host"));
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(MEDIA_TIMEOUT)
            .build()
            .map_err(StartError::MediaClient)?;
        Ok(MediaLink::Http {
            base_url: base_url.trim_end_matches('/').to_owned(),
            client,
        })
    }

    /// Opens a new, empty media object; returns its media id.
    pub(crate) async fn open(&self) -> Result<String, MediaError> {
        let (status, body) = self.send(Method::POST, "/media", Bytes::new()).await?;
        if status != StatusCode::CREATED {
            return Err(unexpected(status));
        }
        #[derive(serde::Deserialize)]
        struct Opened {
            media_id: String,
        }
        let opened: Opened = serde_json::from_slice(&body)
            .map_err(|err| MediaError::Unavailable(format!("bad open response: {err}")))?;
        Ok(opened.media_id)
    }

    /// Appends `chunk` to the object.
    pub(crate) async fn append(&self, media_id: &str, chunk: Bytes) -> Result<(), MediaError> {
        let path = format!("/media/{media_id}/append");
        expect_no_content(self.send(Method::POST, &path, chunk).await?)
    }

    /// Marks the object finished. An unknown object is not an error here: the
    /// api service closes only objects it owns, and one already gone is closed
    /// enough.
    pub(crate) async fn close(&self, media_id: &str) -> Result<(), MediaError> {
        let path = format!("/media/{media_id}/close");
        match expect_no_content(self.send(Method::POST, &path, Bytes::new()).await?) {
            Err(MediaError::NotFound) => Ok(()),
            other => other,
        }
    }

    /// Opens an object and closes it at once: an empty, finished object.
    pub(crate) async fn open_closed(&self) -> Result<String, MediaError> {
        let media_id = self.open().await?;
        if let Err(err) = self.close(&media_id).await {
            self.discard(&media_id).await;
            return Err(err);
        }
        Ok(media_id)
    }

    /// The object's bytes.
    pub(crate) async fn fetch(&self, media_id: &str) -> Result<Bytes, MediaError> {
        let path = format!("/media/{media_id}");
        let (status, body) = self.send(Method::GET, &path, Bytes::new()).await?;
        match status {
            StatusCode::OK => Ok(body),
            StatusCode::NOT_FOUND => Err(MediaError::NotFound),
            other => Err(unexpected(other)),
        }
    }

    /// Deletes the object.
    pub(crate) async fn delete(&self, media_id: &str) -> Result<(), MediaError> {
        let path = format!("/media/{media_id}");
        expect_no_content(self.send(Method::DELETE, &path, Bytes::new()).await?)
    }

    /// Best-effort delete of an object the api service opened but will not use
    /// (its request failed after the open). A failure leaves an orphan object
    /// that no recording points at, so nobody can read it; it is only logged.
    pub(crate) async fn discard(&self, media_id: &str) {
        match self.delete(media_id).await {
            Ok(()) | Err(MediaError::NotFound) => {}
            Err(err) => eprintln!("clinic: could not discard an unused media object: {err}"),
        }
    }

    /// Whether the media service answers its health check.
    pub(crate) async fn healthy(&self) -> bool {
        matches!(
            self.send(Method::GET, "/healthz", Bytes::new()).await,
            Ok((StatusCode::OK, _))
        )
    }

    /// One request to the media service: its status and whole body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), MediaError> {
        let unavailable = |err: &dyn std::fmt::Display| MediaError::Unavailable(err.to_string());
        match self {
            MediaLink::Http { base_url, client } => {
                let response = client
                    .request(method, format!("{base_url}{path}"))
                    .body(body)
                    .send()
                    .await
                    // Without the URL: it names a media object, and this
                    // message can reach a log.
                    .map_err(|err| unavailable(&err.without_url()))?;
                let status = response.status();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|err| unavailable(&err.without_url()))?;
                Ok((status, bytes))
            }
            MediaLink::InProcess(router) => {
                let request = Request::builder()
                    .method(method)
                    .uri(path)
                    .body(Body::from(body))
                    .map_err(|err| unavailable(&err))?;
                let response = match router.clone().oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                    .await
                    .map_err(|err| unavailable(&err))?;
                Ok((status, bytes))
            }
        }
    }
}

fn expect_no_content((status, _): (StatusCode, Bytes)) -> Result<(), MediaError> {
    match status {
        StatusCode::NO_CONTENT => Ok(()),
        StatusCode::NOT_FOUND => Err(MediaError::NotFound),
        other => Err(unexpected(other)),
    }
}

fn unexpected(status: StatusCode) -> MediaError {
    MediaError::Unavailable(format!("unexpected status {status}"))
}
