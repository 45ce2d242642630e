//! The api service's store: SQLite through rusqlite, one connection.
//!
//! Tables: `patients`, `appointments`, `consultations` (one per booking),
//! `calls`, `recordings`, and `counters` holding the global sequence number that
//! orders calls and recordings (never the wall clock).
//!
//! **Ownership** of a call or a recording is never stored: it is the patient of
//! the appointment of its consultation (`→ consultations → appointments`).
//! History, playback and erasure all resolve it through that join, which is
//! exactly what lets a re-pointed consultation leak (`rebook-reuses-consultation`).
//!
//! Every method runs synchronously under the caller's lock and never awaits.
//! Actions that need the media service are split in two: a `check_*` that
//! validates before the media call, and a commit that validates again inside
//! its transaction, because another request may have run in between.

use std::path::Path;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;

use crate::error::ApiError;
use crate::fault::{Fault, FaultSet};
use crate::ids;

pub(crate) mod fhir;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES ('seq', 0);
CREATE TABLE IF NOT EXISTS patients (
    id TEXT PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS appointments (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patients(id),
    slot TEXT NOT NULL,
    notes TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('booked', 'cancelled'))
);
CREATE INDEX IF NOT EXISTS appointments_patient ON appointments(patient_id);
CREATE TABLE IF NOT EXISTS consultations (
    id TEXT PRIMARY KEY,
    appointment_id TEXT NOT NULL REFERENCES appointments(id)
);
CREATE INDEX IF NOT EXISTS consultations_appointment ON consultations(appointment_id);
CREATE TABLE IF NOT EXISTS calls (
    id TEXT PRIMARY KEY,
    consultation_id TEXT NOT NULL REFERENCES consultations(id),
    mode TEXT NOT NULL CHECK (mode IN ('audio', 'video')),
    status TEXT NOT NULL CHECK (status IN ('active', 'ended')),
    started_seq INTEGER NOT NULL,
    current_recording_id TEXT NOT NULL,
    misroute_pending INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS calls_consultation ON calls(consultation_id);
CREATE TABLE IF NOT EXISTS recordings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    consultation_id TEXT NOT NULL REFERENCES consultations(id),
    call_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('audio', 'video')),
    status TEXT NOT NULL CHECK (status IN ('recording', 'finished')),
    media_id TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    erased INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS recordings_consultation ON recordings(consultation_id);
CREATE TABLE IF NOT EXISTS fhir_ids (
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    internal_id TEXT NOT NULL,
    PRIMARY KEY (type, id),
    UNIQUE (type, internal_id)
);
CREATE TABLE IF NOT EXISTS fhir_clients (
    patient_id TEXT PRIMARY KEY REFERENCES patients(id),
    secret TEXT NOT NULL
);
";

/// How many prepared statements the connection keeps: more than the
/// distinct queries the service makes, so none is parsed twice.
const STATEMENTS_CACHED: usize = 128;

/// The owner-resolving join every recording query goes through.
const RECORDING_OWNER_JOIN: &str = "recordings r
    JOIN consultations k ON k.id = r.consultation_id
    JOIN appointments a ON a.id = k.appointment_id";

/// An appointment as the booking response shows it.
#[derive(Debug, Serialize)]
pub(crate) struct Appointment {
    /// Its id.
    pub(crate) appointment_id: String,
    /// The slot as given.
    pub(crate) slot: String,
    /// The notes as given.
    pub(crate) notes: String,
    /// Always `booked` when just booked.
    pub(crate) status: &'static str,
}

/// A call of the caller's, with the media id of its current recording.
#[derive(Debug)]
pub(crate) struct CallRow {
    /// `audio` or `video`.
    pub(crate) mode: String,
    /// `active` or `ended`.
    pub(crate) status: String,
    /// The recording media is appended to.
    pub(crate) current_recording_id: String,
    /// The current recording's media object.
    pub(crate) current_media_id: String,
}

/// One row of the history view.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct HistoryItem {
    /// The recording's id.
    pub(crate) recording_id: String,
    /// The call it was recorded on.
    pub(crate) call_id: String,
    /// The appointment its consultation belongs to.
    pub(crate) appointment_id: String,
    /// `audio` or `video`.
    pub(crate) kind: String,
    /// `recording` or `finished`.
    pub(crate) status: String,
    /// How many media bytes have been appended to it.
    pub(crate) bytes: i64,
    /// Its owner's patient id (the FHIR `subject`); not part of `/v1` bodies.
    #[serde(skip)]
    pub(crate) owner: String,
}

