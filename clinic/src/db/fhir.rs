//! The store's part for the FHIR shape: logical ids and client credentials.
//!
//! FHIR logical ids are not the `/v1` ids: `fhir_ids` maps `(type, logical
//! id)` to the internal id, one logical id per object and type, assigned the
//! first time the object is shown through `/fhir` (so objects made through
//! `/v1` get one too). `Binary` ids name a recording's bytes and differ from
//! its `Media` id. `fhir_clients` holds each FHIR-registered patient's client
//! secret, exchanged for the bearer token at the token endpoint.

use rusqlite::{OptionalExtension, params};

use super::{Db, owned_call};
use crate::error::ApiError;
use crate::ids;

/// The FHIR resource types that have logical ids here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A patient.
    Patient,
    /// An appointment.
    Appointment,
    /// A call.
    Encounter,
    /// A recording's metadata.
    Media,
    /// A recording's bytes.
    Binary,
}

impl Kind {
    /// The resource type's name, as in references (`Media/…`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Patient => "Patient",
            Kind::Appointment => "Appointment",
            Kind::Encounter => "Encounter",
            Kind::Media => "Media",
            Kind::Binary => "Binary",
        }
    }
}

/// An appointment of the caller's, as `Appointment` shows it.
#[derive(Debug)]
pub(crate) struct AppointmentRow {
    /// The slot as booked.
    pub(crate) slot: String,
    /// The notes as booked.
    pub(crate) notes: String,
    /// `booked` or `cancelled`.
    pub(crate) status: String,
}

/// A call of the caller's, as `Encounter` shows it.
#[derive(Debug)]
pub(crate) struct EncounterRow {
    /// The appointment its consultation belongs to now.
    pub(crate) appointment_id: String,
    /// `audio` or `video`.
    pub(crate) mode: String,
    /// `active` or `ended`.
    pub(crate) status: String,
    /// The recording media is appended to.
    pub(crate) current_recording_id: String,
}

impl Db {
    /// The logical id of `internal_id` as a `kind`, assigned on first use.
    pub(crate) fn fhir_id(&mut self, kind: Kind, internal_id: &str) -> rusqlite::Result<String> {
        let existing: Option<String> = self
            .conn
            .prepare_cached("SELECT id FROM fhir_ids WHERE type = ?1 AND internal_id = ?2")?
            .query_row(params![kind.name(), internal_id], |row| row.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id = ids::new_fhir_id();
        self.conn
            .prepare_cached("INSERT INTO fhir_ids (type, id, internal_id) VALUES (?1, ?2, ?3)")?
            .execute(params![kind.name(), id, internal_id])?;
        Ok(id)
    }

    /// The internal id a logical id names, if any.
    pub(crate) fn internal_id(
        &mut self,
        kind: Kind,
        fhir_id: &str,
    ) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT internal_id FROM fhir_ids WHERE type = ?1 AND id = ?2")?
            .query_row(params![kind.name(), fhir_id], |row| row.get(0))
            .optional()
    }

    /// Registers a patient with a client secret; returns `(patient_id, secret)`.
    pub(crate) fn register_client(
        &mut self,
        display_name: &str,
    ) -> rusqlite::Result<(String, String)> {
        let (patient_id, _) = self.register(display_name)?;
        let secret = ids::new_token();
        self.conn
            .prepare_cached("INSERT INTO fhir_clients (patient_id, secret) VALUES (?1, ?2)")?
            .execute(params![patient_id, secret])?;
        Ok((patient_id, secret))
    }

    /// The bearer token of the patient whose client secret this is, if it is.
    pub(crate) fn client_token(
        &mut self,
        patient_id: &str,
        secret: &str,
    ) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached(
                "SELECT p.token FROM fhir_clients c JOIN patients p ON p.id = c.patient_id
                 WHERE c.patient_id = ?1 AND c.secret = ?2",
            )?
            .query_row(params![patient_id, secret], |row| row.get(0))
            .optional()
    }

    /// A patient's display name.
    pub(crate) fn display_name(&mut self, patient_id: &str) -> rusqlite::Result<Option<String>> {
        self.conn
            .prepare_cached("SELECT display_name FROM patients WHERE id = ?1")?
            .query_row([patient_id], |row| row.get(0))
            .optional()
    }

    /// The caller's appointment; 404 if unknown or someone else's.
    pub(crate) fn appointment(
        &mut self,
        patient: &str,
        appointment_id: &str,
    ) -> Result<AppointmentRow, ApiError> {
        self.conn
            .prepare_cached(
                "SELECT slot, notes, status FROM appointments WHERE id = ?1 AND patient_id = ?2",
            )?
            .query_row(params![appointment_id, patient], |row| {
                Ok(AppointmentRow {
                    slot: row.get(0)?,
                    notes: row.get(1)?,
                    status: row.get(2)?,
                })
            })
            .optional()?
            .ok_or_else(|| ApiError::not_found("appointment not found"))
    }

    /// The caller's call; 404 if unknown or someone else's.
    pub(crate) fn encounter(
        &mut self,
        patient: &str,
        call_id: &str,
    ) -> Result<EncounterRow, ApiError> {
        let call = owned_call(&self.conn, &self.faults, patient, call_id)?;
        let appointment_id: String = self.conn.prepare_cached("SELECT k.appointment_id FROM calls c JOIN consultations k ON k.id = c.consultation_id
             WHERE c.id = ?1")?.query_row([call_id],
            |row| row.get(0),
        )?;
        Ok(EncounterRow {
            appointment_id,
            mode: call.mode,
            status: call.status,
            current_recording_id: call.current_recording_id,
        })
    }
}
