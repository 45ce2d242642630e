//! HTTP mechanics every driver shares, whatever API it speaks: response
//! bodies read under a byte cap, service ids percent-encoded into paths and
//! queries, and the limits that say how large a body may be.
//!
//! **Invariants.** A body over its cap is a [`TargetError`], never an
//! allocation: the cap is checked against `Content-Length` before reading
//! and against the bytes received while reading, so a hostile target that
//! lies about its length or never ends its body costs at most the cap. A
//! service id is data: once encoded it is exactly one path segment or one
//! query value, whatever characters (`/`, `..`, `?`, `#`, `%`) it holds.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{BodyKind, TargetError};

/// The default cap on a JSON (or any non-media) response body: 4 MiB.
pub const JSON_MAX_DEFAULT: usize = 4 * 1024 * 1024;

/// The default cap on a media response body (a playback): 64 MiB.
pub const MEDIA_MAX_DEFAULT: usize = 64 * 1024 * 1024;

/// How large a response body may be before it counts as a target failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Most bytes of a JSON (or error, or any non-media) body.
    pub json_max: usize,
    /// Most bytes of a media body (a recording's playback).
    pub media_max: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            json_max: JSON_MAX_DEFAULT,
            media_max: MEDIA_MAX_DEFAULT,
        }
    }
}

impl BodyLimits {
    /// The cap for a response expected to carry `kind` on success. Error
    /// bodies of a media request are capped as media too: the kind is not
    /// known until the status is, and the larger cap is the safe one.
    pub fn cap(&self, kind: BodyKind) -> usize {
        match kind {
            BodyKind::Media => self.media_max,
            BodyKind::Json | BodyKind::Other => self.json_max,
        }
    }
}

fn over_cap(action: &'static str, cap: usize) -> TargetError {
    TargetError::Garbage {
        action,
        what: format!(
            "a response body over the {cap}-byte cap (raise --json-max-bytes or --media-max-bytes if this is expected)"
        ),
    }
}

fn read_failed(action: &'static str, error: &reqwest::Error) -> TargetError {
    let reason = if error.is_timeout() {
        "timed out while reading the body"
    } else {
        "the response body could not be read"
    };
    TargetError::Unreachable {
        action,
        reason: reason.to_string(),
    }
}

/// Read a reqwest response's body, at most `cap` bytes; more is a
/// [`TargetError`] (and the connection is dropped, not drained).
pub async fn read_capped(
    action: &'static str,
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, TargetError> {
    if let Some(length) = response.content_length()
        && length > cap as u64
    {
        return Err(over_cap(action, cap));
    }
    // Reserve by the promised length only up to the cap: a small lie costs
    // nothing, a large one was refused above.
    let promised = response.content_length().unwrap_or(0).min(cap as u64) as usize;
    let mut bytes = Vec::with_capacity(promised.min(64 * 1024));
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| read_failed(action, &e))?
    {
        if bytes.len() + chunk.len() > cap {
            return Err(over_cap(action, cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Read an axum body (an in-process router's response), at most `cap` bytes.
pub async fn read_capped_body(
    action: &'static str,
    body: axum::body::Body,
    cap: usize,
) -> Result<Vec<u8>, TargetError> {
    axum::body::to_bytes(body, cap)
        .await
        .map(|b| b.to_vec())
        .map_err(|e| {
            // `to_bytes` reports both an over-long body and a failed read as
            // one error type; the length-limit error says so in its source chain.
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if over {
                over_cap(action, cap)
            } else {
                TargetError::Unreachable {
                    action,
                    reason: "the response body could not be read".to_string(),
                }
            }
        })
}

/// Characters left as they are: RFC 3986 unreserved ones. Everything else,
/// `/`, `?`, `#` and `%` included, is percent-encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A service id as exactly one path segment: `../../x` → `..%2F..%2Fx`,
/// `a?b#c` → `a%3Fb%23c`. An id that is empty, `.` or `..` cannot be one
/// segment (URL parsers remove dot-segments even when percent-encoded), so
/// it is a [`TargetError`]: the service handed out an id no request can name.
pub fn encode_path_segment(action: &'static str, id: &str) -> Result<String, TargetError> {
    if matches!(id, "" | "." | "..") {
        return Err(TargetError::Garbage {
            action,
            what: "an id that is empty, `.` or `..` (it cannot be a path segment)".to_string(),
        });
    }
    Ok(utf8_percent_encode(id, UNRESERVED).to_string())
}

/// A value as one query value (`&`, `=`, `+`, `#` and the rest encoded).
pub fn encode_query_value(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_url_syntax_become_one_segment() {
        let cases = [
            ("../../x", "..%2F..%2Fx"),
            ("a?b#c", "a%3Fb%23c"),
            ("100%", "100%25"),
            ("a b/c", "a%20b%2Fc"),
            ("rec-01_a.b~c", "rec-01_a.b~c"),
            ("é", "%C3%A9"),
        ];
        for (id, encoded) in cases {
            assert_eq!(encode_path_segment("test", id).unwrap(), encoded, "{id}");
        }
        for id in ["", ".", ".."] {
            assert!(encode_path_segment("test", id).is_err(), "{id:?}");
        }
        assert_eq!(encode_query_value("a&b=c+d#e"), "a%26b%3Dc%2Bd%23e");
    }

    #[test]
    fn limits_pick_the_cap_by_kind() {
        let limits = BodyLimits {
            json_max: 10,
            media_max: 20,
        };
        assert_eq!(limits.cap(BodyKind::Json), 10);
        assert_eq!(limits.cap(BodyKind::Other), 10);
        assert_eq!(limits.cap(BodyKind::Media), 20);
    }

    #[test]
    fn an_axum_body_over_the_cap_is_a_target_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let over = rt.block_on(read_capped_body(
            "test",
            axum::body::Body::from(vec![0u8; 11]),
            10,
        ));
        assert!(
            matches!(&over, Err(TargetError::Garbage { what, .. }) if what.contains("10-byte cap")),
            "{over:?}"
        );
        let under = rt.block_on(read_capped_body(
            "test",
            axum::body::Body::from(vec![0u8; 10]),
            10,
        ));
        assert_eq!(under.unwrap().len(), 10);
    }
}
