//! The operations both HTTP shapes of the api service share: `/v1` ([`crate::api`])
//! and `/fhir` ([`crate::fhir`]) call these, so every planted fault that lives
//! in an operation (and not in one shape's wire format) is written once.
//!
//! Each operation takes the authenticated caller's patient id and internal
//! ids, talks to the store and the media service, and returns plain data or
//! an [`ApiError`]; the callers only translate ids and render bodies.
//!
//! **Invariants.** The media-then-commit protocol of [`crate::api`] holds
//! here: validate, call the media service, validate again while committing,
//! and discard media opened for a refused commit. The faults planted in this
//! file are `upgrade-shared-slot`, `upgrade-phantom` (both in
//! [`ApiState::upgrade`], the viewer recorded by [`ApiState::list_recordings`]),
//! `history-cache-shared`, `history-page2-unfiltered` (both in
//! [`ApiState::list_recordings`]) and `erasure-leaves-media` (in
//! [`ApiState::erase`]); the others live in the store.

use axum::body::Bytes;

use crate::api::{ApiState, lock};
use crate::db::HistoryItem;
use crate::error::ApiError;
use crate::fault::Fault;
use crate::link::MediaError;

/// Whose recordings a listing shows.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// One patient's recordings (the history view, a FHIR `subject` search).
    Patient(&'a str),
    /// One patient's recordings made on one call (a FHIR `encounter` search).
    Call {
        /// The owner the listing is for.
        patient: &'a str,
        /// The call's internal id.
        call: &'a str,
    },
    /// Every patient's recordings: only a planted fault asks for this
    /// (`fhir-next-link-unscoped`).
    Everyone,
}

/// The key of the `history-cache-shared` cache: the listing's shape and page,
/// but never the patient (that is the bug).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    /// The call filter, if any.
    call: Option<String>,
    /// Items skipped.
    offset: u64,
    /// Items asked for.
    limit: u32,
}

/// One page of a recording listing, as the store returned it.
#[derive(Clone, Debug)]
pub(crate) struct RecordingPage {
    /// How many recordings match (the owner's own, whatever the page shows).
    pub(crate) total: i64,
    /// The page, oldest first.
    pub(crate) items: Vec<HistoryItem>,
}

impl ApiState {
    /// Starts an audio call of the caller's appointment, recording from the
    /// start; returns `(call_id, recording_id)`.
    pub(crate) async fn start_call(
        &self,
        patient: &str,
        appointment_id: &str,
    ) -> Result<(String, String), ApiError> {
        self.db(|db| db.check_start_call(patient, appointment_id))?;
        let media_id = self.media().open().await?;
        let started = self.db(|db| db.start_call(patient, appointment_id, &media_id));
        match started {
            Ok(ids) => Ok(ids),
            Err(err) => {
                self.media().discard(&media_id).await;
                Err(err)
            }
        }
    }

    /// Upgrades the caller's active audio call to video; returns the new
    /// video recording's id.
    pub(crate) async fn upgrade(&self, patient: &str, call_id: &str) -> Result<String, ApiError> {
        let call = self.db(|db| db.check_upgrade(patient, call_id))?;
        let shared_slot = self.has(Fault::UpgradeSharedSlot);
        if shared_slot {
            // The bug: "the call being upgraded" lives in one slot for the whole
            // service while the handler awaits the media service below.
            *lock(&self.inner.upgrade_slot) = Some(call_id.to_owned());
        }
        let media = self.media();
        let video_media = media.open().await?;
        // Closing is idempotent, so closing before the commit is safe even if the
        // commit is refused: the call was ended or upgraded meanwhile, and either
        // closed this audio media too.
        if let Err(err) = media.close(&call.current_media_id).await {
            media.discard(&video_media).await;
            return Err(err.into());
        }
        // Read back after the awaits: a concurrent upgrade may have overwritten it.
        let slot_call = if shared_slot {
            lock(&self.inner.upgrade_slot).clone()
        } else {
            None
        };
        let viewer = if self.has(Fault::UpgradePhantom) {
            lock(&self.inner.last_history_viewer).clone()
        } else {
            None
        };
        let phantom_media = match viewer {
            Some(_) => match media.open_closed().await {
                Ok(media_id) => Some(media_id),
                Err(err) => {
                    media.discard(&video_media).await;
                    return Err(err.into());
                }
            },
            None => None,
        };
        let phantom = viewer.as_deref().zip(phantom_media.as_deref());
        let faults = self.faults();
        let upgraded = self.db(|db| {
            db.upgrade(
                patient,
                call_id,
                &video_media,
                phantom,
                slot_call.as_deref(),
                faults,
            )
        });
        match upgraded {
            Ok(upgraded) => {
                if let Some(unused) = upgraded.unused_phantom_media {
                    media.discard(&unused).await;
                }
                Ok(upgraded.recording_id)
            }
            Err(err) => {
                media.discard(&video_media).await;
                if let Some(phantom_media) = phantom_media {
                    media.discard(&phantom_media).await;
                }
                Err(err)
            }
        }
    }

