//! Binding files: the built-in one compiles to the clinic's capabilities,
//! and every kind of mistake is one line naming file, line, key and fix.

use super::*;
use crate::model::Capabilities;

#[test]
fn the_clinic_binding_has_the_clinic_capabilities() {
    // Goal: driving the clinic through its binding explores exactly what the
    // hand-written driver did (same actions, one paged history view).
    let binding = Binding::clinic();
    assert_eq!(binding.caps, Capabilities::default());
    assert_eq!(binding.name, "clinic");
    assert_eq!(binding.health.as_deref(), Some("/healthz"));
}

/// Compile `text` (the clinic binding with one edit) and return the error line.
fn error_of(text: &str) -> String {
    match Binding::parse(text, "b.toml") {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn broken_bindings_are_one_line_with_place_key_and_fix() {
    // Goal: each mistake a newcomer makes names where and what to do.
    // Method: one edit of the clinic binding per case; check the message.
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "path = \"/v1/appointments/{appointment}/call\"",
            "path = \"/v1/appointments/{apointment}/call\"",
            &[
                "b.toml:",
                "actions.start-call.requests[0].path",
                "unknown placeholder `{apointment}`",
                "did you mean `{appointment}`",
            ],
        ),
        (
            "media = true",
            "mdia = true",
            &["unknown field `mdia`", "did you mean `media`"],
        ),
        (
            "capture.call = { json = \"/call_id\" }",
            "capture.cal = { json = \"/call_id\" }",
            &["actions.start-call", "must capture `call`"],
        ),
        ("items = \"/items\"", "", &["missing field `items`"]),
        (
            "capture.token = { json = \"/token\" }",
            "capture.token = { json = \"token\" }",
            &["capture.token", "JSON Pointer starts with `/`"],
        ),
        (
            "pagination = { kind = \"page\" }",
            "pagination = { kind = \"pages\" }",
            &["pagination.kind", "did you mean `page`"],
        ),
        (
            "method = \"DELETE\"\npath = \"/v1/recordings/{recording}\"",
            "method = \"YEET\"\npath = \"/v1/recordings/{recording}\"",
            &["actions.erase.requests[0].method", "expected GET, POST"],
        ),
        (
            "header = \"Authorization\"",
            "",
            &["session", "exactly one of `header`"],
        ),
        (
            "[[actions.book.requests]]",
            "[[actions.bok.requests]]",
            &["unknown field `bok`", "did you mean `book`"],
        ),
    ];
    for (from, to, wanted) in cases {
        assert!(CLINIC_TOML.contains(from), "{from}");
        let message = error_of(&CLINIC_TOML.replacen(from, to, 1));
        assert_eq!(message.lines().count(), 1, "{message}");
        for w in *wanted {
            assert!(message.contains(w), "`{w}` not in: {message}");
        }
    }
}

#[test]
fn errors_point_at_the_line_of_the_value() {
    let text = CLINIC_TOML.replace("/v1/calls/{call}/end", "/v1/calls/{cal}/end");
    let line = text
        .lines()
        .position(|l| l.contains("{cal}"))
        .expect("edited")
        + 1;
    let e = Binding::parse(&text, "b.toml").unwrap_err();
    assert_eq!(e.line, line);
    assert!(e.column > 1);
}

#[test]
fn optional_actions_left_out_are_never_generated_and_dependencies_hold() {
    // A service with no cancel and no erase is fine; an upgrade without calls is not.
    let mut text = CLINIC_TOML.to_string();
    for action in ["cancel", "erase"] {
        let start = text
            .find(&format!("[[actions.{action}.requests]]"))
            .unwrap();
        let end = text[start + 1..]
            .find("[[")
            .map_or(text.len(), |i| start + 1 + i);
        text.replace_range(start..end, "");
    }
    let binding = Binding::parse(&text, "b.toml").unwrap();
    assert!(!binding.caps.has(Action::Cancel) && !binding.caps.has(Action::Erase));
    assert!(binding.caps.has(Action::Upgrade));
    let start = text.find("[[actions.start-call.requests]]").unwrap();
    let end = text[start + 1..]
        .find("[[")
        .map_or(text.len(), |i| start + 1 + i);
    let mut no_calls = text.clone();
    no_calls.replace_range(start..end, "");
    let message = error_of(&no_calls);
    assert!(
        message.contains("`upgrade` needs `start-call`"),
        "{message}"
    );
}

#[test]
fn nothing_from_the_file_is_echoed_but_names() {
    // A header value may be a credential: errors name keys, never values.
    let text = CLINIC_TOML.replace(
        "[session]",
        "[headers]\nX-Api-Key = \"sk-SECRET-{nope}\"\n\n[session]",
    );
    let message = error_of(&text);
    assert!(message.contains("headers.X-Api-Key"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
}

#[test]
fn an_owner_needs_the_patients_own_id() {
    // Goal: a mapped owner can only be recognised by each patient's own id:
    // a binding that maps `owner` but never captures `me` is refused, one
    // line naming the key, rather than judging every owner as no patient's.
    let text = CLINIC_TOML.replace(
        "appointment = \"/appointment_id\"",
        "appointment = \"/appointment_id\"\nowner = \"/owner\"",
    );
    assert_ne!(text, CLINIC_TOML, "edited");
    let message = error_of(&text);
    assert!(message.contains("views.history.owner"), "{message}");
    assert!(message.contains("never captures `me`"), "{message}");
}

#[test]
fn noninterference_keys_take_only_known_names() {
    // Goal: a misspelt action, field or check under `[noninterference]` is a
    // one-line error naming the key (with a did-you-mean where one is near),
    // never a silently ignored setting; the right names compile.
    let with = |table: &str| format!("{CLINIC_TOML}\n[noninterference]\n{table}\n");
    for (table, key, hint) in [
        (
            "shared = [\"bok\"]",
            "noninterference.shared",
            "did you mean `book`?",
        ),
        (
            "fields = [\"totl\"]",
            "noninterference.fields",
            "did you mean `total`?",
        ),
        (
            "check = \"always\"",
            "noninterference.check",
            "`suspect` or `every`",
        ),
    ] {
        let message = error_of(&with(table));
        assert!(message.contains(key), "{message}");
        assert!(message.contains(hint), "{message}");
    }
    let binding = Binding::parse(
        &with("shared = [\"book\"]\nfields = [\"size\", \"owner\"]\ncheck = \"every\""),
        "b.toml",
    )
    .expect("valid");
    assert_eq!(binding.noninterference, super::NoninterferenceCheck::Every);
    assert_eq!(binding.shared_fields, ["size", "owner"]);
}
