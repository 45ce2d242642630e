//! Bad input gets its documented exit code and a one-line error, never a
//! panic and never a pass.

use std::io::Write as _;

use super::cli::{chaperone, stderr};

fn one_line_error(output: &std::process::Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "{err} lacks {needle}");
    assert!(!err.contains("panicked"), "{err}");
}

fn scenario_file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn malformed_scenario_files_exit_2_naming_file_and_line() {
    let cases = [
        (
            "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\n  \"P1 register\",\n  \"P1 dance\",\n]\n",
            ":6: ",
            "unknown action `dance`",
        ),
        (
            "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\"P1 play R1\"]\n",
            ":4: ",
            "not valid at this point",
        ),
        ("this is not toml", ":1: ", "expected"),
        (
            "format = 1\ntarget = \"embedded\"\nfaults = [\"nope\"]\nexpect = \"pass\"\nsteps = [\"P1 register\"]\n",
            ":3: ",
            "unknown fault \"nope\"",
        ),
    ];
    for (text, line, needle) in cases {
        let file = scenario_file(text);
        let path = file.path().to_str().unwrap();
        let out = chaperone(&["replay", path]);
        one_line_error(&out, 2, needle);
        assert!(
            stderr(&out).contains(&format!("{path}{line}")),
            "{}",
            stderr(&out)
        );
    }
    let out = chaperone(&["replay", "/nonexistent/scenario.toml"]);
    one_line_error(&out, 2, "cannot read the scenario file");
}

#[test]
fn unknown_fault_exits_2_listing_the_valid_ones() {
    let out = chaperone(&["run", "--fault", "upgrade-everything", "--seed", "1"]);
    one_line_error(&out, 2, "unknown fault \"upgrade-everything\"");
    assert!(stderr(&out).contains("upgrade-latest-call"));
}

#[test]
fn fault_with_a_url_target_is_a_usage_error() {
    let out = chaperone(&[
        "run",
        "--target",
        "http://127.0.0.1:1",
        "--fault",
        "recording-idor",
    ]);
    one_line_error(
        &out,
        2,
        "--fault plants faults in the embedded clinic or containers only",
    );
}

#[test]
fn an_invalid_target_file_exits_2_naming_the_field() {
    let good = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/ci/targets/clinic.toml"
    ))
    .unwrap();
    let cases = [
        ("port = 8081", "port = 80810", "services[0].port"),
        (
            "alias = \"media\"",
            "alias = \"Media Store\"",
            "services[0].alias",
        ),
        (
            "api = \"api\"",
            "api = \"web\"",
            "api: `web` names no service",
        ),
        ("health = \"/healthz\"", "", "missing field `health`"),
    ];
    for (from, to, needle) in cases {
        let file = scenario_file(&good.replacen(from, to, 1));
        let path = file.path().to_str().unwrap();
        for command in ["run", "gate"] {
            let out = chaperone(&[command, "--target", path]);
            one_line_error(&out, 2, needle);
            assert!(stderr(&out).contains(path), "{}", stderr(&out));
        }
    }
    let out = chaperone(&["run", "--target", "/no/such/target.toml"]);
    one_line_error(&out, 2, "cannot read");
}

#[test]
fn bad_target_and_bad_flags_exit_2() {
    let out = chaperone(&["run", "--target", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown target"));
    let out = chaperone(&["run", "--cases", "many"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_url_exits_3_with_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let out = chaperone(&["run", "--target", &url, "--seed", "1", "--cases", "5"]);
    one_line_error(&out, 3, "is unreachable or unhealthy");
}

#[test]
fn a_target_that_answers_garbage_is_unknown_never_pass() {
    // A server that says 200 with a non-JSON body to everything: healthy to
    // the probe, garbage to the driver.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\nconnection: close\r\n\r\ngarbage",
            );
        }
    });
    let out = chaperone(&["run", "--target", &url, "--seed", "1", "--cases", "5"]);
    let text = super::cli::stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{text}{}", stderr(&out));
    assert!(text.contains("UNKNOWN: the target failed"), "{text}");
    assert!(text.contains("malformed"), "{text}");
}

