//! The FHIR resources the `/fhir` shape reads and writes, with only the
//! fields it uses.
//!
//! Request bodies are small serde structs: what a create must carry is a
//! field, unknown fields are ignored (FHIR clients send much more than we
//! read), and `resourceType` is checked. Responses are built by one function
//! per resource into `serde_json::Value`, each naming every field it emits.
//! A FHIR model crate would give all 146 R4 resources for the five used here;
//! the measurement is in the module docs of [`crate::fhir`].

use serde::Deserialize;
use serde_json::{Value, json};

use crate::db::HistoryItem;
use crate::db::fhir::Kind;
use crate::error::ApiError;

/// The `Encounter.class` code of a virtual encounter (v3 ActCode `VR`).
pub const VIRTUAL_CLASS: &str = "VR";

/// The code system of [`VIRTUAL_CLASS`].
pub const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

/// The code system of `Media.type` (`audio`, `video`).
pub const MEDIA_TYPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/media-type";

/// The extension on `Encounter` giving the call's mode: `audio` or `video`.
pub const CALL_MODE_EXTENSION: &str = "https://chaperone.dev/fhir/StructureDefinition/call-mode";

/// The extension on `Encounter` referencing the `Media` that media sent now
/// is appended to (the call's current recording).
pub const CURRENT_MEDIA_EXTENSION: &str =
    "https://chaperone.dev/fhir/StructureDefinition/current-media";

/// A `Reference`; only `reference` (`Type/id`) is read.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Reference {
    /// `Type/id`, or a URL ending in it.
    pub(crate) reference: Option<String>,
}

/// A `HumanName`; `text`, or else `given` and `family`, is the display name.
#[derive(Debug, Deserialize)]
pub(crate) struct HumanName {
    /// The whole name.
    text: Option<String>,
    /// Given names.
    #[serde(default)]
    given: Vec<String>,
    /// The family name.
    family: Option<String>,
}

/// `POST /fhir/Patient`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PatientIn {
    /// Must be `Patient`.
    resource_type: String,
    /// The first name is the display name.
    #[serde(default)]
    name: Vec<HumanName>,
}

/// `POST /fhir/Appointment`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppointmentIn {
    /// Must be `Appointment`.
    resource_type: String,
    /// The slot, stored as given.
    pub(crate) start: String,
    /// The notes.
    #[serde(default)]
    pub(crate) description: String,
    /// If given, every `Patient` actor must be the caller.
    #[serde(default)]
    pub(crate) participant: Vec<Participant>,
}

/// An `Appointment.participant`; only `actor` is read.
#[derive(Debug, Deserialize)]
pub(crate) struct Participant {
    /// Who takes part.
    #[serde(default)]
    pub(crate) actor: Reference,
}

/// `POST /fhir/Encounter`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EncounterIn {
    /// Must be `Encounter`.
    resource_type: String,
    /// Exactly one `Appointment` reference: the call's appointment.
    #[serde(default)]
    pub(crate) appointment: Vec<Reference>,
    /// If given, its `code` must be [`VIRTUAL_CLASS`].
    pub(crate) class: Option<Coding>,
}

/// A `Coding`; only `code` is read.
#[derive(Debug, Deserialize)]
pub(crate) struct Coding {
    /// The code.
    pub(crate) code: Option<String>,
}

/// `POST /fhir/Binary` as JSON.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BinaryIn {
    /// Must be `Binary`.
    resource_type: String,
    /// The `Encounter` whose current recording the bytes go to.
    #[serde(default)]
    pub(crate) security_context: Reference,
    /// The bytes, base64.
    #[serde(default)]
    pub(crate) data: String,
}

/// Checks a body's `resourceType`.
pub(crate) fn expect_type(found: &str, kind: Kind) -> Result<(), ApiError> {
    if found == kind.name() {
        Ok(())
    } else {
        Err(ApiError::bad_request(match kind {
            Kind::Patient => "resourceType must be Patient",
            Kind::Appointment => "resourceType must be Appointment",
            Kind::Encounter => "resourceType must be Encounter",
            Kind::Media => "resourceType must be Media",
            Kind::Binary => "resourceType must be Binary",
        }))
    }
}

impl PatientIn {
    /// The display name, from the first `name`.
    pub(crate) fn display_name(&self) -> Result<String, ApiError> {
        expect_type(&self.resource_type, Kind::Patient)?;
        let name = self
            .name
            .first()
            .ok_or_else(|| ApiError::bad_request("Patient.name is required"))?;
        if let Some(text) = &name.text {
            return Ok(text.clone());
        }
        let mut parts: Vec<&str> = name.given.iter().map(String::as_str).collect();
        parts.extend(name.family.as_deref());
        if parts.is_empty() {
            return Err(ApiError::bad_request(
                "Patient.name needs text, given or family",
            ));
        }
        Ok(parts.join(" "))
    }
}

impl AppointmentIn {
    /// Checks the resource type.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        expect_type(&self.resource_type, Kind::Appointment)
    }
}

