//! The `clinic` binary: fault listing, fault errors, and `serve`.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use clinic::Fault;

fn clinic() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_clinic"));
    for var in [
        "CLINIC_FAULTS",
        "CLINIC_MEDIA_URL",
        "CLINIC_LISTEN",
        "CLINIC_DB",
    ] {
        command.env_remove(var);
    }
    command
}

const VALID: &str = "valid faults: upgrade-latest-call, upgrade-phantom, history-page2-unfiltered, \
    history-cache-shared, recording-idor, rebook-reuses-consultation, erasure-leaves-media, \
    media-misroute, upgrade-shared-slot, fhir-subject-unchecked, fhir-next-link-unscoped, \
    call-owner-unchecked, token-like-match, refusal-reveals-existence, active-call-by-slot, \
    erase-whole-call, binary-outlives-media, total-counts-everyone, erase-by-slot, \
    erase-keeps-stored-media";

#[test]
fn an_unknown_fault_is_a_one_line_error_and_exit_code_2() {
    // Goal: a bad fault name, by flag or by CLINIC_FAULTS, is a usage error
    // naming every valid fault on one line.
    // Method: run `clinic api` and `clinic serve` with a bad name; read stderr.
    let by_flag = clinic()
        .args([
            "api",
            "--media-url",
            "http://127.0.0.1:9",
            "--fault",
            "recording-idor",
            "--fault",
            "bogus",
        ])
        .output()
        .expect("runs");
    let by_env = clinic()
        .args(["serve"])
        .env("CLINIC_FAULTS", "recording-idor, bogus")
        .output()
        .expect("runs");
    for output in [by_flag, by_env] {
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        assert_eq!(stderr, format!("error: unknown fault \"bogus\"; {VALID}\n"));
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn faults_lists_every_fault_with_its_summary() {
    // Goal: `clinic faults` prints one line per fault: name, two spaces or
    // more, summary.
    let output = clinic().arg("faults").output().expect("runs");
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("utf-8");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), Fault::ALL.len());
    for (line, fault) in lines.iter().zip(Fault::ALL) {
        let (name, summary) = line.split_once("  ").expect("two spaces");
        assert_eq!(name, fault.name());
        assert_eq!(summary.trim_start(), fault.summary());
    }
}

#[tokio::test]
async fn serve_prints_both_urls_answers_and_stops_on_sigterm() {
    // Goal: `clinic serve` runs both services, prints `api URL` and
    // `media URL`, and shuts down cleanly on SIGTERM.
    // Method: spawn it, read the two lines, check both health endpoints, send
    // SIGTERM with kill(1) and wait for exit status 0.
    let mut child = clinic()
        .args(["serve", "--fault", "recording-idor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawns");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let api = lines.next().expect("api line").expect("read");
    let media = lines.next().expect("media line").expect("read");
    let api = api.strip_prefix("api ").expect("api prefix").to_owned();
    let media = media
        .strip_prefix("media ")
        .expect("media prefix")
        .to_owned();
    assert!(api.starts_with("http://127.0.0.1:") && media.starts_with("http://127.0.0.1:"));

    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    for (url, service) in [(&api, "api"), (&media, "media")] {
        let body = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect("health")
            .bytes()
            .await
            .expect("body");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(body["service"], service);
    }

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let status = child.wait().expect("waits");
    assert!(status.success(), "{status:?}");
}
