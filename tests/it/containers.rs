//! The containers target against a real Docker engine.
//!
//! Goal: the reference clinic as two containers behaves as the embedded one
//! does for the harness: every fault of the detection matrix is found, the
//! clean clinic passes, findings replay on a fresh clinic whatever earlier
//! cases left behind, a dead media service is unknown (exit 3) and never a
//! pass, Ctrl-C removes everything, a target file is honoured, and the gate
//! runs end to end. Through the FHIR binding, `binding check` passes and the
//! two FHIR-only faults are found. Every test checks that its run left no container or
//! network behind.
//!
//! Method: these tests run whenever a Docker engine answers; with `CI` set they
//! are required, and no engine is a failure. One clinic image, built once per
//! test run from the release clinic binary (`cargo build --release -p clinic`
//! first if it is missing), serves every test. Seeds are fixed.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use chaperone::model;
use chaperone::oracle::Canaries;
use chaperone::runner::{self, CaseEnd, CheckConfig, Progress, Verdict};
use chaperone::target::Target;
use chaperone::target::containers::{self, RUN_LABEL};
use chaperone::target::images::{self, ClinicImage};
use clinic::{Fault, FaultSet};
use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
};

use super::cli::{chaperone, stderr, stdout};

type Lines = std::io::Lines<BufReader<std::process::ChildStdout>>;
use super::detection::expected_clauses;
use super::*;

/// Run `f` with a Docker client on a runtime of its own (usable from sync code
/// and from inside another runtime's callbacks).
fn with_docker<T: Send + 'static>(
    f: impl FnOnce(Docker) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>> + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let docker = containers::docker().await.expect("docker engine");
            f(docker).await
        })
    })
    .join()
    .expect("docker thread")
}

/// Whether the container tests run: an engine answers, or `CI` demands one.
fn engine() -> bool {
    static ENGINE: OnceLock<Result<(), String>> = OnceLock::new();
    let answer = ENGINE.get_or_init(|| {
        std::thread::spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(containers::docker())
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .join()
        .expect("engine thread")
    });
    match answer {
        Ok(()) => {
            clinic_image();
            true
        }
        Err(why) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so the container tests are required, but {why}")
        }
        Err(why) => {
            eprintln!("skipping a container test: {why}");
            false
        }
    }
}

/// The release clinic binary, built first if missing.
fn clinic_binary() -> std::path::PathBuf {
    if let Ok(path) = images::clinic_binary() {
        return path;
    }
    // target/debug/deps/it-HASH -> target
    let exe = std::env::current_exe().expect("test executable");
    let target_dir = exe
        .ancestors()
        .nth(3)
        .expect("target directory")
        .to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "clinic", "--target-dir"])
        .arg(&target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build --release -p clinic");
    assert!(status.success(), "cargo build --release -p clinic failed");
    images::clinic_binary().expect("the release clinic binary after building it")
}

/// The shared clinic image, built once per test run.
fn clinic_image() -> &'static ClinicImage {
    static IMAGE: OnceLock<ClinicImage> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let binary = clinic_binary();
        with_docker(move |docker| {
            Box::pin(async move {
                images::ensure_clinic_image(&docker, &binary, false)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            })
        })
    })
}

/// Containers and networks still carrying this run's label.
fn leftovers(run_id: &str) -> (usize, usize) {
    let filter = format!("{RUN_LABEL}={run_id}");
    with_docker(move |docker| {
        Box::pin(async move {
            let filters = std::collections::HashMap::from([("label", vec![filter.as_str()])]);
            let containers = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .expect("list containers");
            let networks = docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
                .expect("list networks");
            (containers.len(), networks.len())
        })
    })
}

/// The host addresses a run's containers publish ports on.
fn published_ips(run_id: &str) -> Vec<String> {
    let filter = format!("{RUN_LABEL}={run_id}");
    with_docker(move |docker| {
        Box::pin(async move {
            let filters = std::collections::HashMap::from([("label", vec![filter.as_str()])]);
            let containers = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .expect("list containers");
            containers
                .iter()
                .flat_map(|c| c.ports.clone().unwrap_or_default())
                .filter(|p| p.public_port.is_some())
                .map(|p| p.ip.unwrap_or_default())
                .collect()
        })
    })
}

