//! A store of recording bytes the harness can list — a target file's
//! `store`, such as the reference clinic's media service. Erasure must reach
//! the bytes, not only hide a row: after an erasure the objects created
//! during the case are fetched and searched for the erased recording's media
//! chunks.
//!
//! **Invariants:** on a shared store, objects that were there before the
//! case's first step are never fetched (they are not ours); at most
//! [`STORE_OBJECTS_MAX`] objects are fetched per erasure, each under the
//! media body cap; nothing is ever written or deleted in a store.

use std::collections::BTreeSet;

use aho_corasick::AhoCorasick;
use reqwest::Method;

use super::http::{BodyLimits, encode_path_segment};
use super::transport::{Outgoing, Transport};
use super::{BodyKind, TargetError};

/// Most objects fetched after one erasure: a case creates a handful.
pub const STORE_OBJECTS_MAX: usize = 256;

/// Longest one search of a store may take (a listing and its fetches): a
/// slow or stalling store makes the case unknown, not an hour long.
pub const STORE_READ_TIME_MAX: std::time::Duration = std::time::Duration::from_secs(60);

/// How long a store may take to delete after the erasure was answered
/// (`grace_ms`), unless its target file says: one second.
pub const STORE_GRACE_DEFAULT_MS: u64 = 1_000;

/// How to list a store and read one object (`store = { list = "/media",
/// ids = "/ids", object = "/media/{id}" }` in a target file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// `GET` path answering a JSON listing of the stored objects.
    pub list: String,
    /// JSON pointer to the array of object ids in the listing (`/ids`;
    /// empty for a bare array).
    pub ids: String,
    /// `GET` path of one object's bytes, with `{id}` where its id goes.
    pub object: String,
    /// How long the store may take to delete after an erasure is answered:
    /// bytes found are looked for once more after it, and reported only if
    /// still there (0: the store deletes before the erasure is answered).
    pub grace_ms: u64,
}

/// A reachable store, for one case's driver. Its searches are time-bound,
/// so it needs a tokio runtime with the time driver enabled.
pub struct Store {
    transport: Transport,
    spec: StoreSpec,
    /// Whether other cases use the same store (so objects there before this
    /// case began are not ours).
    shared: bool,
    /// The objects there before the case's first step, on a shared store.
    before: Option<BTreeSet<String>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("spec", &self.spec)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store at `transport`, described by `spec`.
    pub fn new(transport: Transport, spec: StoreSpec, shared: bool) -> Store {
        Store {
            transport,
            spec,
            shared,
            before: None,
        }
    }

    /// On a shared store, note what is there before the case acts (once).
    pub async fn remember_start(&mut self, limits: &BodyLimits) -> Result<(), TargetError> {
        if self.shared && self.before.is_none() {
            self.before = Some(self.list(limits).await?.into_iter().collect());
        }
        Ok(())
    }

    /// `GET target` from the store, its body read under `cap`. Nothing
    /// but `GET` is ever sent to a store.
    async fn get(
        &self,
        action: &'static str,
        target: String,
        cap: usize,
    ) -> Result<super::transport::Incoming, TargetError> {
        self.transport
            .send(
                action,
                Outgoing {
                    method: Method::GET,
                    target,
                    headers: Vec::new(),
                    body: None,
                    cap,
                },
            )
            .await
    }

