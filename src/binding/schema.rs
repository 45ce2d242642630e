//! `chaperone binding schema`: the JSON Schema of a binding file, generated
//! from the same serde types that read it ([`super::file::BindingFile`]), so
//! editors (Taplo, VS Code's Even Better TOML) validate and complete binding
//! files and the schema can never drift from the parser.

use super::file::BindingFile;

/// The JSON Schema of a binding file, as pretty-printed JSON (ends with a newline).
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(BindingFile);
    // Serialising a schema (a JSON value) cannot fail.
    let mut text = serde_json::to_string_pretty(&schema).expect("a JSON Schema serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_every_top_level_key_and_every_action() {
        // Goal: the printed schema is JSON and describes the whole file, so an
        // editor completes every key. Method: parse it and look up the
        // top-level properties, the actions and a nested key's documentation.
        let schema: serde_json::Value = serde_json::from_str(&schema_json()).unwrap();
        let top = schema["properties"]
            .as_object()
            .expect("top-level properties");
        for key in [
            "name",
            "service",
            "description",
            "health",
            "headers",
            "follow_hosts",
            "session",
            "actions",
            "views",
            "refusal",
        ] {
            assert!(top.contains_key(key), "`{key}` missing from the schema");
        }
        let required: Vec<&str> = schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        for key in ["name", "service", "session", "actions"] {
            assert!(required.contains(&key), "`{key}` not required");
        }
        let actions = &schema["$defs"]["ActionsFile"]["properties"];
        for action in [
            "register",
            "book",
            "cancel",
            "start-call",
            "upgrade",
            "send-media",
            "end-call",
            "play",
            "erase",
            "erase-account",
        ] {
            assert!(actions.get(action).is_some(), "action `{action}` missing");
        }
        // The `///` docs reach the schema: editors show them on hover.
        let text = schema_json();
        assert!(text.contains("JSON Pointer"), "field docs missing");
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
    }
}
