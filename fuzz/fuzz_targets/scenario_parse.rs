//! `scenario_parse`: arbitrary bytes into the scenario parser.
//!
//! Properties: parsing never panics; an error is one line naming the file
//! and a line that exists; whatever parses writes back (`to_toml`, with and
//! without a replay hint) and parses to the same scenario.

#![no_main]

use std::path::Path;

use chaperone::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    match Scenario::parse(path, text) {
        Ok(scenario) => {
            for hint in [None, Some("chaperone replay fuzz.toml")] {
                let written = scenario.to_toml(hint);
                let again = Scenario::parse(path, &written)
                    .unwrap_or_else(|e| panic!("a written scenario does not parse: {e}"));
                assert_eq!(again, scenario, "a written scenario parses differently");
            }
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.contains('\n'), "a multi-line error: {message:?}");
            assert!(message.starts_with("fuzz.toml:"), "{message:?}");
            let lines = text.split('\n').count();
            assert!(
                error.line >= 1 && error.line <= lines,
                "error on line {} of a {lines}-line file: {message:?}",
                error.line
            );
        }
    }
});
