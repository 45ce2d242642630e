//! The `chaperone` binary end to end: a failing run writes a scenario and
//! prints the replay command; the replay reproduces it; the same seed writes
//! byte-identical files.

use std::process::{Command, Output};

pub fn chaperone(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run chaperone")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn run_writes_a_scenario_that_replay_reproduces() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let run = chaperone(&[
        "run",
        "--fault",
        "recording-idor",
        "--seed",
        "1",
        "--cases",
        "256",
        "--out",
        out,
    ]);
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(1), "{text}{}", stderr(&run));
    assert!(
        text.starts_with("chaperone run: seed 1 | cases 256"),
        "{text}"
    );
    assert!(text.contains("VIOLATION of"), "{text}");
    let file = dir.path().join("recording-idor-seed-1.toml");
    let replay_line = format!(
        "Replay it: cargo run --release -- replay {}",
        file.display()
    );
    assert!(text.contains(&replay_line), "{text}");

    let replay = chaperone(&["replay", file.to_str().unwrap(), "--repeat", "3"]);
    let text = stdout(&replay);
    assert_eq!(replay.status.code(), Some(1), "{text}");
    assert!(text.contains("REPRODUCED 3/3"), "{text}");

    // The same steps against a clean clinic: FIXED, exit 0.
    let fixed = chaperone(&[
        "replay",
        file.to_str().unwrap(),
        "--no-faults",
        "--repeat",
        "2",
    ]);
    assert_eq!(fixed.status.code(), Some(0), "{}", stdout(&fixed));
    assert!(stdout(&fixed).contains("FIXED 0/2"));

    // Same seed, second run into the same directory: byte-identical file.
    let first = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let again = chaperone(&[
        "run",
        "--fault",
        "recording-idor",
        "--seed",
        "1",
        "--cases",
        "256",
        "--out",
        out,
    ]);
    assert_eq!(again.status.code(), Some(1));
    let second = std::fs::read(&file).unwrap();
    assert_eq!(first, second);
}

#[test]
fn clean_run_passes_with_a_summary_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let run = chaperone(&[
        "run",
        "--seed",
        "3",
        "--cases",
        "64",
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(0), "{text}{}", stderr(&run));
    assert!(
        text.contains("PASS: no privacy violation. 64 cases"),
        "{text}"
    );
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(report["verdict"], "pass");
    assert_eq!(report["cases_run"], 64);
    assert!(report["coverage"]["upgrade"].as_u64().unwrap() > 0);
}

