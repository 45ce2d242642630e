//! Opaque random identifiers and bearer tokens.
//!
//! Ids are a type prefix (`pat_`, `apt_`, `con_`, `call_`, `rec_`, `med_`) and
//! 16 hex digits from the thread RNG; FHIR logical ids are random UUID-shaped
//! strings; tokens are 32 random bytes in hex. Nothing
//! about an id reveals its owner or its creation order.

use std::fmt::Write as _;

/// A fresh id: `prefix` followed by 16 random hex digits.
pub(crate) fn new_id(prefix: &str) -> String {
    let bytes: [u8; 8] = rand::random();
    let mut id = String::with_capacity(prefix.len() + 16);
    id.push_str(prefix);
    push_hex(&mut id, &bytes);
    id
}

/// A fresh FHIR logical id: 16 random bytes in the textual UUID form
/// (`8-4-4-4-12` hex digits), a valid FHIR `id` unlike any `/v1` id.
pub(crate) fn new_fhir_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut id = String::with_capacity(36);
    for (i, range) in [0..4, 4..6, 6..8, 8..10, 10..16].into_iter().enumerate() {
        if i > 0 {
            id.push('-');
        }
        push_hex(&mut id, &bytes[range]);
    }
    id
}

/// A fresh bearer token: 32 random bytes as 64 hex digits.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    let mut token = String::with_capacity(64);
    push_hex(&mut token, &bytes);
    token
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(out, "{byte:02x}");
    }
}

#[cfg(test)]
mod tests {
    //! Goal: ids and tokens have the documented shape and do not repeat.

    use super::*;

    #[test]
    fn ids_and_tokens_have_the_documented_shape() {
        let id = new_id("rec_");
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("rec_"));
        assert!(id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(new_id("rec_"), new_id("rec_"));
        assert_ne!(new_token(), new_token());
        let fhir = new_fhir_id();
        assert_eq!(fhir.len(), 36);
        assert_eq!(fhir.matches('-').count(), 4);
        assert!(fhir.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'));
    }
}
