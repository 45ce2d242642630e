//! Synthetic identities and canaries: what each simulated patient sends.
//!
//! Every patient has one canary token, unique among patients, fixed-width (so
//! no canary is a prefix of another) and derived from the alias alone, so a
//! scenario replays with the same payloads. The canary goes into the display
//! name, the appointment notes and every media chunk; finding it in what
//! another patient receives is a content leak whatever the metadata says.

use super::ids::{AppointmentId, CallId, PatientId};

/// The patient's canary: `CNRY` + 4-digit alias number + 8 letters, no lowercase hex.
///
/// Uppercase letters keep it from ever occurring inside the service's own
/// lowercase-hex ids and tokens.
pub fn canary(patient: PatientId) -> String {
    // A small fixed mix (splitmix64) so canaries look unrelated to each other.
    let mut z = u64::from(patient.0).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let letters: String = (0..8)
        .map(|i| char::from(b'G' + ((z >> (i * 5)) % 20) as u8))
        .collect();
    format!("CNRY{:04}{letters}", patient.0)
}

/// The display name a patient registers with.
pub fn display_name(patient: PatientId) -> String {
    format!("Synthetic Patient {patient} {}", canary(patient))
}

/// The notes a patient writes when booking.
pub fn notes(patient: PatientId, appointment: AppointmentId) -> String {
    format!("Synthetic notes for {appointment}, {}", canary(patient))
}

/// One media chunk: a short header, the canary, then filler bytes.
pub fn media_chunk(patient: PatientId, call: CallId, chunk: u16) -> Vec<u8> {
    let mut bytes = format!("chunk {chunk} of {call} {} ", canary(patient)).into_bytes();
    bytes.extend((0..64u8).map(|i| i.wrapping_mul(37) ^ (chunk as u8)));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canaries_are_unique_fixed_width_and_never_prefixes() {
        // Goal: the content oracle can tell any two patients apart.
        // Method: compare the canaries of the first 2,000 aliases pairwise by prefix.
        let all: Vec<String> = (1..=2000).map(|n| canary(PatientId(n))).collect();
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