/// What an upgrade created.
#[derive(Debug)]
pub(crate) struct Upgraded {
    /// The new video recording, now the call's current one.
    pub(crate) recording_id: String,
    /// The phantom's media object if no phantom row was inserted after all;
    /// the caller discards it.
    pub(crate) unused_phantom_media: Option<String>,
}

/// A recording with its resolved owner.
struct RecordingRow {
    kind: String,
    status: String,
    media_id: String,
    erased: bool,
    owner: String,
}

/// The connection and every query the api service makes.
pub(crate) struct Db {
    conn: Connection,
    /// The faults planted in the lookups every request shares (the caller's
    /// token, a call by id); the others are passed to the queries they bend.
    faults: FaultSet,
}

impl Db {
    /// Opens the database at `path` (a file, created if missing) or in memory,
    /// and creates any missing tables.
    pub(crate) fn open(path: Option<&Path>, faults: FaultSet) -> rusqlite::Result<Db> {
        let conn = match path {
            Some(path) => {
                let conn = Connection::open(path)?;
                // One connection only, so WAL buys cheaper commits and nothing else.
                conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
                conn
            }
            None => Connection::open_in_memory()?,
        };
        conn.execute_batch("PRAGMA foreign_keys = ON;")?;
        // One plan per statement whatever its parameters: the bundled SQLite
        // (STAT4) otherwise re-prepares a cached statement every time a
        // parameter that might change its plan gets a new value, and every
        // history view binds a new patient id.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        // Every query is prepared once and cached: parsing SQL was most of a
        // request's time. Room for all of them (about 50, with the faults').
        conn.set_prepared_statement_cache_capacity(STATEMENTS_CACHED);
        conn.execute_batch(SCHEMA)?;
        Ok(Db { conn, faults })
    }

    /// Forgets every row, as if the database had just been created (the
    /// sequence counter back at 0); prepared statements stay cached. For
    /// in-process harnesses that run many short sessions on one service.
    pub(crate) fn reset(&mut self) -> rusqlite::Result<()> {
        // Children before parents (foreign keys are on); cached statements,
        // since a fuzz target resets before every run.
        const RESET: [&str; 9] = [
            "DELETE FROM fhir_clients",
            "DELETE FROM fhir_ids",
            "DELETE FROM recordings",
            "DELETE FROM calls",
            "DELETE FROM consultations",
            "DELETE FROM appointments",
            "DELETE FROM patients",
            "DELETE FROM sqlite_sequence",
            "UPDATE counters SET value = 0",
        ];
        let tx = self.conn.transaction()?;
        for sql in RESET {
            tx.prepare_cached(sql)?.execute([])?;
        }
        tx.commit()
    }

    /// The patient id the bearer token belongs to.
    pub(crate) fn patient_by_token(&self, token: &str) -> rusqlite::Result<Option<String>> {
        // `token-like-match`: LIKE, meant to forgive letter case, also reads
        // `%` and `_` in the token as wildcards.
        let sql = if self.faults.contains(Fault::TokenLikeMatch) {
            "SELECT id FROM patients WHERE token LIKE ?1 ORDER BY rowid LIMIT 1"
        } else {
            "SELECT id FROM patients WHERE token = ?1"
        };
        self.conn
            .prepare_cached(sql)?
            .query_row([token], |row| row.get(0))
            .optional()
    }

    /// Registers a patient; returns `(patient_id, token)`.
    pub(crate) fn register(&mut self, display_name: &str) -> rusqlite::Result<(String, String)> {
        let id = ids::new_id("pat_");
        let token = ids::new_token();
        self.conn
            .prepare_cached("INSERT INTO patients (id, token, display_name) VALUES (?1, ?2, ?3)")?
            .execute(params![id, token, display_name])?;
        Ok((id, token))
    }

