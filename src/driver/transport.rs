//! How the driver's requests reach a service: real HTTP through reqwest, or
//! an axum [`Router`] called in-process (fuzzing: no sockets). Either way the
//! same requests go out and the same statuses, headers and bodies come back.
//!
//! Every body is read with a cap: an over-cap body is a target failure, never
//! an allocation. Redirects are never followed, and an absolute URL the
//! service hands out is fetched only if it points at the target's own host
//! or one the binding names (`follow_hosts`).

use axum::Router;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method};
use tower::ServiceExt as _;

use super::TargetError;
use super::http::{read_capped, read_capped_body};

/// The HTTP client every driver of a run shares: no proxy, no redirects, bounded waits.
pub fn http_client() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(3))
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .expect("building an HTTP client with static settings cannot fail")
}

/// Check that a service answers `GET {path}` with 200.
pub async fn health(client: &Client, base: &str, path: &str) -> Result<(), TargetError> {
    let action = "health check";
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .map_err(|e| unreachable(action, &e))?;
    match response.status().as_u16() {
        200 => Ok(()),
        status if status >= 500 => Err(TargetError::ServerError { action, status }),
        status => Err(TargetError::Garbage {
            action,
            what: format!("GET {path} answered {status}, expected 200"),
        }),
    }
}

pub(crate) fn unreachable(action: &'static str, error: &reqwest::Error) -> TargetError {
    let reason = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "connection refused or failed".to_string()
    } else {
        "request failed".to_string()
    };
    TargetError::Unreachable { action, reason }
}

/// Where requests go.
#[derive(Clone)]
pub enum Transport {
    /// Real HTTP to the service at `base` (`http://127.0.0.1:PORT`, no trailing slash).
    Http {
        /// The shared client.
        client: Client,
        /// Scheme, host and port.
        base: String,
    },
    /// The service's router, called in-process.
    InProcess(Router),
}

/// A request ready to send.
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// A path and query (`/v1/x?a=b`), or an absolute URL already checked.
    pub target: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Content type and bytes.
    pub body: Option<(String, Vec<u8>)>,
    /// The most body bytes to read back.
    pub cap: usize,
}

/// A response.
pub struct Incoming {
    /// Status.
    pub status: u16,
    /// Headers.
    pub headers: HeaderMap,
    /// Body, at most the cap.
    pub bytes: Vec<u8>,
}

impl Incoming {
    /// Whether the body says it is JSON.
    pub fn is_json(&self) -> bool {
        self.headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("json"))
    }
}

/// The host (and port) of an absolute `http://` URL.
pub fn host_of(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty() && !authority.contains('@')).then_some(authority)
}

fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split(']').next().map_or(authority, |h| h);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

impl Transport {
    /// Turn a URL the service handed out into a request target, if the
    /// harness may follow it: a path on the target, or an absolute URL on the
    /// target's own host and port or on one of `follow_hosts` (a host, or a
    /// host and port).
    pub fn resolve(&self, url: &str, follow_hosts: &[String]) -> Result<String, String> {
        if url.starts_with('/') && !url.starts_with("//") {
            return Ok(url.to_string());
        }
        let authority = host_of(url).ok_or("a link that is not an http:// URL or a path")?;
        match self {
            Transport::InProcess(_) => {
                // In-process there is only one service: keep the path.
                let path_start = url["http://".len()..]
                    .find(['/', '?'])
                    .map_or(url.len(), |i| i + "http://".len());
                let path = &url[path_start..];
                Ok(if path.is_empty() {
                    "/".to_string()
                } else {
                    path.to_string()
                })
            }
            Transport::Http { base, .. } => {
                // The target's own host and port; another port of the same
                // host is another service, followed only when named.
                let host = host_name(authority);
                if host_of(base) == Some(authority)
                    || follow_hosts.iter().any(|h| h == host || h == authority)
                {
                    Ok(url.to_string())
                } else {
                    Err("a link to a host that is neither the target's nor in the binding's `follow_hosts`".to_string())
                }
            }
        }
    }

    /// Send one request and read the answer, at most `cap` body bytes.
    pub async fn send(
        &self,
        action: &'static str,
        request: Outgoing,
    ) -> Result<Incoming, TargetError> {
        let garbage = |what: &str| TargetError::Garbage {
            action,
            what: what.to_string(),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| garbage("a header name that is not valid (check the binding)"))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                garbage("a header value that is not valid (a captured value with a newline?)")
            })?;
            headers.append(name, value);
        }
        let body = request.body.map(|(content_type, bytes)| {
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                headers.insert(CONTENT_TYPE, v);
            }
            bytes
        });
        let cap = request.cap;
        match self {
            Transport::Http { client, base } => {
                let url = if request.target.starts_with("http://") {
                    request.target
                } else {
                    format!("{base}{}", request.target)
                };
                let mut builder = client.request(request.method, url).headers(headers);
                if let Some(bytes) = body {
                    builder = builder.body(bytes);
                }
                let response = builder.send().await.map_err(|e| unreachable(action, &e))?;
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = read_capped(action, response, cap).await?;
                Ok(Incoming {
                    status,
                    headers,
                    bytes,
                })
            }
            Transport::InProcess(router) => {
                let mut builder = axum::http::Request::builder()
                    .method(request.method)
                    .uri(request.target);
                if let Some(h) = builder.headers_mut() {
                    *h = headers;
                }
                let http_request = builder
                    .body(body.map_or_else(axum::body::Body::empty, axum::body::Body::from))
                    .map_err(|_| garbage("a request target that is not a valid URI"))?;
                let response = match router.clone().oneshot(http_request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                let status = response.status().as_u16();
                let headers = response.headers().clone();
                let bytes = read_capped_body(action, response.into_body(), cap).await?;
                Ok(Incoming {
                    status,
                    headers,
                    bytes,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_followed_only_to_the_target_or_named_hosts() {
        // Goal: a hostile service cannot send the harness elsewhere.
        let http = Transport::Http {
            client: http_client(),
            base: "http://127.0.0.1:8080".to_string(),
        };
        assert_eq!(http.resolve("/a?b", &[]).unwrap(), "/a?b");
        assert!(http.resolve("http://127.0.0.1:8080/x?y", &[]).is_ok());
        assert!(http.resolve("http://127.0.0.1:9999/x", &[]).is_err());
        assert!(
            http.resolve("http://127.0.0.1:9999/x", &["127.0.0.1:9999".into()])
                .is_ok()
        );
        assert!(http.resolve("http://10.0.0.1/x", &[]).is_err());
        assert!(http.resolve("http://user@127.0.0.1/x", &[]).is_err());
        assert!(http.resolve("//evil.example/x", &[]).is_err());
        assert!(http.resolve("https://127.0.0.1/x", &[]).is_err());
        assert!(
            http.resolve("http://media:8081/x", &["media".into()])
                .is_ok()
        );
    }
}