    /// Appends a media chunk to the caller's active call's current recording;
    /// returns how many bytes were received.
    pub(crate) async fn send_media(
        &self,
        patient: &str,
        call_id: &str,
        chunk: Bytes,
    ) -> Result<usize, ApiError> {
        let faults = self.faults();
        let (recording_id, media_id) = self.db(|db| db.route_media(patient, call_id, faults))?;
        let received = chunk.len();
        match self.media().append(&media_id, chunk).await {
            Ok(()) => {}
            // The target's media is gone: it was erased after the call moved on.
            Err(MediaError::NotFound) => {
                return Err(ApiError::conflict("recording no longer accepts media"));
            }
            Err(err) => return Err(err.into()),
        }
        self.db(|db| db.add_bytes(&recording_id, received))?;
        Ok(received)
    }

    /// Ends the caller's active call, finishing its current recording.
    pub(crate) async fn end_call(&self, patient: &str, call_id: &str) -> Result<(), ApiError> {
        let call = self.db(|db| db.check_end(patient, call_id))?;
        let media = self.media();
        media.close(&call.current_media_id).await?;
        let finished_media = self.db(|db| db.end_call(patient, call_id))?;
        if finished_media != call.current_media_id {
            // Upgraded between the check and the commit: close the video media too.
            // The recording is already finished in the store, which is what counts.
            if let Err(err) = media.close(&finished_media).await {
                eprintln!("clinic: could not close a finished recording's media: {err}");
            }
        }
        Ok(())
    }

    /// One page of recordings, erased ones excepted, oldest first, as
    /// `viewer` lists them. Every listing of either shape comes through here,
    /// so the listing faults apply to both.
    pub(crate) fn list_recordings(
        &self,
        viewer: &str,
        scope: Scope<'_>,
        offset: u64,
        limit: u32,
    ) -> Result<RecordingPage, ApiError> {
        if self.has(Fault::UpgradePhantom) {
            *lock(&self.inner.last_history_viewer) = Some(viewer.to_owned());
        }
        let key = match scope {
            Scope::Patient(_) => Some(CacheKey {
                call: None,
                offset,
                limit,
            }),
            Scope::Call { call, .. } => Some(CacheKey {
                call: Some(call.to_owned()),
                offset,
                limit,
            }),
            Scope::Everyone => None,
        }
        .filter(|_| self.has(Fault::HistoryCacheShared));
        if let Some(key) = &key {
            // The bug: the key has no patient in it.
            if let Some(hit) = lock(&self.inner.history_cache).get(key) {
                return Ok(hit.clone());
            }
        }
        let (owner, call) = match scope {
            Scope::Patient(patient) => (Some(patient), None),
            Scope::Call { patient, call } => (Some(patient), Some(call)),
            Scope::Everyone => (None, None),
        };
        // `history-page2-unfiltered`: pages after the first drop the owner
        // filter (the total stays the owner's own).
        let list_owner = owner.filter(|_| !(self.has(Fault::HistoryPage2Unfiltered) && offset > 0));
        // `total-counts-everyone`: the count of a patient's listing drops the
        // owner filter (the items stay the owner's own).
        let count_owner =
            owner.filter(|_| !(self.has(Fault::TotalCountsEveryone) && call.is_none()));
        let (total, items) =
            self.db(|db| db.recordings(count_owner, list_owner, call, offset, limit))?;
        let page = RecordingPage { total, items };
        if let Some(key) = key {
            lock(&self.inner.history_cache).insert(key, page.clone());
        }
        Ok(page)
    }

    /// The bytes of a recording the caller may play back, with its kind
    /// (`audio` or `video`).
    pub(crate) async fn play(
        &self,
        patient: &str,
        recording_id: &str,
    ) -> Result<(String, Bytes), ApiError> {
        let faults = self.faults();
        let (kind, media_id) = self.db(|db| db.playback(patient, recording_id, faults))?;
        self.fetch(kind, &media_id).await
    }

    /// `binary-outlives-media`: the bytes of the caller's recording by its
    /// `Binary`, erased or not (the `Binary` read checks the owner only).
    pub(crate) async fn play_binary(
        &self,
        patient: &str,
        recording_id: &str,
    ) -> Result<(String, Bytes), ApiError> {
        let mut faults = self.faults().clone();
        if faults.contains(Fault::BinaryOutlivesMedia) {
            faults.insert(Fault::ErasureLeavesMedia);
        }
        let (kind, media_id) = self.db(|db| db.playback(patient, recording_id, &faults))?;
        self.fetch(kind, &media_id).await
    }

    async fn fetch(&self, kind: String, media_id: &str) -> Result<(String, Bytes), ApiError> {
        match self.media().fetch(media_id).await {
            Ok(bytes) => Ok((kind, bytes)),
            // Erased between the lookup and the fetch.
            Err(MediaError::NotFound) => Err(ApiError::not_found("recording not found")),
            Err(err) => Err(err.into()),
        }
    }

    /// Erases the caller's finished recording and deletes its media.
    pub(crate) async fn erase(&self, patient: &str, recording_id: &str) -> Result<(), ApiError> {
        let media_id = self.db(|db| db.erase(patient, recording_id))?;
        if self.has(Fault::ErasureLeavesMedia)
            || self.has(Fault::BinaryOutlivesMedia)
            || self.has(Fault::EraseKeepsStoredMedia)
        {
            // The bug: the row is hidden, the media stays.
            return Ok(());
        }
        match self.media().delete(&media_id).await {
            Ok(()) | Err(MediaError::NotFound) => Ok(()),
            Err(err) => {
                self.db(|db| db.unerase(recording_id))?;
                Err(err.into())
            }
        }
    }
}
