//! The harness against a hostile target ([`super::hostile_target`]): huge and
//! endless bodies, ids that are URL syntax, a history that lists another
//! user's recording or a million ids, a service that shows nothing, garbage
//! JSON, redirects. Each test runs the real binary with `--target URL` and
//! asserts both the verdict and what the harness sent.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::hostile_target::{Hostile, Misbehaviour};

/// A finished harness run and the most resident memory it was seen using.
struct Run {
    output: Output,
    peak_rss_kib: u64,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    fn text(&self) -> String {
        format!(
            "{}{}",
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Run `chaperone ARGS` and watch its peak RSS; a run that outlives
/// `limit` is killed (the test then fails on its exit code, not by hanging).
fn chaperone_watched(args: &[&str], limit: Duration) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chaperone");
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    // Drain the pipes on their own threads so a chatty child never blocks.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let status = loop {
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        output: Output {
            status,
            stdout: out.join().unwrap(),
            stderr: err.join().unwrap(),
        },
        peak_rss_kib: peak,
    }
}

/// `chaperone run` against `hostile`, fixed seed, a few cases.
fn run_against(hostile: &Hostile, extra: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        "--target",
        &hostile.url,
        "--seed",
        "1",
        "--cases",
        "40",
        "--shrink-runs-max",
        "50",
        "--out",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    chaperone_watched(&args, Duration::from_secs(240))
}

/// Goal: the proxy itself is honest, so every other test's outcome is due to
/// its one misbehaviour. Method: a clean run through it passes with no
/// completeness warning and no request outside the API.
#[test]
fn an_honest_proxy_passes_with_no_warnings() {
    let hostile = Hostile::start(Misbehaviour::Honest);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    assert_eq!(run.code(), Some(0), "{text}");
    assert!(!text.contains("completeness warning"), "{text}");
    assert!(hostile.stray_requests().is_empty());
}

/// Goal: ids are data, not URL syntax (issue 11 item 3). Method: every id the
/// service hands out is `../../xN` or `a?b#cN`; the run must pass, and every
/// request must reach a clinic route with an id the server handed out.
#[test]
fn ids_that_are_url_syntax_are_percent_encoded() {
    let hostile = Hostile::start(Misbehaviour::UrlSyntaxIds);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    let stray = hostile.stray_requests();
    assert!(
        stray.is_empty(),
        "{} requests left the API, first: {:?}",
        stray.len(),
        stray.first()
    );
    assert_eq!(run.code(), Some(0), "{text}");
}

/// Goal: an over-cap body is a target failure, not an allocation (item 1).
/// Method: every history page is 256 MiB; the verdict is unknown, the reason
/// names the cap, and the harness stays far below the body's size.
#[test]
fn a_huge_history_body_is_unknown_and_never_held() {
    let hostile = Hostile::start(Misbehaviour::HugeHistory);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    eprintln!("huge history: peak RSS {} KiB", run.peak_rss_kib);
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(text.contains("byte cap"), "{text}");
    assert!(
        run.peak_rss_kib < 128 * 1024,
        "peak RSS {} KiB for a 256 MiB body",
        run.peak_rss_kib
    );
}

/// Goal: a body that never ends is cut at the media cap, not read until the
/// request timeout (item 1). Method: every playback streams forever; the
/// verdict is unknown and the reason is the cap, not a timeout.
#[test]
fn an_endless_playback_is_cut_at_the_cap() {
    let hostile = Hostile::start(Misbehaviour::EndlessPlayback);
    let run = run_against(&hostile, &["--media-max-bytes", "1048576"]);
    let text = run.text();
    eprintln!("endless playback: peak RSS {} KiB", run.peak_rss_kib);
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(text.contains("byte cap"), "{text}");
    assert!(!text.contains("timed out"), "{text}");
}

/// Goal: clean-up never touches what is not ours (item 2). Method: every
/// history page also lists a recording of a patient outside the harness; the
/// harness reports the leak and never sends a request naming that recording.
#[test]
fn clean_up_never_deletes_a_foreign_recording() {
    let hostile = Hostile::start(Misbehaviour::ForeignInHistory);
    let victim = hostile.victim().unwrap();
    let run = run_against(&hostile, &[]);
    let text = run.text();
    assert_eq!(run.code(), Some(1), "{text}");
    let touching: Vec<_> = hostile
        .log()
        .into_iter()
        .filter(|r| r.target.contains(&victim))
        .collect();
    assert!(
        touching.is_empty(),
        "{} requests named the foreign recording, first: {:?}",
        touching.len(),
        touching.first()
    );
}

/// Goal: a grouped (`&`) replay on a shared target cleans up what its
/// patients created, and only that (item 2). Method: two patients, each
/// with a call upgraded to video (two recordings each), replayed through a
/// proxy whose history pages also list an outside patient's recording; the
/// replay finds the leak, erases each of the four recordings it saw
/// created, and sends nothing that names the outsider's.
#[test]
fn a_grouped_replay_cleans_up_its_own_recordings_only() {
    let hostile = Hostile::start(Misbehaviour::ForeignInHistory);
    let victim = hostile.victim().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("grouped.toml");
    std::fs::write(
        &file,
        "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\n  \"P1 register & P2 register\",\n  \"P1 book A1 at d1-09h & P2 book A2 at d1-10h\",\n  \"P1 start-call A1 -> C1 R1 & P2 start-call A2 -> C2 R2\",\n  \"P1 upgrade C1 -> R3 & P2 upgrade C2 -> R4\",\n  \"P1 end-call C1 & P2 end-call C2\",\n  \"P1 view history page=1 per-page=10 & P2 view history page=1 per-page=10\",\n]\n",
    )
    .unwrap();
    let replay = chaperone_watched(
        &["replay", file.to_str().unwrap(), "--target", &hostile.url],
        Duration::from_secs(60),
    );
    assert_eq!(replay.code(), Some(1), "{}", replay.text());
    let log = hostile.log();
    let deleted: Vec<&str> = log
        .iter()
        .filter(|r| r.method == "DELETE")
        .map(|r| r.target.as_str())
        .collect();
    assert_eq!(deleted.len(), 4, "{deleted:?}");
    assert!(
        deleted.iter().all(|t| t.starts_with("/v1/recordings/")),
        "{deleted:?}"
    );
    let touching: Vec<_> = log.iter().filter(|r| r.target.contains(&victim)).collect();
    assert!(touching.is_empty(), "{touching:?}");
}

/// Goal: clean-up is bounded in requests (item 2): a service that refuses
/// every erasure cannot make it try each recording under every patient's
/// session without end. Method: 40 patients with a call upgraded to video
/// (80 recordings, 3,200 session-recording pairs); every DELETE answers 403.
/// The replay sends at most the 1,000-request budget of erasures and ends
/// unknown, naming the exhausted budget.
#[test]
fn clean_up_stops_at_its_request_budget() {
    let hostile = Hostile::start(Misbehaviour::RefusingErase);
    let patients = 1..=40;
    // One step per line: a sequential case, one driver holding every
    // patient's session (a grouped replay's drivers each hold one).
    let line = |step: &dyn Fn(u32) -> String| {
        patients
            .clone()
            .map(|p| format!("  \"{}\",\n", step(p)))
            .collect::<String>()
    };
    let mut text =
        String::from("format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\n");
    text += &line(&|p| format!("P{p} register"));
    text += &line(&|p| format!("P{p} book A{p} at d1-09h"));
    text += &line(&|p| format!("P{p} start-call A{p} -> C{p} R{p}"));
    text += &line(&|p| format!("P{p} upgrade C{p} -> R{}", 40 + p));
    text += "]\n";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.toml");
    std::fs::write(&file, text).unwrap();
    let replay = chaperone_watched(
        &["replay", file.to_str().unwrap(), "--target", &hostile.url],
        Duration::from_secs(120),
    );
    assert_eq!(replay.code(), Some(3), "{}", replay.text());
    assert!(
        replay
            .text()
            .contains("clean-up ran out of its request or time budget"),
        "{}",
        replay.text()
    );
    let erasures = hostile
        .log()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert!((40..=1_000).contains(&erasures), "{erasures} erasures");
}

/// Goal: a page of a million ids costs neither a million requests nor their
/// memory (items 1 and 2). Method: every history page lists a million ids;
/// the run ends (unknown: over the JSON cap) and sends no DELETE for an id it
/// did not create.
#[test]
fn a_million_ids_cost_no_million_requests() {
    let hostile = Hostile::start(Misbehaviour::MillionIds);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    let deletes_of_listed = hostile
        .log()
        .into_iter()
        .filter(|r| r.method == "DELETE" && r.target.starts_with("/v1/recordings/m"))
        .count();
    assert_eq!(deletes_of_listed, 0, "{text}");
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(text.contains("byte cap"), "{text}");
}

/// Goal: a target that shows nothing cannot pass (item 4). Method: history
/// always empty, playback always 404: unknown with a one-line reason; passing
/// `--accept-incomplete` turns it into a pass with warnings.
#[test]
fn a_blind_service_is_unknown_unless_accepted() {
    let hostile = Hostile::start(Misbehaviour::Blind);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(
        text.contains("patients never saw their own finished recordings"),
        "{text}"
    );
    let accepted = run_against(&hostile, &["--accept-incomplete"]);
    assert_eq!(accepted.code(), Some(0), "{}", accepted.text());
}

/// Goal: garbage JSON is a target failure, never a pass. Method: every
/// successful history page is cut short.
#[test]
fn garbage_json_is_unknown() {
    let hostile = Hostile::start(Misbehaviour::GarbageJson);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(text.contains("not JSON"), "{text}");
}

/// Goal: redirects are never followed (a target cannot send authenticated
/// requests elsewhere). Method: history answers 307 to another server; the
/// verdict is unknown and that server receives nothing.
#[test]
fn redirects_are_not_followed() {
    let hostile = Hostile::start(Misbehaviour::Redirect);
    let run = run_against(&hostile, &[]);
    let text = run.text();
    assert_eq!(run.code(), Some(3), "{text}");
    assert_eq!(hostile.elsewhere_hits(), 0);
}

/// Goal: a scenario file cannot choose where traffic goes (issue 11 item 5).
/// Method: a scenario records a URL target (a server that logs every
/// request); replaying it, and gating a directory holding it, without
/// `--target` sends that server nothing.
#[test]
fn a_scenario_cannot_choose_where_traffic_goes() {
    let hostile = Hostile::start(Misbehaviour::Honest);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("recorded-url.toml");
    std::fs::write(
        &file,
        format!(
            "format = 1\ntarget = \"{}\"\nexpect = \"pass\"\nsteps = [\"P1 register\"]\n",
            hostile.url
        ),
    )
    .unwrap();
    let replay = chaperone_watched(&["replay", file.to_str().unwrap()], Duration::from_secs(60));
    assert_eq!(replay.code(), Some(0), "{}", replay.text());
    let gate = chaperone_watched(
        &[
            "gate",
            "--scenarios",
            dir.path().to_str().unwrap(),
            "--budget-secs",
            "0",
        ],
        Duration::from_secs(60),
    );
    assert!(gate.text().contains("scenario "), "{}", gate.text());
    assert!(
        hostile.log().is_empty(),
        "the scenario's recorded target received {:?}",
        hostile.log()
    );
    // A scenario that records containers, or a target file that would
    // start them, is replayed on the embedded clinic all the same: no
    // container starts and no file of the scenario's choosing is read.
    let target_file = concat!(env!("CARGO_MANIFEST_DIR"), "/ci/targets/clinic.toml");
    for recorded in ["containers", target_file] {
        let file = dir.path().join("recorded-containers.toml");
        std::fs::write(
            &file,
            format!(
                "format = 1\ntarget = \"{recorded}\"\nexpect = \"pass\"\nsteps = [\"P1 register\"]\n"
            ),
        )
        .unwrap();
        let replay =
            chaperone_watched(&["replay", file.to_str().unwrap()], Duration::from_secs(60));
        assert_eq!(replay.code(), Some(0), "{}", replay.text());
        assert!(
            replay.text().contains("| target embedded |"),
            "{recorded}: {}",
            replay.text()
        );
    }
}

/// Goal: a soak keeps its concurrency when patients fail (issue 11 item 7).
/// Method: every end-call answers 500, so every patient that ends a call
/// fails; its slot must get a fresh patient, so the soak still reaches its
/// operation bound (before: the slots died and the soak ended short).
#[test]
fn a_soak_refills_the_slot_of_a_failed_patient() {
    let hostile = Hostile::start(Misbehaviour::FailingEndCall);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let run = chaperone_watched(
        &[
            "soak",
            "--target",
            &hostile.url,
            "--patients",
            "4",
            "--ops-max",
            "600",
            "--seed",
            "1",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let text = run.text();
    assert_eq!(run.code(), Some(3), "{text}");
    assert!(text.contains("600 ops in"), "{text}");
    // More patients failed than there are slots: every failed one was
    // replaced, and each failure ended one patient's life.
    let count = |after: &str, unit: &str| -> u64 {
        text.lines()
            .find_map(|l| {
                let (_, rest) = l.split_once(after)?;
                let (n, _) = rest.split_once(unit)?;
                n.rsplit(' ').next()?.parse().ok()
            })
            .unwrap_or_else(|| panic!("no `{unit}` in the summary: {text}"))
    };
    let errors = count("violations, ", " errors");
    let patients = count("ops/s), ", " patients in all");
    assert!(errors > 4, "{errors} errors: {text}");
    assert!(
        patients >= errors,
        "{patients} patients for {errors} errors: {text}"
    );
}

/// Goal: a second Ctrl-C exits at once (issue 11 item 10). Method: a soak
/// against a target whose history views hang; the first SIGINT waits for
/// the hung steps in flight, the second ends the process with exit 3 and
/// says so (before: it waited for the request timeout).
#[test]
fn a_second_interrupt_exits_at_once() {
    let hostile = Hostile::start(Misbehaviour::HangingHistory);
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let child = Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args([
            "soak",
            "--target",
            &hostile.url,
            "--patients",
            "4",
            "--duration",
            "10m",
            "--seed",
            "1",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // Wait until a history view is in flight (the server logged one).
    let started = Instant::now();
    while !hostile
        .log()
        .iter()
        .any(|r| r.target.starts_with("/v1/me/recordings"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no history view sent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = |pid: &str| {
        Command::new("kill").args(["-INT", pid]).status().unwrap();
    };
    kill(&pid);
    std::thread::sleep(Duration::from_millis(500));
    kill(&pid);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("interrupted again: exiting at once"), "{err}");
}

/// Goal: a soak of a service that shows nothing cannot pass either (issue 11
/// item 4). Method: history always empty, playback always 404: unknown with
/// the reason; `--accept-incomplete` accepts it.
#[test]
fn a_blind_service_under_soak_is_unknown_unless_accepted() {
    let hostile = Hostile::start(Misbehaviour::Blind);
    let dir = tempfile::tempdir().unwrap();
    let soak = |report: &str, extra: &[&str]| {
        let report = dir.path().join(report);
        let mut args = vec![
            "soak",
            "--target",
            &hostile.url,
            "--patients",
            "8",
            "--ops-max",
            "2000",
            "--seed",
            "1",
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        chaperone_watched(&args, Duration::from_secs(120))
    };
    let run = soak("plain", &[]);
    assert_eq!(run.code(), Some(3), "{}", run.text());
    assert!(
        run.text()
            .contains("patients never saw their own finished recordings"),
        "{}",
        run.text()
    );
    let accepted = soak("accepted", &["--accept-incomplete"]);
    assert_eq!(accepted.code(), Some(0), "{}", accepted.text());
}