    async fn list(&self, limits: &BodyLimits) -> Result<Vec<String>, TargetError> {
        const ACTION: &str = "list the store";
        let answer = self
            .get(ACTION, self.spec.list.clone(), limits.cap(BodyKind::Json))
            .await?;
        let garbage = |what: &str| TargetError::Garbage {
            action: ACTION,
            what: what.to_string(),
        };
        if answer.status >= 500 {
            return Err(TargetError::ServerError {
                action: ACTION,
                status: answer.status,
            });
        }
        if !(200..300).contains(&answer.status) {
            return Err(garbage(&format!(
                "the store listing answered {}; check the target file's `store.list`",
                answer.status
            )));
        }
        let listing: serde_json::Value = serde_json::from_slice(&answer.bytes)
            .map_err(|_| garbage("a store listing that is not JSON"))?;
        let ids = listing
            .pointer(&self.spec.ids)
            .and_then(|v| v.as_array())
            .ok_or_else(|| garbage("a store listing without an array of ids where `ids` points"))?;
        Ok(ids
            .iter()
            .filter_map(|id| match id {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect())
    }

    /// Whether an object created during the case still holds any of
    /// `needles` (the erased recording's media chunks), `grace_ms` after a
    /// first search found one. Objects the store no longer has by the time
    /// they are fetched are gone, as erasure wants.
    pub async fn holds(
        &self,
        needles: &[Vec<u8>],
        limits: &BodyLimits,
    ) -> Result<bool, TargetError> {
        if needles.is_empty() || !self.search(needles, limits).await? {
            return Ok(false);
        }
        if self.spec.grace_ms == 0 {
            return Ok(true);
        }
        tokio::time::sleep(std::time::Duration::from_millis(self.spec.grace_ms)).await;
        self.search(needles, limits).await
    }

    /// One search of the store, within [`STORE_READ_TIME_MAX`].
    async fn search(&self, needles: &[Vec<u8>], limits: &BodyLimits) -> Result<bool, TargetError> {
        tokio::time::timeout(STORE_READ_TIME_MAX, self.search_once(needles, limits))
            .await
            .unwrap_or_else(|_| {
                Err(TargetError::Unreachable {
                    action: "read the store",
                    reason: format!(
                        "listing and reading it took longer than {} s",
                        STORE_READ_TIME_MAX.as_secs()
                    ),
                })
            })
    }

    async fn search_once(
        &self,
        needles: &[Vec<u8>],
        limits: &BodyLimits,
    ) -> Result<bool, TargetError> {
        const ACTION: &str = "read the store";
        let matcher = AhoCorasick::new(needles).map_err(|_| TargetError::Garbage {
            action: ACTION,
            what: "media chunks that cannot be searched for".to_string(),
        })?;
        let mut ids = self.list(limits).await?;
        if let Some(before) = &self.before {
            ids.retain(|id| !before.contains(id));
        }
        ids.sort();
        for id in ids.iter().take(STORE_OBJECTS_MAX) {
            // An id that cannot be one path segment (empty, `.`, `..`) names
            // no object we could have created: skipped, never sent.
            let Ok(segment) = encode_path_segment(ACTION, id) else {
                continue;
            };
            let target = self.spec.object.replace("{id}", &segment);
            let answer = self
                .get(ACTION, target, limits.cap(BodyKind::Media))
                .await?;
            if (200..300).contains(&answer.status) && matcher.is_match(&answer.bytes) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: a hostile or broken store cannot make the harness send a path
    //! it did not mean, read without bound, or pass without judging.
    use super::*;
    use axum::Router;
    use axum::routing::get;

    fn spec() -> StoreSpec {
        StoreSpec {
            list: "/media".into(),
            ids: "/ids".into(),
            object: "/media/{id}".into(),
            grace_ms: 0,
        }
    }

    fn store(router: Router, shared: bool) -> Store {
        Store::new(Transport::InProcess(router), spec(), shared)
    }

    fn needle() -> Vec<Vec<u8>> {
        vec![b"chunk 1 of C1 CANARY".to_vec()]
    }

    #[tokio::test]
    async fn found_bytes_are_reported_and_ids_that_are_url_syntax_never_sent() {
        let router = Router::new()
            .route(
                "/media",
                get(|| async { r#"{"ids": ["", "..", ".", "a/../../x", "ok"]}"# }),
            )
            .route(
                "/media/{id}",
                get(
                    |axum::extract::Path(id): axum::extract::Path<String>| async move {
                        // Only the ids as listed may be asked for, each as one segment.
                        assert!(id == "ok" || id == "a/../../x", "asked for {id:?}");
                        if id == "ok" {
                            "xx chunk 1 of C1 CANARY yy".to_string()
                        } else {
                            String::new()
                        }
                    },
                ),
            );
        let limits = BodyLimits::default();
        assert!(
            store(router, false)
                .holds(&needle(), &limits)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn objects_there_before_the_case_are_not_ours_and_not_read() {
        let router = Router::new()
            .route("/media", get(|| async { r#"{"ids": ["old"]}"# }))
            // Were it read, it would be found: it holds the needle.
            .route("/media/{id}", get(|| async { "chunk 1 of C1 CANARY" }));
        let limits = BodyLimits::default();
        let mut store = store(router, true);
        store.remember_start(&limits).await.unwrap();
        assert!(!store.holds(&needle(), &limits).await.unwrap());
    }

    #[tokio::test]
    async fn a_listing_that_is_not_what_the_file_says_is_a_target_failure() {
        let limits = BodyLimits::default();
        for body in ["not json", r#"{"items": []}"#, r#"{"ids": 7}"#] {
            let router = Router::new().route("/media", get(move || async move { body }));
            let err = store(router, false)
                .holds(&needle(), &limits)
                .await
                .expect_err(body);
            assert!(matches!(err, TargetError::Garbage { .. }), "{body}: {err}");
        }
        let huge = BodyLimits {
            json_max: 64,
            media_max: 64,
        };
        let router = Router::new().route(
            "/media",
            get(|| async { format!(r#"{{"ids": ["{}"]}}"#, "x".repeat(1000)) }),
        );
        let err = store(router, false)
            .holds(&needle(), &huge)
            .await
            .expect_err("over the cap");
        assert!(err.to_string().contains("cap"), "{err}");
    }

    #[tokio::test]
    async fn bytes_deleted_within_the_grace_period_are_not_reported() {
        // A store that deletes a moment after the erasure was answered: the
        // first search finds the bytes, the one after `grace_ms` does not.
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let router = |reads: Arc<AtomicUsize>| {
            Router::new()
                .route("/media", get(|| async { r#"{"ids": ["late"]}"# }))
                .route(
                    "/media/{id}",
                    get(move || {
                        let reads = reads.clone();
                        async move {
                            if reads.fetch_add(1, Ordering::SeqCst) == 0 {
                                "chunk 1 of C1 CANARY"
                            } else {
                                ""
                            }
                        }
                    }),
                )
        };
        let limits = BodyLimits::default();
        let mut late = Store::new(
            Transport::InProcess(router(Arc::new(AtomicUsize::new(0)))),
            spec(),
            false,
        );
        late.spec.grace_ms = 10;
        assert!(!late.holds(&needle(), &limits).await.unwrap());
        let strict = store(router(Arc::new(AtomicUsize::new(0))), false);
        assert!(strict.holds(&needle(), &limits).await.unwrap());
    }
}
