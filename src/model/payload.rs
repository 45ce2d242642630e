//! Synthetic identities and canaries: what each simulated patient sends.
//!
//! Every patient has one canary token, unique among patients, fixed-width (so
//! no canary is a prefix of another) and derived from the alias alone, so a
//! scenario replays with the same payloads. The canary goes into the display
//! name, the appointment notes and every media chunk; finding it in what
//! another patient receives is a content leak whatever the metadata says.

use super::ids::{AppointmentId, CallId, PatientId};

/// Tells apart the patients of different cases that share one service (a URL
/// or containers target): the same alias in two cases gets two canaries.
/// Embedded cases each get a fresh clinic and use the default tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CaseTag(pub u32);

/// Letters G..Z only: never in the service's lowercase-hex ids and tokens.
fn letters(mut z: u64, n: usize) -> String {
    (0..n)
        .map(|_| {
            let c = char::from(b'G' + (z % 20) as u8);
            z /= 20;
            c
        })
        .collect()
}

fn mix(x: u64) -> u64 {
    // splitmix64, so canaries look unrelated to each other.
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every canary starts with this and has [`CANARY_LEN`] bytes.
pub const CANARY_PREFIX: &str = "CNRY";

/// The fixed width of a canary: prefix, 8 tag letters, 10 alias digits (any
/// `u32` alias: a soak's patients keep arriving), 8 letters.
pub const CANARY_LEN: usize = 4 + 8 + 10 + 8;

/// The canary of `patient` in the case tagged `tag`.
///
/// Fixed width, so no canary is a prefix of another; uppercase letters and
/// digits only; derived from tag and alias alone, so a replay sends the same bytes.
pub fn canary_in(tag: CaseTag, patient: PatientId) -> String {
    let check = mix((u64::from(tag.0) << 20) ^ u64::from(patient.0));
    format!(
        "{CANARY_PREFIX}{}{:010}{}",
        letters(u64::from(tag.0), 8),
        patient.0,
        letters(check, 8)
    )
}

/// The alias digits of a canary-shaped `bytes` (see [`looks_like_canary`]).
pub fn canary_alias(bytes: &[u8]) -> Option<PatientId> {
    let digits = std::str::from_utf8(bytes.get(12..22)?).ok()?;
    digits.parse().ok().map(PatientId)
}

/// Whether `bytes` (of length [`CANARY_LEN`]) has the shape of a canary.
pub fn looks_like_canary(bytes: &[u8]) -> bool {
    let upper = |b: &u8| (b'G'..=b'Z').contains(b);
    bytes.len() == CANARY_LEN
        && bytes.starts_with(CANARY_PREFIX.as_bytes())
        && bytes[4..12].iter().all(upper)
        && bytes[12..22].iter().all(u8::is_ascii_digit)
        && bytes[22..].iter().all(upper)
}

/// The canary of `patient` with the default tag.
pub fn canary(patient: PatientId) -> String {
    canary_in(CaseTag::default(), patient)
}

/// The display name a patient registers with.
pub fn display_name_in(tag: CaseTag, patient: PatientId) -> String {
    format!("Synthetic Patient {patient} {}", canary_in(tag, patient))
}

/// The notes a patient writes when booking.
pub fn notes_in(tag: CaseTag, patient: PatientId, appointment: AppointmentId) -> String {
    format!(
        "Synthetic notes for {appointment}, {}",
        canary_in(tag, patient)
    )
}

/// One media chunk: a short header, the canary, then filler bytes.
pub fn media_chunk_in(tag: CaseTag, patient: PatientId, call: CallId, chunk: u16) -> Vec<u8> {
    let mut bytes = format!("chunk {chunk} of {call} {} ", canary_in(tag, patient)).into_bytes();
    bytes.extend((0..64u8).map(|i| i.wrapping_mul(37) ^ (chunk as u8)));
    bytes
}

/// [`display_name_in`] with the default tag.
pub fn display_name(patient: PatientId) -> String {
    display_name_in(CaseTag::default(), patient)
}

/// [`notes_in`] with the default tag.
pub fn notes(patient: PatientId, appointment: AppointmentId) -> String {
    notes_in(CaseTag::default(), patient, appointment)
}

/// [`media_chunk_in`] with the default tag.
pub fn media_chunk(patient: PatientId, call: CallId, chunk: u16) -> Vec<u8> {
    media_chunk_in(CaseTag::default(), patient, call, chunk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_unique_fixed_width_and_never_prefixes_across_cases() {
        // Goal: the content oracle can tell any two patients apart.
        // Method: compare the canaries of the first 2,000 aliases pairwise by prefix.
        let mut all: Vec<String> = (1..=2000).map(|n| canary(PatientId(n))).collect();
        all.extend((1..=50).map(|n| canary_in(CaseTag(7), PatientId(n))));
        all.extend((1..=50).map(|n| canary_in(CaseTag(u32::MAX), PatientId(n))));
        assert!(all.iter().all(|c| looks_like_canary(c.as_bytes())));
        let width = all[0].len();
        for (i, a) in all.iter().enumerate() {
            assert_eq!(a.len(), width);
            assert!(!a.bytes().any(|b| b.is_ascii_lowercase()));
            for b in &all[i + 1..] {
                assert!(!b.starts_with(a.as_str()) && a != b);
            }
        }
        assert!(
            String::from_utf8_lossy(&media_chunk(PatientId(7), CallId(1), 3))
                .contains(&canary(PatientId(7)))
        );
    }
}