fn assert_nothing_left(run_id: &str) {
    assert_eq!(
        leftovers(run_id),
        (0, 0),
        "run {run_id} left containers or networks behind"
    );
}

/// Whatever a process with this pid started and left (run ids start with the pid).
fn assert_nothing_left_by(pid: u32) {
    let prefix = format!("{pid}-");
    let left = with_docker(move |docker| {
        Box::pin(async move {
            let filters = std::collections::HashMap::from([("label", vec![RUN_LABEL])]);
            let containers = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .all(true)
                        .filters(&filters)
                        .build(),
                ))
                .await
                .expect("list containers");
            let networks = docker
                .list_networks(Some(
                    ListNetworksOptionsBuilder::new().filters(&filters).build(),
                ))
                .await
                .expect("list networks");
            let ours = |labels: Option<&std::collections::HashMap<String, String>>| {
                labels
                    .and_then(|l| l.get(RUN_LABEL))
                    .is_some_and(|v| v.starts_with(&prefix))
            };
            containers
                .iter()
                .filter(|c| ours(c.labels.as_ref()))
                .count()
                + networks.iter().filter(|n| ours(n.labels.as_ref())).count()
        })
    });
    assert_eq!(left, 0, "process {pid} left containers or networks behind");
}

fn containers_target(faults: &[Fault]) -> Target {
    let set: FaultSet = faults.iter().copied().collect();
    Target::new("containers".parse().expect("containers"), set)
}

fn run_id(target: &Target) -> String {
    target
        .with_environment(|e| e.run_id().to_string())
        .expect("started")
}

/// Each fault is found against containers for at least one of three seeds,
/// and the minimal scenario replays to the same clause on a fresh embedded
/// clinic: nothing an earlier case left in the containers is needed.
/// Interrupts a spawned chaperone when the test ends, as Ctrl-C would: if an
/// assertion fails before the test interrupts it, a long run must not
/// outlive the test (it cleans up its containers on the signal). A process
/// that already exited ignores it.
struct InterruptOnDrop(u32);

