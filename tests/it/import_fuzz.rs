//! `chaperone import-fuzz`: a `flows` fuzz crash input becomes a scenario
//! file that `chaperone replay` reproduces; bad artifacts are one-line
//! usage errors. Also: the in-process transport the fuzz targets use
//! observes exactly what real HTTP observes.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use chaperone::binding::Binding;
use chaperone::driver::BindingDriver;
use chaperone::model::{self, Limits};
use chaperone::oracle::{Canaries, Clause};
use chaperone::runner;
use chaperone::scenario::Expect;
use clinic::media::MediaState;
use clinic::{Config, Fault, MediaLink, api, media};

use super::cli::{chaperone, stderr, stdout};
use super::*;

/// A crash input the `flows` fuzz target found from the seed corpus with
/// `CHAPERONE_FUZZ_FAULTS=upgrade-latest-call`, checked in as it was saved.
fn incident_artifact() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/flows-upgrade-latest-call.bin")
}

fn one_line_error(output: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err} lacks {needle}");
}

#[test]
fn a_flows_crash_imports_to_a_scenario_that_replays_to_its_violation() {
    // Goal: the import round trip of issue 4: artifact -> scenario -> replay.
    // Method: import the checked-in upgrade-latest-call crash twice (same
    // bytes out), read the scenario, replay it with and without its fault.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("incident.toml");
    let artifact = incident_artifact();
    let args = [
        "import-fuzz",
        artifact.to_str().unwrap(),
        "--fault",
        "upgrade-latest-call",
        "--out",
        file.to_str().unwrap(),
    ];
    let out = chaperone(&args);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(text.contains("VIOLATION of ownership"), "{text}");
    assert!(
        text.contains(&format!(
            "Replay it: cargo run --release -- replay {}",
            file.display()
        )),
        "{text}"
    );
    let written = std::fs::read_to_string(&file).unwrap();
    let scenario = parse(&written);
    assert_eq!(
        scenario.faults,
        [Fault::UpgradeLatestCall].into_iter().collect()
    );
    assert_eq!(scenario.expect, Expect::Violation(Clause::Ownership));
    assert_eq!(scenario.seed, None);
    // Shrunk to the incident's shape: two patients, both in calls, one upgrades.
    let actions: Vec<&str> = scenario.steps.iter().map(|s| s.action()).collect();
    assert!(actions.contains(&"upgrade"), "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "register").count(), 2);
    assert!(scenario.steps.len() <= 8, "not shrunk: {written}");

    std::fs::remove_file(&file).unwrap();
    assert_eq!(chaperone(&args).status.code(), Some(0));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);

    let replay = chaperone(&["replay", file.to_str().unwrap(), "--repeat", "3"]);
    let text = stdout(&replay);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    assert!(text.contains("REPRODUCED 3/3"), "{text}");
    assert!(text.contains("expected violation of ownership"), "{text}");
    let fixed = chaperone(&["replay", file.to_str().unwrap(), "--no-faults"]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
    assert!(stdout(&fixed).contains("FIXED 0/1"));
}

#[test]
fn bad_artifacts_exit_2_with_one_line() {
    // Goal: a missing, empty or non-failing artifact, or a bad fault name,
    // is a one-line usage error, and no scenario is written.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.toml");
    let out_arg = out.to_str().unwrap();
    let artifact = incident_artifact();
    let artifact = artifact.to_str().unwrap();
    let mut empty = tempfile::NamedTempFile::new().unwrap();
    empty.write_all(&[]).unwrap();
    let empty = empty.path().to_str().unwrap().to_string();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["import-fuzz", "/nonexistent/crash-0", "--out", out_arg],
            "cannot read the fuzz artifact /nonexistent/crash-0",
        ),
        (
            vec!["import-fuzz", &empty, "--out", out_arg],
            "decodes to no step",
        ),
        (
            vec!["import-fuzz", artifact, "--out", out_arg],
            "pass against the embedded clinic with faults none: no violation to import",
        ),
        (
            vec!["import-fuzz", artifact, "--fault", "nope", "--out", out_arg],
            "unknown fault \"nope\"",
        ),
    ];
    for (args, needle) in cases {
        one_line_error(&chaperone(&args), 2, needle);
        assert!(!out.exists(), "{args:?} wrote a scenario");
    }
}

#[test]
fn the_in_process_transport_observes_what_http_observes() {
    // Goal: the fuzz targets' transport (the api router called in-process)
    // gives the same judged run as real HTTP to the embedded clinic.
    // Method: the artifact's steps through both, with and without the fault.
    let bytes = std::fs::read(incident_artifact()).unwrap();
    let limits = Limits::default();
    let steps = model::decode(&bytes, limits);
    assert!(!steps.is_empty());
    let canaries = Canaries::new(limits.patients_max);
    for faults in [vec![], vec![Fault::UpgradeLatestCall]] {
        let config = Config {
            faults: faults.iter().copied().collect(),
            db_path: None,
        };
        let link = MediaLink::InProcess(media::router(MediaState::default()));
        let router = api::router(api::ApiState::new(&config, link).unwrap());
        let mut driver = BindingDriver::in_process(std::sync::Arc::new(Binding::clinic()), router);
        let in_process = runtime().block_on(runner::execute(
            &mut driver,
            limits,
            &canaries,
            &steps,
            None,
        ));
        let over_http =
            runtime().block_on(runner::run_case(&embedded(&faults), limits, &steps, None));
        assert_eq!(in_process.end, over_http.end, "{faults:?}");
        assert_eq!(in_process.steps_run, over_http.steps_run);
        assert_eq!(in_process.warnings, over_http.warnings);
    }
}