    /// Books an appointment and gives it a consultation: a new one, or under
    /// `rebook-reuses-consultation` the oldest consultation of a cancelled
    /// appointment, re-pointed here with its recordings.
    pub(crate) fn book(
        &mut self,
        patient: &str,
        slot: &str,
        notes: &str,
        faults: &FaultSet,
    ) -> rusqlite::Result<Appointment> {
        let tx = self.conn.transaction()?;
        let appointment_id = ids::new_id("apt_");
        tx.prepare_cached(
            "INSERT INTO appointments (id, patient_id, slot, notes, status)
             VALUES (?1, ?2, ?3, ?4, 'booked')",
        )?
        .execute(params![appointment_id, patient, slot, notes])?;
        let reusable: Option<String> = if faults.contains(Fault::RebookReusesConsultation) {
            tx.prepare_cached(
                "SELECT k.id FROM consultations k
                 JOIN appointments a ON a.id = k.appointment_id
                 WHERE a.status = 'cancelled'
                 ORDER BY k.rowid LIMIT 1",
            )?
            .query_row([], |row| row.get(0))
            .optional()?
        } else {
            None
        };
        match reusable {
            Some(consultation_id) => {
                tx.prepare_cached("UPDATE consultations SET appointment_id = ?1 WHERE id = ?2")?
                    .execute(params![appointment_id, consultation_id])?;
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO consultations (id, appointment_id) VALUES (?1, ?2)",
                )?
                .execute(params![ids::new_id("con_"), appointment_id])?;
            }
        }
        tx.commit()?;
        Ok(Appointment {
            appointment_id,
            slot: slot.to_owned(),
            notes: notes.to_owned(),
            status: "booked",
        })
    }

    /// Cancels the caller's booked appointment when no call of it is active.
    pub(crate) fn cancel(&mut self, patient: &str, appointment_id: &str) -> Result<(), ApiError> {
        let tx = self.conn.transaction()?;
        let status = appointment_status(&tx, patient, appointment_id)?;
        if status == "cancelled" {
            return Err(ApiError::conflict("appointment is already cancelled"));
        }
        if has_active_call(&tx, appointment_id)? {
            return Err(ApiError::conflict("a call of this appointment is active"));
        }
        tx.prepare_cached("UPDATE appointments SET status = 'cancelled' WHERE id = ?1")?
            .execute([appointment_id])?;
        tx.commit()?;
        Ok(())
    }

    /// Validates that the caller may start a call of the appointment.
    pub(crate) fn check_start_call(
        &mut self,
        patient: &str,
        appointment_id: &str,
    ) -> Result<(), ApiError> {
        startable_consultation(&self.conn, &self.faults, patient, appointment_id).map(drop)
    }

    /// Starts an audio call with a recording on `media_id`; returns
    /// `(call_id, recording_id)`.
    pub(crate) fn start_call(
        &mut self,
        patient: &str,
        appointment_id: &str,
        media_id: &str,
    ) -> Result<(String, String), ApiError> {
        let tx = self.conn.transaction()?;
        let consultation_id = startable_consultation(&tx, &self.faults, patient, appointment_id)?;
        let call_id = ids::new_id("call_");
        let recording_id = ids::new_id("rec_");
        let started_seq = next_seq(&tx)?;
        tx.prepare_cached("INSERT INTO calls (id, consultation_id, mode, status, started_seq, current_recording_id)
             VALUES (?1, ?2, 'audio', 'active', ?3, ?4)")?.execute(params![call_id, consultation_id, started_seq, recording_id],
        )?;
        insert_recording(
            &tx,
            &recording_id,
            &consultation_id,
            &call_id,
            "audio",
            "recording",
            media_id,
        )?;
        tx.commit()?;
        Ok((call_id, recording_id))
    }

    /// Validates that the caller may upgrade the call; returns it.
    pub(crate) fn check_upgrade(
        &mut self,
        patient: &str,
        call_id: &str,
    ) -> Result<CallRow, ApiError> {
        upgradable_call(&self.conn, &self.faults, patient, call_id)
    }

    /// Upgrades the caller's active audio call to video: finishes the audio
    /// recording, adds a video recording on `video_media` and makes it current.
    ///
    /// `phantom` is `(last history viewer, empty finished media)` when
    /// `upgrade-phantom` should plant a stray recording. `slot_call` is the
    /// call read back from the shared slot under `upgrade-shared-slot`; when it
    /// is another call, the video recording is attached to that call instead.
    pub(crate) fn upgrade(
        &mut self,
        patient: &str,
        call_id: &str,
        video_media: &str,
        phantom: Option<(&str, &str)>,
        slot_call: Option<&str>,
        faults: &FaultSet,
    ) -> Result<Upgraded, ApiError> {
        let tx = self.conn.transaction()?;
        let call = upgradable_call(&tx, &self.faults, patient, call_id)?;
        let own_consultation = call_consultation(&tx, call_id)?;
        tx.prepare_cached("UPDATE recordings SET status = 'finished' WHERE id = ?1")?
            .execute([&call.current_recording_id])?;
        let (consultation_id, attached_call_id) = if faults.contains(Fault::UpgradeLatestCall) {
            // The 2020 incident: "the call being upgraded" was looked up as the
            // latest active call, whoever's it is.
            tx.prepare_cached(
                "SELECT consultation_id, id FROM calls WHERE status = 'active'
                 ORDER BY started_seq DESC LIMIT 1",
            )?
            .query_row([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?
        } else if let Some(other) = slot_call.filter(|c| *c != call_id) {
            // `upgrade-shared-slot`: a concurrent upgrade overwrote the slot,
            // so the recording goes to that upgrade's call, whoever's it is.
            (call_consultation(&tx, other)?, other.to_owned())
        } else {
            (own_consultation, call_id.to_owned())
        };
        let recording_id = ids::new_id("rec_");
        insert_recording(
            &tx,
            &recording_id,
            &consultation_id,
            &attached_call_id,
            "video",
            "recording",
            video_media,
        )?;
        tx.prepare_cached(
            "UPDATE calls SET mode = 'video', current_recording_id = ?1, misroute_pending = ?2
             WHERE id = ?3",
        )?
        .execute(params![
            recording_id,
            faults.contains(Fault::MediaMisroute),
            call_id
        ])?;
        let mut unused_phantom_media = None;
        if let Some((viewer, phantom_media)) = phantom {
            let target: Option<String> = tx
                .prepare_cached(
                    "SELECT k.id FROM consultations k
                     JOIN appointments a ON a.id = k.appointment_id
                     WHERE a.patient_id = ?1
                     ORDER BY a.rowid DESC, k.rowid DESC LIMIT 1",
                )?
                .query_row([viewer], |row| row.get(0))
                .optional()?;
            match target {
                Some(consultation_id) => insert_recording(
                    &tx,
                    &ids::new_id("rec_"),
                    &consultation_id,
                    call_id,
                    "video",
                    "finished",
                    phantom_media,
                )?,
                None => unused_phantom_media = Some(phantom_media.to_owned()),
            }
        }
        tx.commit()?;
        Ok(Upgraded {
            recording_id,
            unused_phantom_media,
        })
    }

    /// Picks the recording a media chunk on the caller's active call goes to;
    /// returns `(recording_id, media_id)`.
    ///
    /// Normally the call's current recording. Under `media-misroute`, the first
    /// chunk after an upgrade goes to the recording created just before the
    /// call's video recording, whoever owns it.
    pub(crate) fn route_media(
        &mut self,
        patient: &str,
        call_id: &str,
        faults: &FaultSet,
    ) -> Result<(String, String), ApiError> {
        let tx = self.conn.transaction()?;
        let call = owned_call(&tx, &self.faults, patient, call_id)?;
        if call.status != "active" {
            return Err(ApiError::conflict("call has ended"));
        }
        let misroute_pending: bool = tx
            .prepare_cached("SELECT misroute_pending FROM calls WHERE id = ?1")?
            .query_row([call_id], |row| row.get(0))?;
        let mut target = (call.current_recording_id.clone(), call.current_media_id);
        if misroute_pending && faults.contains(Fault::MediaMisroute) {
            tx.prepare_cached("UPDATE calls SET misroute_pending = 0 WHERE id = ?1")?
                .execute([call_id])?;
            let previous: Option<(String, String)> = tx
                .prepare_cached(
                    "SELECT id, media_id FROM recordings
                     WHERE seq < (SELECT seq FROM recordings WHERE id = ?1)
                     ORDER BY seq DESC LIMIT 1",
                )?
                .query_row([&call.current_recording_id], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()?;
            if let Some(previous) = previous {
                target = previous;
            }
        }
        tx.commit()?;
        Ok(target)
    }

    /// Counts `n` more media bytes on the recording.
    pub(crate) fn add_bytes(&mut self, recording_id: &str, n: usize) -> rusqlite::Result<()> {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.conn
            .prepare_cached("UPDATE recordings SET bytes = bytes + ?1 WHERE id = ?2")?
            .execute(params![n, recording_id])?;
        Ok(())
    }

    /// Validates that the caller may end the call; returns it.
    pub(crate) fn check_end(&mut self, patient: &str, call_id: &str) -> Result<CallRow, ApiError> {
        let call = owned_call(&self.conn, &self.faults, patient, call_id)?;
        if call.status != "active" {
            return Err(ApiError::conflict("call has ended"));
        }
        Ok(call)
    }

    /// Ends the caller's active call and finishes its current recording;
    /// returns that recording's media id.
    pub(crate) fn end_call(&mut self, patient: &str, call_id: &str) -> Result<String, ApiError> {
        let tx = self.conn.transaction()?;
        let call = owned_call(&tx, &self.faults, patient, call_id)?;
        if call.status != "active" {
            return Err(ApiError::conflict("call has ended"));
        }
        tx.prepare_cached("UPDATE recordings SET status = 'finished' WHERE id = ?1")?
            .execute([&call.current_recording_id])?;
        tx.prepare_cached("UPDATE calls SET status = 'ended' WHERE id = ?1")?
            .execute([call_id])?;
        tx.commit()?;
        Ok(call.current_media_id)
    }

    /// Non-erased recordings: `(total, one page of items)` by seq. The total
    /// counts `count_owner`'s (everyone's when `None`); the page is
    /// `list_owner`'s (everyone's when `None`: `history-page2-unfiltered`,
    /// `fhir-next-link-unscoped`). `call` narrows both to one call.
    pub(crate) fn recordings(
        &mut self,
        count_owner: Option<&str>,
        list_owner: Option<&str>,
        call: Option<&str>,
        offset: u64,
        limit: u32,
    ) -> rusqlite::Result<(i64, Vec<HistoryItem>)> {
        // One statement per filter combination rather than
        // `(?1 IS NULL OR a.patient_id = ?1)`: that form keeps SQLite from
        // using the patient index, so every history view scanned all
        // recordings and a long soak slowed down with the size of the clinic.
        let owner_filter = |owner: Option<&str>| {
            if owner.is_some() {
                "a.patient_id = ?1"
            } else {
                "?1 IS NULL"
            }
        };
        let call_filter = if call.is_some() {
            "r.call_id = ?2"
        } else {
            "?2 IS NULL"
        };
        let total: i64 = self
            .conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM {RECORDING_OWNER_JOIN}
             WHERE r.erased = 0 AND {} AND {call_filter}",
                owner_filter(count_owner)
            ))?
            .query_row(params![count_owner, call], |row| row.get(0))?;
        // An offset past any table is simply an empty page.
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT r.id, r.call_id, k.appointment_id, r.kind, r.status, r.bytes, a.patient_id
             FROM {RECORDING_OWNER_JOIN}
             WHERE r.erased = 0 AND {} AND {call_filter}
             ORDER BY r.seq LIMIT ?3 OFFSET ?4",
            owner_filter(list_owner)
        ))?;
        let items = statement
            .query_map(params![list_owner, call, limit, offset], history_item)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((total, items))
    }

    /// One recording's row as listings show it, whoever owns it; `None` if
    /// unknown. Callers check access first ([`Db::playback`]).
    pub(crate) fn recording_item(
        &mut self,
        recording_id: &str,
    ) -> rusqlite::Result<Option<HistoryItem>> {
        self.conn
            .prepare_cached(&format!(
                "SELECT r.id, r.call_id, k.appointment_id, r.kind, r.status, r.bytes, a.patient_id
                     FROM {RECORDING_OWNER_JOIN} WHERE r.id = ?1"
            ))?
            .query_row([recording_id], history_item)
            .optional()
    }

    /// The recording to play back: `(kind, media_id)`. 404 if unknown, erased
    /// (unless `erasure-leaves-media`) or not the caller's (unless
    /// `recording-idor`).
    pub(crate) fn playback(
        &mut self,
        patient: &str,
        recording_id: &str,
        faults: &FaultSet,
    ) -> Result<(String, String), ApiError> {
        let not_found = || ApiError::not_found("recording not found");
        let recording = recording(&self.conn, recording_id)?.ok_or_else(not_found)?;
        if recording.erased && !faults.contains(Fault::ErasureLeavesMedia) {
            return Err(not_found());
        }
        if recording.owner != patient && !faults.contains(Fault::RecordingIdor) {
            if faults.contains(Fault::RefusalRevealsExistence) {
                return Err(ApiError::forbidden("recording belongs to another patient"));
            }
            return Err(not_found());
        }
        Ok((recording.kind, recording.media_id))
    }

    /// Marks the caller's finished recording erased; returns its media id.
    /// Exactly one of several concurrent erasures succeeds.
    pub(crate) fn erase(&mut self, patient: &str, recording_id: &str) -> Result<String, ApiError> {
        let tx = self.conn.transaction()?;
        let recording = recording(&tx, recording_id)?
            .filter(|recording| recording.owner == patient && !recording.erased)
            .ok_or_else(|| ApiError::not_found("recording not found"))?;
        if recording.status == "recording" {
            return Err(ApiError::conflict("recording is still in progress"));
        }
        // `erase-whole-call`: the erasure is keyed by the recording's call,
        // so every recording of that call goes (the others' media stays).
        // `erase-by-slot`: keyed by the appointment's slot, so every finished
        // recording made in that hour goes, whoever's.
        let sql = if self.faults.contains(Fault::EraseWholeCall) {
            "UPDATE recordings SET erased = 1
             WHERE call_id = (SELECT call_id FROM recordings WHERE id = ?1)"
        } else if self.faults.contains(Fault::EraseBySlot) {
            "UPDATE recordings SET erased = 1
             WHERE status = 'finished' AND consultation_id IN (
                 SELECT k.id FROM consultations k
                 JOIN appointments a ON a.id = k.appointment_id
                 WHERE a.slot = (SELECT a2.slot FROM recordings r2
                     JOIN consultations k2 ON k2.id = r2.consultation_id
                     JOIN appointments a2 ON a2.id = k2.appointment_id
                     WHERE r2.id = ?1))"
        } else {
            "UPDATE recordings SET erased = 1 WHERE id = ?1"
        };
        tx.prepare_cached(sql)?.execute([recording_id])?;
        tx.commit()?;
        Ok(recording.media_id)
    }

    /// Undoes [`Db::erase`] when the media could not be deleted, so that the
    /// patient can retry and the media is not left behind unreachable.
    pub(crate) fn unerase(&mut self, recording_id: &str) -> rusqlite::Result<()> {
        self.conn
            .prepare_cached("UPDATE recordings SET erased = 0 WHERE id = ?1")?
            .execute([recording_id])?;
        Ok(())
    }
}