impl Drop for InterruptOnDrop {
    fn drop(&mut self) {
        // Only our chaperone: a pid reaped by then may have been reused.
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.0)).unwrap_or_default();
        if !String::from_utf8_lossy(&cmdline).contains("chaperone") {
            return;
        }
        let _ = Command::new("kill")
            .args(["-INT", &self.0.to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

fn detects(fault: Fault) {
    detects_through(&clinic_binding(), fault);
}

/// As `detects`, through `binding`.
fn detects_through(binding: &std::sync::Arc<chaperone::binding::Binding>, fault: Fault) {
    if !engine() {
        return;
    }
    let expected = expected_clauses(fault);
    let rt = runtime();
    let target = containers_target(&[fault]).with_binding(binding.clone());
    rt.block_on(target.ready()).expect("containers start");
    let id = run_id(&target);
    let mut found = None;
    for seed in [1, 2, 3] {
        let config = CheckConfig {
            seed,
            cases: 300,
            ..CheckConfig::default()
        };
        let report = rt.block_on(runner::check(&target, &config, &mut ()));
        assert_ne!(
            report.verdict().exit_code(),
            3,
            "{fault} seed {seed}: {:?}",
            report.verdict()
        );
        if let Some(finding) = report.finding
            && let Some(clause) = finding
                .violations
                .iter()
                .map(|v| v.clause)
                .find(|c| expected.contains(c))
        {
            found = Some((seed, clause, finding));
            break;
        }
    }
    rt.block_on(target.shutdown());
    assert_nothing_left(&id);
    let (seed, clause, finding) =
        found.unwrap_or_else(|| panic!("{fault}: no violation of {expected:?} for seeds 1..=3"));
    let replayed = run_steps_through(binding, &[fault], &finding.steps);
    assert!(
        clauses(&replayed).contains(&clause),
        "{fault} seed {seed}: found against containers but replays on a fresh clinic as {:?}",
        replayed.end
    );
}

#[test]
fn containers_detect_upgrade_latest_call() {
    detects(Fault::UpgradeLatestCall);
}

#[test]
fn containers_detect_upgrade_phantom() {
    detects(Fault::UpgradePhantom);
}

#[test]
fn containers_detect_history_page2_unfiltered() {
    detects(Fault::HistoryPage2Unfiltered);
}

#[test]
fn containers_detect_history_cache_shared() {
    detects(Fault::HistoryCacheShared);
}

#[test]
fn containers_detect_recording_idor() {
    detects(Fault::RecordingIdor);
}

#[test]
fn containers_detect_rebook_reuses_consultation() {
    detects(Fault::RebookReusesConsultation);
}

#[test]
fn containers_detect_erasure_leaves_media() {
    detects(Fault::ErasureLeavesMedia);
}

#[test]
fn containers_detect_media_misroute() {
    detects(Fault::MediaMisroute);
}

#[test]
fn containers_detect_fhir_subject_unchecked_through_the_fhir_binding() {
    detects_through(&fhir_binding(), Fault::FhirSubjectUnchecked);
}

#[test]
fn containers_detect_fhir_next_link_unscoped_through_the_fhir_binding() {
    detects_through(&fhir_binding(), Fault::FhirNextLinkUnscoped);
}

#[test]
fn binding_check_of_the_fhir_binding_passes_against_containers() {
    // Goal: `chaperone binding check bindings/clinic-fhir.toml --target
    // containers` drives every bound action of the FHIR shape against the
    // clinic as two containers, exits 0 and leaves nothing behind.
    if !engine() {
        return;
    }
    let binding = concat!(env!("CARGO_MANIFEST_DIR"), "/bindings/clinic-fhir.toml");
    let child = Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args(["binding", "check", binding, "--target", "containers"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn binding check");
    let pid = child.id();
    let _interrupt = InterruptOnDrop(pid);
    let output = child.wait_with_output().expect("binding check");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("binding `clinic-fhir`"), "{text}");
    assert!(
        text.contains("the binding drives the service: every bound action worked"),
        "{text}"
    );
    assert!(!text.contains('✗'), "{text}");
    // One ✓ line at least per sequential action the binding declares.
    assert!(text.matches('✓').count() >= 8, "{text}");
    assert_nothing_left_by(pid);
}

#[test]
fn the_clean_clinic_in_containers_passes() {
    if !engine() {
        return;
    }
    let rt = runtime();
    let target = containers_target(&[]);
    rt.block_on(target.ready()).expect("containers start");
    let id = run_id(&target);
    let config = CheckConfig {
        seed: 1,
        cases: 200,
        ..CheckConfig::default()
    };
    let report = rt.block_on(runner::check(&target, &config, &mut ()));
    let published = published_ips(&id);
    rt.block_on(target.shutdown());
    assert_eq!(report.verdict(), Verdict::Pass, "{report:?}");
    assert_eq!(
        published,
        vec!["127.0.0.1".to_string(); 2],
        "one port per service, on loopback only"
    );
    assert_eq!(report.cases_run, 200);
    assert_nothing_left(&id);
}

/// Goal: without clean-up a case sees what an earlier one left, and the
/// "finding" would not replay on a fresh clinic; with clean-up, the same case
/// on the same containers ends as it does on a fresh clinic.
///
/// Method: `rebook-reuses-consultation` hands the next booking the consultation
/// of a cancelled appointment with its recordings. Case one: P1 records a
/// call and cancels. Case two, with fresh patients: P1 books and views
/// history. On a fresh clinic case two passes.
#[test]
fn clean_up_keeps_findings_replayable_on_shared_containers() {
    if !engine() {
        return;
    }
    let first = [
        "P1 register",
        "P1 book A1 at d1-09h",
        "P1 start-call A1 -> C1 R1",
        "P1 end-call C1",
        "P1 cancel A1",
    ];
    let second = [
        "P1 register",
        "P1 book A1 at d1-09h",
        "P1 view-history page=1 per-page=10",
    ];
    let parse_steps = |lines: &[&str]| {
        let text = format!(
            "format = 1\ntarget = \"containers\"\nexpect = \"pass\"\nsteps = [{}]\n",
            lines
                .iter()
                .map(|l| format!("\"{l}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        parse(&text).steps
    };
    let (first, second) = (parse_steps(&first), parse_steps(&second));
    let fault = Fault::RebookReusesConsultation;
    assert_eq!(run_steps(&[fault], &second).end, CaseEnd::Passed);

    let rt = runtime();
    let target = containers_target(&[fault]);
    rt.block_on(target.ready()).expect("containers start");
    let id = run_id(&target);
    let limits = model::limits_for(Default::default(), &first);

    // Without clean-up (the driver's steps only): the leftover leaks.
    let dirty = rt.block_on(async {
        for steps in [&first, &second] {
            let case = target.open_case().await.expect("case");
            let mut driver = case.driver();
            let canaries = Canaries::for_case(limits.patients_max, case.tag());
            let run = runner::execute(&mut driver, limits, &canaries, steps, None).await;
            case.close().await;
            if std::ptr::eq(steps, &second) {
                return run;
            }
        }
        unreachable!()
    });
    assert!(
        dirty.violations().is_some(),
        "without clean-up the second case should see the first case's recording: {:?}",
        dirty.end
    );

    // With clean-up (what every runner does on a shared target): each case
    // leaves nothing another can see, so the second case passes as it does
    // on a fresh clinic, even after the dirty runs above.
    let clean = rt.block_on(async {
        runner::run_case(&target, limits, &first, None).await;
        runner::run_case(&target, limits, &second, None).await
    });
    rt.block_on(target.shutdown());
    assert_nothing_left(&id);
    assert_eq!(clean.end, CaseEnd::Passed);
}

/// A progress hook that kills a container once `at` cases are done.
struct KillAt {
    at: u32,
    container: String,
    killed: bool,
}

impl Progress for KillAt {
    fn case_done(&mut self, done: u32, _total: u32) {
        if done == self.at && !self.killed {
            self.killed = true;
            let id = self.container.clone();
            with_docker(move |docker| {
                Box::pin(async move {
                    docker
                        .kill_container(
                            &id,
                            None::<testcontainers::bollard::query_parameters::KillContainerOptions>,
                        )
                        .await
                        .expect("kill media");
                })
            });
        }
    }
}

#[test]
fn killing_the_media_container_mid_run_is_unknown_never_pass() {
    if !engine() {
        return;
    }
    let rt = runtime();
    let target = containers_target(&[]);
    rt.block_on(target.ready()).expect("containers start");
    let id = run_id(&target);
    let media = target
        .with_environment(|e| e.container_id("media").map(str::to_string))
        .flatten()
        .expect("media container");
    let mut kill = KillAt {
        at: 5,
        container: media,
        killed: false,
    };
    let config = CheckConfig {
        seed: 1,
        cases: 10_000,
        ..CheckConfig::default()
    };
    let report = rt.block_on(runner::check(&target, &config, &mut kill));
    rt.block_on(target.shutdown());
    assert!(kill.killed);
    assert!(
        matches!(report.verdict(), Verdict::Unknown(_)),
        "{:?}",
        report.verdict()
    );
    assert_eq!(report.verdict().exit_code(), 3);
    assert!(report.cases_run < 10_000, "the run went on without media");
    assert_nothing_left(&id);
}

/// Spawn `chaperone`, wait for its "containers up ... (run id ID" line.
fn spawn_until_up(args: &[&str]) -> (std::process::Child, String, Lines) {
    spawn_until_up_in_job(args, None)
}

/// [`spawn_until_up`] as part of CI job `job` (`CHAPERONE_RUN_ID`), if given.
fn spawn_until_up_in_job(args: &[&str], job: Option<&str>) -> (std::process::Child, String, Lines) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_chaperone"));
    match job {
        Some(job) => command.env("CHAPERONE_RUN_ID", job),
        None => command.env_remove("CHAPERONE_RUN_ID"),
    };
    let mut child = command
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chaperone");
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    for line in lines.by_ref() {
        let line = line.expect("stdout line");
        seen.push(line.clone());
        if let Some(rest) = line.split("(run id ").nth(1) {
            let id = rest.split(';').next().expect("run id").to_string();
            return (child, id, lines);
        }
    }
    let status = child.wait().expect("wait");
    panic!("chaperone exited ({status}) before its containers were up: {seen:?}");
}

#[test]
fn ctrl_c_removes_every_container_and_the_network() {
    if !engine() {
        return;
    }
    let (mut child, id, lines) = spawn_until_up(&[
        "run",
        "--target",
        "containers",
        "--seed",
        "1",
        "--cases",
        "1000000",
    ]);
    // Keep draining stdout so the child never writes to a closed pipe.
    let drain = std::thread::spawn(move || lines.count());
    assert_ne!(leftovers(&id), (0, 0), "containers are up");
    let (code, err) = interrupt(&mut child, drain);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_nothing_left(&id);
}

/// Interrupt a spawned chaperone as Ctrl-C would, once it has run a moment;
/// wait for it and its stdout `drain`: its exit code and stderr.
fn interrupt(
    child: &mut std::process::Child,
    drain: std::thread::JoinHandle<usize>,
) -> (Option<i32>, String) {
    std::thread::sleep(Duration::from_millis(300));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let status = child.wait().expect("wait");
    drain.join().expect("drain");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).ok();
    (status.code(), err)
}

#[test]
fn two_jobs_on_one_docker_host_clean_up_only_their_own() {
    // Goal: parallel CI jobs sharing one Docker engine do not kill each
    // other: one job's clean-up (`ci/cleanup.sh JOB`, as its last CI step
    // runs it) removes that job's containers and leaves the other job's
    // running, and the other job still ends as it would alone.
    // Method: two `run`s against containers in two jobs at once; job A's
    // clean-up while both are up; then job B is interrupted as a user would.
    if !engine() {
        return;
    }
    let args = [
        "run",
        "--target",
        "containers",
        "--seed",
        "1",
        "--cases",
        "1000000",
    ];
    let job_a = format!("it-job-a-{}", std::process::id());
    let job_b = format!("it-job-b-{}", std::process::id());
    let (mut a, id_a, lines_a) = spawn_until_up_in_job(&args, Some(&job_a));
    // Should an assertion fail first, neither run outlives the test.
    let _interrupt_a = InterruptOnDrop(a.id());
    let drain_a = std::thread::spawn(move || lines_a.count());
    let (mut b, id_b, lines_b) = spawn_until_up_in_job(&args, Some(&job_b));
    let _interrupt_b = InterruptOnDrop(b.id());
    let drain_b = std::thread::spawn(move || lines_b.count());
    assert_ne!(leftovers(&id_a), (0, 0), "job A is up");
    assert_ne!(leftovers(&id_b), (0, 0), "job B is up");

    let cleanup = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/ci/cleanup.sh"))
        .arg(&job_a)
        .output()
        .expect("ci/cleanup.sh");
    assert!(cleanup.status.success(), "{}", stderr(&cleanup));
    assert_nothing_left(&id_a);
    assert_ne!(
        leftovers(&id_b),
        (0, 0),
        "job A's clean-up left job B alone"
    );

    // Job A lost its target: unknown, never a pass.
    let status_a = a.wait().expect("wait A");
    drain_a.join().expect("drain A");
    assert_eq!(status_a.code(), Some(3));
    // Job B still runs against its own services: interrupted, it ends as
    // an interrupted run, not as one whose target died.
    let (code_b, err) = interrupt(&mut b, drain_b);
    assert_eq!(code_b, Some(3), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(!err.contains("did not answer"), "{err}");
    assert_nothing_left(&id_b);
}

#[test]
fn the_cli_run_against_containers_exits_3_when_media_dies() {
    if !engine() {
        return;
    }
    let (child, id, lines) = spawn_until_up(&[
        "run",
        "--target",
        "containers",
        "--seed",
        "1",
        "--cases",
        "1000000",
    ]);
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let filter = format!("{RUN_LABEL}={id}");
    with_docker(move |docker| {
        Box::pin(async move {
            let filters = std::collections::HashMap::from([(
                "label",
                vec![filter.as_str(), "dev.chaperone.service=media"],
            )]);
            let media = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::new()
                        .filters(&filters)
                        .build(),
                ))
                .await
                .expect("list");
            assert_eq!(media.len(), 1);
            docker
                .kill_container(
                    media[0].id.as_deref().expect("id"),
                    None::<testcontainers::bollard::query_parameters::KillContainerOptions>,
                )
                .await
                .expect("kill media");
        })
    });
    let output = child.wait_with_output().expect("wait");
    let text = drain.join().expect("drain").join("\n");
    assert_eq!(output.status.code(), Some(3), "{text}{}", stderr(&output));
    assert!(text.contains("UNKNOWN"), "{text}");
    assert_nothing_left(&id);
}

/// A target file of one's own, honoured field by field: other names, alias,
/// ports, and an explicit tag (an image present locally, never pulled).
#[test]
fn a_target_file_of_ones_own_is_honoured() {
    if !engine() {
        return;
    }
    let image = clinic_image();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mine.toml");
    std::fs::write(
        &file,
        format!(
            r#"api = "front"
[[services]]
name = "store"
image = "{image}"
tag = "{tag}"
command = ["media", "--listen", "0.0.0.0:9000"]
port = 9000
health = "/healthz"
alias = "blobs"

[[services]]
name = "front"
image = "{image}"
tag = "{tag}"
command = ["api", "--media-url", "http://blobs:9000"]
env = {{ CLINIC_LISTEN = "0.0.0.0:7000" }}
faults_env = "CLINIC_FAULTS"
port = 7000
health = "/healthz"
alias = "front"
"#,
            image = image.image,
            tag = image.tag
        ),
    )
    .unwrap();
    let out = dir.path().join("found");
    let output = chaperone(&[
        "run",
        "--target",
        file.to_str().unwrap(),
        "--fault",
        "recording-idor",
        "--seed",
        "1",
        "--cases",
        "300",
        "--out",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}{}", stderr(&output));
    let id = text
        .split("(run id ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("run id printed");
    assert_nothing_left(id);

    // A missing image is a usage error naming it, never a pull.
    let missing = std::fs::read_to_string(&file)
        .unwrap()
        .replace(&image.tag, "no-such-tag");
    std::fs::write(&file, missing).unwrap();
    let output = chaperone(&["run", "--target", file.to_str().unwrap(), "--cases", "1"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no-such-tag") && err.contains("never pulls"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn the_gate_against_containers_passes_and_writes_junit_and_json() {
    if !engine() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let json = dir.path().join("gate.json");
    let scenarios = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let child = Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args([
            "gate",
            "--target",
            "containers",
            "--scenarios",
            scenarios,
            "--seeds",
            "1",
            "--cases",
            "60",
            "--junit",
            junit.to_str().unwrap(),
            "--json",
            json.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the gate");
    let output_pid = child.id();
    let output = child.wait_with_output().expect("gate");
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("GATE PASS"), "{text}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    let n = super::checked_in_scenarios();
    assert!(
        xml.contains(&format!("<testsuite name=\"scenarios\" tests=\"{n}\"")),
        "{xml}"
    );
    assert!(
        xml.contains("<testsuite name=\"explore\" tests=\"1\""),
        "{xml}"
    );
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(value["verdict"], "pass");
    assert_eq!(
        value["scenarios"].as_array().map(Vec::len),
        Some(super::checked_in_scenarios())
    );
    assert!(
        value["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "met")
    );
    assert_nothing_left_by(output_pid);
}

/// A started target dropped without `shutdown` (a panic, an early return)
/// still removes its containers and network, inside a runtime or outside.
#[test]
fn dropping_a_started_target_removes_everything() {
    if !engine() {
        return;
    }
    let rt = runtime();
    let outside = containers_target(&[]);
    rt.block_on(outside.ready()).expect("containers start");
    let outside_id = run_id(&outside);
    drop(outside);
    assert_nothing_left(&outside_id);

    let inside_id = rt.block_on(async {
        let inside = containers_target(&[]);
        inside.ready().await.expect("containers start");
        let id = run_id(&inside);
        drop(inside);
        id
    });
    assert_nothing_left(&inside_id);
}

#[test]
fn ctrl_c_during_the_gate_removes_everything() {
    if !engine() {
        return;
    }
    let scenarios = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chaperone"))
        .args([
            "gate",
            "--target",
            "containers",
            "--scenarios",
            scenarios,
            "--cases",
            "1000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the gate");
    let pid = child.id();
    let _interrupt = InterruptOnDrop(pid);
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // Interrupt once the first scenario is done and a second environment is starting.
    let first = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("scenario "))
        .expect("a scenario line");
    assert!(first.ends_with("... ok"), "{first}");
    std::thread::sleep(Duration::from_millis(500));
    let drain = std::thread::spawn(move || lines.count());
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let status = child.wait().expect("wait");
    drain.join().expect("drain");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err).ok();
    assert_eq!(status.code(), Some(3), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_nothing_left_by(pid);
}