/// Goal: a scenario file cannot make the harness allocate by alias value or
/// read without end (issue 11 item 1). Method: huge aliases, `/dev/zero` as a
/// scenario and as a fuzz artifact; each is a one-line exit 2, at once.
#[test]
fn hostile_files_are_bounded_usage_errors() {
    for alias in ["P4294967295", "P20000000", "P99999999999999999999"] {
        let file = scenario_file(&format!(
            "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\"{alias} register\"]\n"
        ));
        let out = chaperone(&["replay", file.path().to_str().unwrap()]);
        one_line_error(&out, 2, &format!("alias {alias} is over the limit"));
    }
    let out = chaperone(&["replay", "/dev/zero"]);
    one_line_error(&out, 2, "larger than the 1048576-byte limit");
    let out = chaperone(&["import-fuzz", "/dev/zero"]);
    one_line_error(&out, 2, "larger than the 1048576-byte limit");
    // Target and binding files too (a target file is known by its `.toml`).
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.toml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let zero = zero.to_str().unwrap();
    for flag in ["--target", "--binding"] {
        let out = chaperone(&["run", flag, zero, "--cases", "1", "--seed", "1"]);
        one_line_error(&out, 2, "larger than the 1048576-byte limit");
    }
}

/// Goal: no panic on a tiny rate (issue 11 item 10). Method: `--rate 1e-300`
/// is a usage error, like `--rate 0`.
#[test]
fn a_vanishing_soak_rate_is_a_usage_error() {
    for rate in ["1e-300", "0", "-1", "NaN", "1e300"] {
        let flag = format!("--rate={rate}");
        let out = chaperone(&["soak", &flag, "--ops-max", "1"]);
        one_line_error(&out, 2, "--rate must be between");
    }
}

/// Goal: a closed stdout (`chaperone faults | head -1`) ends quietly with the
/// verdict's exit code (issue 11 item 10). Method: stdout is a pipe whose
/// reading end is already closed, so every write fails.
#[test]
fn a_closed_stdout_is_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .arg("faults")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// Goal: a full stdout (`> /dev/full`) is not a panic either, and the exit
/// code is still the verdict's (issue 11 item 10). Method: `faults` (exit 0)
/// and a run that finds a leak (exit 1) with stdout on /dev/full.
#[test]
fn a_full_stdout_keeps_the_verdicts_exit_code() {
    let out_dir = tempfile::tempdir().unwrap();
    let runs: [(&[&str], i32); 2] = [
        (&["faults"], 0),
        (
            &[
                "run",
                "--fault",
                "recording-idor",
                "--seed",
                "1",
                "--cases",
                "50",
                "--out",
                out_dir.path().to_str().unwrap(),
            ],
            1,
        ),
    ];
    for (args, code) in runs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chaperone"))
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Goal: clean-up scripts are scoped (issue 11 item 6): without a job or
/// run id, `ci/cleanup.sh` refuses (exit 2) instead of removing every run's
/// containers, which on a shared Docker host kills parallel CI jobs; an id
/// that is not a plain word is refused too. Method: both exit 2 before
/// calling docker.
#[test]
fn ci_cleanup_refuses_to_remove_other_runs() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/cleanup.sh");
    for args in [&[][..], &["a;touch /tmp/x"][..], &["$(id)"][..]] {
        let out = std::process::Command::new("bash")
            .arg(script)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: "), "{}", stderr(&out));
    }
}

/// Goal: a soak report directory is never a mix of two runs (issue 11 item
/// 10). Method: a directory holding an earlier file is refused, exit 2, and
/// the file is left as it was.
#[test]
fn a_soak_refuses_a_report_directory_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let earlier = dir.path().join("journal.jsonl");
    std::fs::write(&earlier, "earlier run\n").unwrap();
    let out = chaperone(&[
        "soak",
        "--ops-max",
        "10",
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    one_line_error(&out, 2, "it is not empty");
    assert_eq!(std::fs::read_to_string(&earlier).unwrap(), "earlier run\n");
}