/// A listing row: the columns selected by [`Db::recordings`].
fn history_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<HistoryItem> {
    Ok(HistoryItem {
        recording_id: row.get(0)?,
        call_id: row.get(1)?,
        appointment_id: row.get(2)?,
        kind: row.get(3)?,
        status: row.get(4)?,
        bytes: row.get(5)?,
        owner: row.get(6)?,
    })
}

/// The next value of the global sequence.
fn next_seq(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached("UPDATE counters SET value = value + 1 WHERE name = 'seq' RETURNING value")?
        .query_row([], |row| row.get(0))
}

fn insert_recording(
    tx: &Transaction<'_>,
    recording_id: &str,
    consultation_id: &str,
    call_id: &str,
    kind: &str,
    status: &str,
    media_id: &str,
) -> rusqlite::Result<()> {
    let seq = next_seq(tx)?;
    tx.prepare_cached(
        "INSERT INTO recordings (seq, id, consultation_id, call_id, kind, status, media_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        seq,
        recording_id,
        consultation_id,
        call_id,
        kind,
        status,
        media_id
    ])?;
    Ok(())
}

/// The status of the caller's appointment; 404 if unknown or someone else's.
fn appointment_status(
    conn: &Connection,
    patient: &str,
    appointment_id: &str,
) -> Result<String, ApiError> {
    conn.prepare_cached("SELECT status FROM appointments WHERE id = ?1 AND patient_id = ?2")?
        .query_row([appointment_id, patient], |row| row.get(0))
        .optional()?
        .ok_or_else(|| ApiError::not_found("appointment not found"))
}