impl EncounterIn {
    /// The appointment's logical id; checks the type and the class.
    pub(crate) fn appointment_id(&self) -> Result<&str, ApiError> {
        expect_type(&self.resource_type, Kind::Encounter)?;
        if let Some(class) = &self.class
            && class.code.as_deref() != Some(VIRTUAL_CLASS)
        {
            return Err(ApiError::bad_request(
                "Encounter.class must be VR (virtual)",
            ));
        }
        match self.appointment.as_slice() {
            [one] => one
                .reference
                .as_deref()
                .and_then(|reference| reference_id(reference, Kind::Appointment))
                .ok_or_else(|| {
                    ApiError::bad_request("Encounter.appointment must reference an Appointment")
                }),
            _ => Err(ApiError::bad_request(
                "Encounter.appointment must hold exactly one reference",
            )),
        }
    }
}

impl BinaryIn {
    /// Checks the resource type.
    pub(crate) fn check(&self) -> Result<(), ApiError> {
        expect_type(&self.resource_type, Kind::Binary)
    }
}

/// The logical id in a reference to a `kind`: `Kind/id`, a URL ending in
/// `/Kind/id`, or a bare id. `None` for a reference to another type or
/// anything that is not an id.
pub(crate) fn reference_id(reference: &str, kind: Kind) -> Option<&str> {
    let id = match reference.rsplit_once('/') {
        None => reference,
        Some((before, id)) => {
            let type_name = before.rsplit('/').next().unwrap_or(before);
            if type_name != kind.name() {
                return None;
            }
            id
        }
    };
    is_id(id).then_some(id)
}

/// Whether `id` is a valid FHIR logical id: 1 to 64 of `A-Za-z0-9-.`.
pub(crate) fn is_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A `Patient`.
pub(crate) fn patient(id: &str, display_name: &str) -> Value {
    json!({
        "resourceType": "Patient",
        "id": id,
        "active": true,
        "name": [{ "text": display_name }],
    })
}

/// An `Appointment` of `patient`'s.
pub(crate) fn appointment(id: &str, patient: &str, slot: &str, notes: &str, status: &str) -> Value {
    json!({
        "resourceType": "Appointment",
        "id": id,
        "status": status,
        "start": slot,
        "description": notes,
        "participant": [{
            "actor": { "reference": format!("Patient/{patient}") },
            "status": "accepted",
        }],
    })
}

/// The logical ids an `Encounter` refers to.
pub(crate) struct EncounterRefs<'a> {
    /// The encounter itself.
    pub(crate) id: &'a str,
    /// Its patient.
    pub(crate) patient: &'a str,
    /// Its appointment.
    pub(crate) appointment: &'a str,
    /// Its current recording.
    pub(crate) current_media: &'a str,
}

/// An `Encounter` (a call): `status` is `in-progress` or `finished`.
pub(crate) fn encounter(refs: &EncounterRefs<'_>, mode: &str, active: bool) -> Value {
    json!({
        "resourceType": "Encounter",
        "id": refs.id,
        "status": if active { "in-progress" } else { "finished" },
        "class": { "system": ACT_CODE_SYSTEM, "code": VIRTUAL_CLASS, "display": "virtual" },
        "subject": { "reference": format!("Patient/{}", refs.patient) },
        "appointment": [{ "reference": format!("Appointment/{}", refs.appointment) }],
        "extension": [
            { "url": CALL_MODE_EXTENSION, "valueCode": mode },
            {
                "url": CURRENT_MEDIA_EXTENSION,
                "valueReference": { "reference": format!("Media/{}", refs.current_media) },
            },
        ],
    })
}

/// The logical ids a `Media` refers to.
pub(crate) struct MediaRefs {
    /// The media itself.
    pub(crate) id: String,
    /// Its bytes.
    pub(crate) binary: String,
    /// Its owner.
    pub(crate) patient: String,
    /// The call it was recorded on.
    pub(crate) encounter: String,
}

/// A `Media` (a recording); `base` is the FHIR base URL for `content.url`.
pub(crate) fn media(refs: &MediaRefs, item: &HistoryItem, base: &str) -> Value {
    json!({
        "resourceType": "Media",
        "id": refs.id,
        "status": if item.status == "finished" { "completed" } else { "in-progress" },
        "type": { "coding": [{ "system": MEDIA_TYPE_SYSTEM, "code": item.kind }] },
        "subject": { "reference": format!("Patient/{}", refs.patient) },
        "encounter": { "reference": format!("Encounter/{}", refs.encounter) },
        "content": {
            "contentType": "application/octet-stream",
            "url": format!("{base}/Binary/{}", refs.binary),
            "size": item.bytes,
        },
    })
}

#[cfg(test)]
mod tests {
    //! Goal: references parse to ids only for the right type and a valid id.

    use super::*;

    #[test]
    fn reference_id_takes_type_slash_id_urls_and_bare_ids() {
        assert_eq!(
            reference_id("Appointment/abc-1", Kind::Appointment),
            Some("abc-1")
        );
        assert_eq!(
            reference_id("http://h/fhir/Appointment/abc", Kind::Appointment),
            Some("abc")
        );
        assert_eq!(reference_id("abc.2", Kind::Patient), Some("abc.2"));
        assert_eq!(reference_id("Patient/abc", Kind::Appointment), None);
        assert_eq!(reference_id("Appointment/", Kind::Appointment), None);
        assert_eq!(reference_id("Appointment/a b", Kind::Appointment), None);
        assert_eq!(reference_id(&"x".repeat(65), Kind::Patient), None);
    }
}