#[test]
fn faults_lists_every_fault() {
    let out = chaperone(&["faults"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for fault in clinic::Fault::ALL {
        assert!(text.lines().any(|l| l.starts_with(fault.name())), "{text}");
    }
}

#[test]
fn too_little_exercised_is_unknown_not_pass() {
    // One case of two steps cannot exercise upgrades: exit 3, never 0.
    let run = chaperone(&["run", "--seed", "1", "--cases", "1", "--steps-max", "2"]);
    assert_eq!(run.status.code(), Some(3), "{}", stdout(&run));
    assert!(stdout(&run).contains("UNKNOWN: too little of the model was exercised"));
}

#[test]
fn url_target_finds_a_leak_in_a_running_clinic() {
    // Goal: the URL target drives an already running deployment, which cases
    // share; fresh patients per case keep findings replayable against it.
    let rt = super::runtime();
    let mut faults = clinic::FaultSet::default();
    faults.insert(clinic::Fault::RecordingIdor);
    let running = rt
        .block_on(clinic::start(clinic::Config {
            faults,
            db_path: None,
        }))
        .expect("clinic starts");
    let url = running.api_url();
    let dir = tempfile::tempdir().unwrap();
    let run = chaperone(&[
        "run",
        "--target",
        &url,
        "--seed",
        "2",
        "--cases",
        "256",
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let text = stdout(&run);
    assert_eq!(run.status.code(), Some(1), "{text}{}", stderr(&run));
    let file = dir.path().join("url-seed-2.toml");
    let scenario = std::fs::read_to_string(&file).unwrap();
    assert!(
        scenario.contains(&format!("target = \"{url}\"")),
        "{scenario}"
    );
    // The recorded target is information only (issue 11 item 5): the replay
    // command the run printed names the target, and replaying against the
    // same running clinic, which still holds everything the earlier cases
    // left behind, reproduces.
    assert!(
        text.contains(&format!("replay {} --target {url}", file.display())),
        "{text}"
    );
    let replay = chaperone(&[
        "replay",
        file.to_str().unwrap(),
        "--target",
        &url,
        "--repeat",
        "2",
    ]);
    assert!(
        stdout(&replay).contains("REPRODUCED 2/2"),
        "{}",
        stdout(&replay)
    );
    rt.block_on(running.shutdown());
}

/// Goal: a gate over a directory with no scenario says so rather than
/// passing as if it had replayed them (issue 11). Method: an empty
/// directory, one seed; the note names the directory.
#[test]
fn a_gate_over_no_scenarios_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let out = chaperone(&["gate", "--scenarios", path, "--seeds", "1"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!(
            "no scenario files (*.toml) in {path}: nothing to replay"
        )),
        "{text}"
    );
    assert!(text.contains("scenarios 0/0"), "{text}");
}

/// Goal: the gate replays every checked-in scenario, explores its seeds, and
/// reports a planted fault as exit 1 with JUnit and JSON that say so; a
/// budget that leaves no seed explored is unknown (exit 3), never a pass.
#[test]
fn the_gate_on_the_embedded_clinic_reports_a_planted_fault() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("gate.json");
    let found = dir.path().join("found");
    let scenarios = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let out = chaperone(&[
        "gate",
        "--scenarios",
        scenarios,
        "--fault",
        "upgrade-latest-call",
        "--seeds",
        "1,2",
        "--cases",
        "256",
        "--out",
        found.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    let n = super::checked_in_scenarios();
    assert!(
        text.contains(&format!("GATE FAIL: scenarios {n}/{n} as expected")),
        "{text}"
    );
    assert!(found.join("upgrade-latest-call-seed-1.toml").is_file());
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(&format!(
            "<testsuite name=\"scenarios\" tests=\"{n}\" skipped=\"0\" errors=\"0\" failures=\"0\""
        )),
        "{xml}"
    );
    assert!(
        xml.contains(
            "<testsuite name=\"explore\" tests=\"2\" skipped=\"0\" errors=\"0\" failures=\"2\""
        ),
        "{xml}"
    );
    assert!(xml.contains("type=\"privacy violation\""), "{xml}");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(value["verdict"], "violation");
    assert_eq!(value["exit_code"], 1);
    assert_eq!(value["seeds"][0]["verdict"], "violation");

    let out = chaperone(&[
        "gate",
        "--scenarios",
        scenarios,
        "--budget-secs",
        "0",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    assert!(
        text.contains("GATE UNKNOWN: no seed was explored"),
        "{text}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<skipped message=\"the time budget ran out"),
        "{xml}"
    );
}

/// Goal: replay's verdict line, other-violations line and exit code agree
/// (issue 11 item 9): a run that violates another clause than the recorded
/// one is never `FIXED` with exit 1. Method: the recording-idor scenario,
/// relabelled as an erasure finding, still leaks (refusal) on replay.
#[test]
fn replay_never_says_fixed_with_a_violation() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/recording-idor.toml"
    ))
    .unwrap()
    .replace("clause = \"refusal\"", "clause = \"erasure\"");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relabelled.toml");
    std::fs::write(&file, text).unwrap();
    let out = chaperone(&["replay", file.to_str().unwrap(), "--repeat", "2"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("FIXED"), "{text}");
    assert!(text.contains("OTHER VIOLATION 2/2: "), "{text}");
    assert!(
        text.contains("(the scenario records erasure, reproduced 0/2)"),
        "{text}"
    );
}

/// Goal: clap errors keep their meaning (issue 11, newcomer friction): a
/// missing command or argument shows the usage on one line, not the first
/// line of the about text. Method: `chaperone`, `chaperone images`,
/// `chaperone replay`.
#[test]
fn usage_errors_show_the_usage() {
    for (args, needle) in [
        (&[][..], "Usage: chaperone <COMMAND>; commands: run, replay"),
        (
            &["images"][..],
            "Usage: chaperone images <COMMAND>; commands: build",
        ),
        (&["replay"][..], "<FILE> (Usage: chaperone replay <FILE>"),
    ] {
        let out = chaperone(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(!err.contains("Hunts cross-patient"), "{err}");
    }
}

/// Goal: a run without a finding leaves no empty output directory, a pass
/// says what to try next, and the race only soak can see is named
/// (newcomer friction). Method: clean and upgrade-shared-slot runs into a
/// directory that does not exist yet.
#[test]
fn a_pass_leaves_no_empty_directory_and_says_what_next() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("found");
    let out_arg = out_dir.to_str().unwrap();
    let clean = chaperone(&["run", "--seed", "1", "--cases", "200", "--out", out_arg]);
    let text = stdout(&clean);
    assert_eq!(clean.status.code(), Some(0), "{text}");
    assert!(!out_dir.exists(), "an empty {out_arg} was created");
    assert!(
        text.contains("Next: plant the 2020 incident and watch it found: `cargo run --release -- run --fault upgrade-latest-call`"),
        "{text}"
    );
    let race = chaperone(&[
        "run",
        "--fault",
        "upgrade-shared-slot",
        "--seed",
        "1",
        "--cases",
        "200",
        "--out",
        out_arg,
    ]);
    let text = stdout(&race);
    assert_eq!(race.status.code(), Some(0), "{text}");
    assert!(text.contains("soak --fault upgrade-shared-slot"), "{text}");
    let lonely = chaperone(&[
        "run",
        "--patients-max",
        "1",
        "--seed",
        "1",
        "--cases",
        "50",
        "--out",
        out_arg,
    ]);
    let text = stdout(&lonely);
    assert_eq!(lonely.status.code(), Some(3), "{text}");
    assert!(text.contains("raise --patients-max to 2 or more"), "{text}");
}