fn has_active_call(conn: &Connection, appointment_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (
             SELECT 1 FROM calls c JOIN consultations k ON k.id = c.consultation_id
             WHERE k.appointment_id = ?1 AND c.status = 'active')",
    )?
    .query_row([appointment_id], |row| row.get(0))
}

/// `active-call-by-slot`: whether any appointment at the same slot as this
/// one, whoever booked it, has an active call.
fn has_active_call_in_slot(conn: &Connection, appointment_id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached(
        "SELECT EXISTS (
             SELECT 1 FROM calls c
             JOIN consultations k ON k.id = c.consultation_id
             JOIN appointments a ON a.id = k.appointment_id
             WHERE a.slot = (SELECT slot FROM appointments WHERE id = ?1)
               AND c.status = 'active')",
    )?
    .query_row([appointment_id], |row| row.get(0))
}

/// The consultation a new call of the caller's appointment goes on.
fn startable_consultation(
    conn: &Connection,
    faults: &FaultSet,
    patient: &str,
    appointment_id: &str,
) -> Result<String, ApiError> {
    if appointment_status(conn, patient, appointment_id)? == "cancelled" {
        return Err(ApiError::conflict("appointment is cancelled"));
    }
    let busy = if faults.contains(Fault::ActiveCallBySlot) {
        has_active_call_in_slot(conn, appointment_id)?
    } else {
        has_active_call(conn, appointment_id)?
    };
    if busy {
        return Err(ApiError::conflict(
            "a call of this appointment is already active",
        ));
    }
    conn.prepare_cached(
        "SELECT id FROM consultations WHERE appointment_id = ?1 ORDER BY rowid LIMIT 1",
    )?
    .query_row([appointment_id], |row| row.get(0))
    .optional()?
    // Every booked appointment has a consultation; a missing one is a bug.
    .ok_or_else(|| ApiError::internal(&"booked appointment without a consultation"))
}

/// The caller's call; 404 if unknown or someone else's.
fn owned_call(
    conn: &Connection,
    faults: &FaultSet,
    patient: &str,
    call_id: &str,
) -> Result<CallRow, ApiError> {
    // `call-owner-unchecked`: the owner filter is dropped (`?2 IS NOT NULL`
    // keeps the parameter bound), so any patient's session reaches any call.
    let sql = if faults.contains(Fault::CallOwnerUnchecked) {
        "SELECT c.mode, c.status, c.current_recording_id, r.media_id
         FROM calls c
         JOIN recordings r ON r.id = c.current_recording_id
         WHERE c.id = ?1 AND ?2 IS NOT NULL"
    } else {
        "SELECT c.mode, c.status, c.current_recording_id, r.media_id
         FROM calls c
         JOIN consultations k ON k.id = c.consultation_id
         JOIN appointments a ON a.id = k.appointment_id
         JOIN recordings r ON r.id = c.current_recording_id
         WHERE c.id = ?1 AND a.patient_id = ?2"
    };
    conn.prepare_cached(sql)?
        .query_row([call_id, patient], |row| {
            Ok(CallRow {
                mode: row.get(0)?,
                status: row.get(1)?,
                current_recording_id: row.get(2)?,
                current_media_id: row.get(3)?,
            })
        })
        .optional()?
        .ok_or_else(|| ApiError::not_found("call not found"))
}

/// The caller's active audio call; 404 not theirs, 409 ended or already video.
fn upgradable_call(
    conn: &Connection,
    faults: &FaultSet,
    patient: &str,
    call_id: &str,
) -> Result<CallRow, ApiError> {
    let call = owned_call(conn, faults, patient, call_id)?;
    if call.status != "active" {
        return Err(ApiError::conflict("call has ended"));
    }
    if call.mode != "audio" {
        return Err(ApiError::conflict("call is already video"));
    }
    Ok(call)
}

/// The consultation a call is on.
fn call_consultation(conn: &Connection, call_id: &str) -> rusqlite::Result<String> {
    conn.prepare_cached("SELECT consultation_id FROM calls WHERE id = ?1")?
        .query_row([call_id], |row| row.get(0))
}

fn recording(conn: &Connection, recording_id: &str) -> rusqlite::Result<Option<RecordingRow>> {
    conn.prepare_cached(&format!(
        "SELECT r.kind, r.status, r.media_id, r.erased, a.patient_id
             FROM {RECORDING_OWNER_JOIN} WHERE r.id = ?1"
    ))?
    .query_row([recording_id], |row| {
        Ok(RecordingRow {
            kind: row.get(0)?,
            status: row.get(1)?,
            media_id: row.get(2)?,
            erased: row.get(3)?,
            owner: row.get(4)?,
        })
    })
    .optional()
}
