//! The command line: `run`, `replay`, `faults`, `import-fuzz`, `gate`, `images build`.
//!
//! Exit codes (DESIGN.md): 0 pass, 1 privacy violation, 2 usage or
//! configuration error, 3 unknown (the target failed, or too little of the
//! model was exercised). Every error is one line on stderr.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use clinic::{Fault, FaultSet};

use crate::model::Limits;
use crate::oracle::Clause;
use crate::report::{console, json};
use crate::runner::{self, CheckConfig, Progress, Reproduction, Verdict};
use crate::scenario::{Expect, Scenario};
use crate::target::{Target, TargetSpec};

/// Hunt cross-patient privacy leaks in a telehealth service.
#[derive(Debug, Parser)]
#[command(name = "chaperone", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 pass, 1 privacy violation, 2 usage error, 3 unknown (target failed)."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Explore random patient flows, shrink any leak to a minimal scenario file.
    Run(RunArgs),
    /// Replay a scenario file; say REPRODUCED, FLAKY or FIXED.
    Replay(ReplayArgs),
    /// List the reference clinic's plantable faults.
    Faults,
    /// Turn a `flows` fuzz crash input into a scenario file that `replay` reproduces.
    ImportFuzz(ImportFuzzArgs),
    /// The CI gate: replay every scenario in scenarios/, then explore fixed seeds.
    Gate(GateArgs),
    /// Container images.
    #[command(subcommand)]
    Images(ImagesCommand),
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// `embedded` (the reference clinic in-process), `containers` (the clinic as
    /// two containers), a target file FILE.toml, or the base URL of a running clinic.
    // Parsed by `TargetArgs::spec`, not clap, so a target file's validation
    // error stays one line.
    #[arg(long, value_name = "embedded|containers|FILE.toml|URL")]
    target: Option<String>,
    /// Plant a fault in the embedded clinic or the containers (repeatable); see `chaperone faults`.
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Seed of the generator; the same seed explores the same cases. Default: random, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// Cases (random patient flows) to explore.
    #[arg(long, default_value_t = 512)]
    cases: u32,
    /// Most steps in one case.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    steps_max: u64,
    /// Most simulated patients in one case.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1_000))]
    patients_max: u16,
    /// Most cases run while shrinking a finding.
    #[arg(long, default_value_t = 2_000)]
    shrink_runs_max: u32,
    /// Where to write the minimal scenario of a finding.
    #[arg(long, default_value = "scenarios/found", value_name = "DIR")]
    out: PathBuf,
    /// Also write a machine-readable report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReplayArgs {
    /// The scenario file.
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
    /// Replay with no faults, whatever the file records.
    #[arg(long, conflicts_with = "faults")]
    no_faults: bool,
    /// Replay this many times and report the reproduction rate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    repeat: u32,
}

#[derive(Debug, Args)]
struct ImportFuzzArgs {
    /// The crash input (`fuzz/artifacts/flows/crash-...`).
    artifact: PathBuf,
    /// A fault the fuzzer ran with (repeatable; as in CHAPERONE_FUZZ_FAULTS).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// Where to write the scenario. Default: scenarios/found/fuzz-<faults>-<hash>.toml.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl TargetArgs {
    /// The `--target`, parsed; a bad name or target file is a usage error.
    fn spec(&self) -> Result<Option<TargetSpec>, Failure> {
        self.target
            .as_deref()
            .map(|s| s.parse::<TargetSpec>().map_err(|e| usage(e.to_string())))
            .transpose()
    }
}

/// A failure that ends the command with a one-line message and an exit code.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn unknown(message: impl Into<String>) -> Failure {
    Failure {
        code: 3,
        message: message.into(),
    }
}

/// Parse arguments, run the command, return its exit code.
pub fn main() -> ExitCode {
    let process_start = std::time::Instant::now();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if error.use_stderr() => {
            // One line, like every other error; --help has the rest.
            let text = error.to_string();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments");
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see chaperone --help)");
            return ExitCode::from(2);
        }
        Err(help_or_version) => {
            let _ = help_or_version.print();
            return ExitCode::SUCCESS;
        }
    };
    let result = match cli.command {
        Command::Run(args) => run(args, process_start),
        Command::Replay(args) => replay(args),
        Command::Faults => {
            faults();
            Ok(0)
        }
        Command::ImportFuzz(args) => import_fuzz(args),
        Command::Gate(args) => gate(args),
        Command::Images(ImagesCommand::Build(args)) => images_build(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn faults() {
    let width = Fault::ALL.iter().map(|f| f.name().len()).max().unwrap_or(0);
    for fault in Fault::ALL {
        println!("{:width$}  {}", fault.name(), fault.summary());
    }
}

fn parse_faults(names: &[String]) -> Result<FaultSet, Failure> {
    let mut set = FaultSet::default();
    for name in names {
        let fault: Fault = name.parse().map_err(|e| usage(format!("{e}")))?;
        set.insert(fault);
    }
    Ok(set)
}

fn check_fault_target(spec: &TargetSpec, faults: &FaultSet) -> Result<(), Failure> {
    if matches!(spec, TargetSpec::Url(_)) && !faults.is_empty() {
        return Err(usage(
            "--fault plants faults in the embedded clinic or containers only; a URL target runs the faults it was \
             started with (e.g. `clinic serve --fault NAME`), so drop --fault or use --target embedded|containers",
        ));
    }
    if !faults.is_empty() && !spec.plants_faults() {
        return Err(usage(format!(
            "--fault given but no service in {spec} has `faults_env`; drop --fault or add it to the target file"
        )));
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| unknown(format!("cannot start the async runtime: {e}")))?;
    {
        let _inside = rt.enter();
        listen_for_signals();
    }
    Ok(rt)
}

fn fault_list(faults: &FaultSet) -> String {
    if faults.is_empty() {
        "none".to_string()
    } else {
        faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A progress bar on a terminal, nothing otherwise (CI logs stay clean).
struct Bar(Option<indicatif::ProgressBar>);

impl Bar {
    fn new(total: u32) -> Bar {
        if !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = indicatif::ProgressBar::new(u64::from(total));
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} cases {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(Some(bar))
    }
}

impl Progress for Bar {
    fn case_done(&mut self, done: u32, _total: u32) {
        if let Some(bar) = &self.0 {
            bar.set_position(u64::from(done));
        }
    }

    fn shrinking(&mut self, runs: u32, len: usize) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!(
                "| violation found, shrinking: {len} steps after {runs} runs"
            ));
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.finish() % 1_000_000
}

fn scenario_file_name(spec: &TargetSpec, faults: &FaultSet, seed: u64) -> String {
    let label = match spec {
        TargetSpec::Url(_) => "url".to_string(),
        TargetSpec::Embedded | TargetSpec::Containers(_) if faults.is_empty() => {
            "clean".to_string()
        }
        TargetSpec::Embedded | TargetSpec::Containers(_) => faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join("+"),
    };
    format!("{label}-seed-{seed}.toml")
}

/// Fail early, before any exploration, if outputs could not be written.
fn writable_dir(dir: &Path) -> Result<(), Failure> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|e| {
        usage(format!(
            "cannot create output directory {}: {e}",
            dir.display()
        ))
    })?;
    let meta =
        std::fs::metadata(dir).map_err(|e| usage(format!("cannot use {}: {e}", dir.display())))?;
    if meta.permissions().readonly() {
        return Err(usage(format!(
            "output directory {} is read-only",
            dir.display()
        )));
    }
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<(), Failure> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| usage(format!("cannot create directory {}: {e}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

fn run(args: RunArgs, process_start: std::time::Instant) -> Result<u8, Failure> {
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    let faults = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &faults)?;
    let seed_given = args.seed.is_some();
    let config = CheckConfig {
        seed: args.seed.unwrap_or_else(random_seed),
        cases: args.cases,
        steps_max: args.steps_max as usize,
        limits: Limits {
            patients_max: args.patients_max,
            ..Limits::default()
        },
        shrink_runs_max: args.shrink_runs_max,
    };
    println!(
        "{}",
        console::header("run", &spec.to_string(), &fault_list(&faults), &config)
    );
    if !seed_given {
        println!(
            "(random seed; pass --seed {} to explore the same cases again)",
            config.seed
        );
    }
    let _ = std::io::stdout().flush();
    writable_dir(&args.out)?;
    if let Some(json) = &args.json {
        writable_dir(json.parent().unwrap_or(Path::new(".")))?;
    }

    let target = Target::new(spec.clone(), faults.clone());
    let rt = runtime()?;
    ready(&rt, &target)?;
    let setup = process_start.elapsed();
    let report = {
        let mut bar = Bar::new(config.cases);
        until_interrupted(&rt, &target, runner::check(&target, &config, &mut bar))?
    };
    rt.block_on(target.shutdown());
    drop(rt);

    let verdict = report.verdict();
    let mut scenario_path = None;
    let mut late_failure = None;
    if let Some(finding) = &report.finding {
        let clause =
            crate::oracle::primary_clause(&finding.violations).unwrap_or(Clause::Ownership);
        let scenario = Scenario {
            description: None,
            target: spec.clone(),
            faults: faults.clone(),
            seed: Some(config.seed),
            expect: Expect::Violation(clause),
            steps: finding.steps.clone(),
        };
        let path = args
            .out
            .join(scenario_file_name(&spec, &faults, config.seed));
        let shown = path.display().to_string();
        let replay_command = format!("chaperone replay {shown}");
        // The finding is printed whatever happens to the file: it is never lost.
        match write_file(&path, &scenario.to_toml(Some(&replay_command))) {
            Ok(()) => {
                println!();
                print!(
                    "{}",
                    console::finding(finding, Some(&shown), Some(&replay_command))
                );
                scenario_path = Some(shown);
            }
            Err(failure) => {
                println!();
                print!("{}", console::finding(finding, None, None));
                late_failure = Some(failure);
            }
        }
    }
    println!();
    match &verdict {
        Verdict::Pass => println!("PASS: no privacy violation. {}", console::summary(&report)),
        Verdict::Violation => println!("FAIL: privacy violation. {}", console::summary(&report)),
        Verdict::Unknown(why) => println!("UNKNOWN: {why}. {}", console::summary(&report)),
    }
    if let Some(path) = &args.json {
        let fault_names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        let mut value = json::check_report(
            &report,
            &spec.to_string(),
            &fault_names,
            scenario_path.as_deref(),
        );
        if let Some(finding) = &report.finding {
            // For benchmarks: time from process start, not from the start of exploration.
            value["finding"]["found_after_process_start_ms"] =
                ((setup + finding.found_after).as_millis() as u64).into();
        }
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        if let Err(failure) = write_file(path, &format!("{text}\n")) {
            late_failure.get_or_insert(failure);
        }
    }
    match late_failure {
        // A violation keeps exit 1 even if an output could not be written.
        Some(failure) if verdict == Verdict::Violation => {
            eprintln!("error: {}", failure.message);
            Ok(1)
        }
        Some(failure) => Err(failure),
        None => Ok(verdict.exit_code()),
    }
}

fn replay(args: ReplayArgs) -> Result<u8, Failure> {
    let scenario = Scenario::read(&args.file).map_err(|e| usage(e.to_string()))?;
    let spec = match args.target.spec()? {
        Some(spec) => spec,
        None => scenario.target.clone(),
    };
    let explicit = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &explicit)?;
    let faults = if args.no_faults {
        FaultSet::default()
    } else if !explicit.is_empty() {
        explicit
    } else if !spec.plants_faults() {
        // A URL target (or a target file without `faults_env`) runs whatever
        // it was started with.
        FaultSet::default()
    } else {
        scenario.faults.clone()
    };
    let expected = match scenario.expect {
        Expect::Pass => "pass".to_string(),
        Expect::Violation(clause) => format!("violation of {clause}"),
    };
    println!(
        "chaperone replay: {} | {} steps | target {spec} | faults {} | repeat {} | expected {expected}",
        args.file.display(),
        scenario.steps.len(),
        fault_list(&faults),
        args.repeat
    );
    let target = Target::new(spec.clone(), faults);
    let rt = runtime()?;
    ready(&rt, &target)?;
    let report = until_interrupted(
        &rt,
        &target,
        runner::replay(&target, &scenario, args.repeat),
    )?;
    rt.block_on(target.shutdown());
    drop(rt);

    if let Some(violations) = report.runs.iter().find_map(|r| r.violations()) {
        println!();
        print!("{}", console::explain(&scenario.steps, violations, None));
    }
    let decided = report.decided();
    let reproducing = report.reproducing(scenario.expect);
    println!();
    match (scenario.expect, report.reproduction(scenario.expect)) {
        (_, None) => {}
        // A scenario expected to pass is a regression guard, not a bug to fix.
        (Expect::Pass, Some(Reproduction::Fixed)) => {
            println!("PASS 0/{decided} runs violated the property")
        }
        (Expect::Pass, Some(_)) => {
            println!("REGRESSED {reproducing}/{decided} runs violated the property")
        }
        (_, Some(Reproduction::Reproduced)) => println!("REPRODUCED {reproducing}/{decided}"),
        (_, Some(Reproduction::Flaky)) => println!("FLAKY {reproducing}/{decided}"),
        (_, Some(Reproduction::Fixed)) => println!("FIXED 0/{decided}"),
    }
    let clauses = report.clauses();
    if let Expect::Violation(clause) = scenario.expect
        && report.violating() > reproducing
    {
        let names: Vec<&str> = clauses.iter().map(|c| c.name()).collect();
        println!(
            "other violations: {} (the scenario records {clause})",
            names.join(", ")
        );
    }
    if let Some(why) = report.unknown() {
        let unknown_runs = report.runs.len() - decided;
        println!(
            "UNKNOWN in {unknown_runs}/{} run(s): {why}",
            report.runs.len()
        );
    }
    if report.violating() > 0 {
        return Ok(1);
    }
    if decided < report.runs.len() {
        return Ok(3);
    }
    Ok(0)
}

/// A short, stable name for an artifact's bytes (FNV-1a, 8 hex digits).
fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

fn import_fuzz(args: ImportFuzzArgs) -> Result<u8, Failure> {
    use crate::import::{ImportError, import};
    let bytes = std::fs::read(&args.artifact).map_err(|e| {
        usage(format!(
            "cannot read the fuzz artifact {}: {e}",
            args.artifact.display()
        ))
    })?;
    let faults = parse_faults(&args.faults)?;
    let path = args.out.clone().unwrap_or_else(|| {
        let label = scenario_file_name(&TargetSpec::Embedded, &faults, 0);
        let label = label.trim_end_matches("-seed-0.toml");
        PathBuf::from("scenarios/found").join(format!("fuzz-{label}-{}.toml", content_hash(&bytes)))
    });
    println!(
        "chaperone import-fuzz: {} | {} bytes | target embedded | faults {}",
        args.artifact.display(),
        bytes.len(),
        fault_list(&faults)
    );
    let target = Target::new(TargetSpec::Embedded, faults);
    let rt = runtime()?;
    let imported = rt.block_on(import(&target, &bytes)).map_err(|e| {
        let message = format!("{}: {e}", args.artifact.display());
        match e {
            ImportError::Unknown { .. } => unknown(message),
            ImportError::NoSteps | ImportError::NoViolation { .. } => usage(message),
        }
    })?;
    drop(rt);
    let shown = path.display().to_string();
    let replay_command = format!("chaperone replay {shown}");
    write_file(&path, &imported.scenario.to_toml(Some(&replay_command)))?;
    println!(
        "decoded {} steps up to the violation; shrunk to {} in {} runs",
        imported.decoded_len,
        imported.scenario.steps.len(),
        imported.shrink_runs
    );
    println!();
    print!(
        "{}",
        console::explain(&imported.scenario.steps, &imported.violations, None)
    );
    println!();
    println!("Scenario written to {shown}");
    println!("Replay it: {replay_command}");
    Ok(0)
}
// ---------------------------------------------------------------------------
// Containers: readiness, interruption, `images build`, `gate`.

/// Make `target` ready (containers start here), or fail with its exit code:
/// 2 for a set-up the user must fix (a missing image or binary), 3 otherwise.
fn ready(rt: &tokio::runtime::Runtime, target: &Target) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let result = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            result = target.ready() => Some(result),
            () = stop => None,
        }
    });
    match result {
        Some(Ok(())) => {
            if let Some(startup) = target.with_environment(|e| e.startup()) {
                println!(
                    "containers up in {:.1}s (run id {}; removed on exit)",
                    startup.as_secs_f64(),
                    target
                        .with_environment(|e| e.run_id().to_string())
                        .unwrap_or_default()
                );
                let _ = std::io::stdout().flush();
            }
            Ok(())
        }
        Some(Err(e)) => {
            rt.block_on(target.shutdown());
            let code = e.exit_code();
            let message = match e {
                crate::target::ReadyError::Unhealthy(e) => format!(
                    "target {} is unreachable or unhealthy: {e}; start it or check --target",
                    target.spec()
                ),
                crate::target::ReadyError::Start(e) => {
                    format!("target {} could not start: {e}", target.spec())
                }
            };
            Err(Failure { code, message })
        }
        None => {
            rt.block_on(target.shutdown());
            Err(unknown(format!(
                "interrupted after {:.1}s while starting the target; everything started was removed",
                started.elapsed().as_secs_f64()
            )))
        }
    }
}

/// Set once Ctrl-C or SIGTERM (a CI runner cancelling the job) arrived.
static STOP: std::sync::OnceLock<tokio::sync::watch::Receiver<bool>> = std::sync::OnceLock::new();

/// Listen for Ctrl-C and SIGTERM for the rest of the process, from the
/// moment the runtime exists: a signal that arrives between two steps of a
/// command is remembered, not lost. Call inside the runtime.
fn listen_for_signals() {
    STOP.get_or_init(|| {
        let (tx, rx) = tokio::sync::watch::channel(false);
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let interrupt = signal(SignalKind::interrupt()).ok();
            let terminate = signal(SignalKind::terminate()).ok();
            tokio::spawn(async move {
                match (interrupt, terminate) {
                    (Some(mut interrupt), Some(mut terminate)) => {
                        tokio::select! {
                            _ = interrupt.recv() => {}
                            _ = terminate.recv() => {}
                        }
                    }
                    _ => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
                let _ = tx.send(true);
            });
        }
        #[cfg(not(unix))]
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = tx.send(true);
        });
        rx
    });
}

/// Resolves once Ctrl-C or SIGTERM has arrived (at once if it already has).
fn interrupted() -> impl Future<Output = ()> {
    let stop = STOP.get().cloned();
    async move {
        match stop {
            Some(mut stop) => {
                if stop.wait_for(|stopped| *stopped).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

/// Run `work`; on Ctrl-C or SIGTERM remove the target's containers and fail
/// with exit 3 (no verdict).
fn until_interrupted<T>(
    rt: &tokio::runtime::Runtime,
    target: &Target,
    work: impl Future<Output = T>,
) -> Result<T, Failure> {
    let outcome = rt.block_on(async {
        let stop = interrupted();
        tokio::select! {
            out = work => Some(out),
            () = stop => None,
        }
    });
    match outcome {
        Some(out) => Ok(out),
        None => {
            rt.block_on(target.shutdown());
            Err(unknown(
                "interrupted: no verdict; every container started was removed",
            ))
        }
    }
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// Build the clinic image from the release clinic binary, pulling nothing.
    Build(ImagesBuildArgs),
}

#[derive(Debug, Args)]
struct ImagesBuildArgs {
    /// The clinic binary [default: CHAPERONE_CLINIC_BIN, else target/release/clinic].
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Rebuild even if an image with this binary's hash exists.
    #[arg(long)]
    force: bool,
}

fn images_build(args: ImagesBuildArgs) -> Result<u8, Failure> {
    use crate::target::{containers, images};
    let binary = match args.binary {
        Some(path) if path.is_file() => path,
        Some(path) => return Err(usage(format!("no clinic binary at {}", path.display()))),
        None => images::clinic_binary().map_err(|e| usage(e.to_string()))?,
    };
    let rt = runtime()?;
    let docker = rt
        .block_on(containers::docker())
        .map_err(|e| unknown(e.to_string()))?;
    let image = rt
        .block_on(images::ensure_clinic_image(&docker, &binary, args.force))
        .map_err(|e| unknown(e.to_string()))?;
    let size = image.size_bytes.map_or("unknown size".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    });
    if image.built {
        println!(
            "built {} from {} in {:.1}s ({size})",
            image.reference(),
            binary.display(),
            image.build_time.as_secs_f64()
        );
    } else {
        println!(
            "{} is up to date for {} ({size})",
            image.reference(),
            binary.display()
        );
    }
    Ok(0)
}

#[derive(Debug, Args)]
struct GateArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// The checked-in scenarios to replay (every *.toml directly inside).
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    scenarios: PathBuf,
    /// The seeds to explore, in order (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1u64, 2, 3])]
    seeds: Vec<u64>,
    /// Cases per seed.
    #[arg(long, default_value_t = 200)]
    cases: u32,
    /// Most steps in one case.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    steps_max: u64,
    /// Most simulated patients in one case.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1_000))]
    patients_max: u16,
    /// Most cases run while shrinking a finding.
    #[arg(long, default_value_t = 2_000)]
    shrink_runs_max: u32,
    /// No new seed starts after this many seconds (a started seed finishes).
    #[arg(long, default_value_t = 600)]
    budget_secs: u64,
    /// Where to write the minimal scenario of each finding.
    #[arg(long, default_value = "scenarios/found", value_name = "DIR")]
    out: PathBuf,
    /// Write JUnit XML here.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Write a machine-readable report here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// Prints the gate's progress line by line (CI logs), with a bar on a terminal.
struct GatePrinter {
    bar: Bar,
    cases: u32,
}

impl runner::GateProgress for GatePrinter {
    fn scenario_done(&mut self, result: &runner::ScenarioResult) {
        let outcome = match &result.outcome {
            runner::ScenarioOutcome::Met => "ok".to_string(),
            runner::ScenarioOutcome::NotMet(why) => format!("FAILED: {why}"),
            runner::ScenarioOutcome::Unknown(why) => format!("UNKNOWN: {why}"),
            runner::ScenarioOutcome::Skipped(why) => format!("skipped: {why}"),
        };
        println!("scenario {} ... {outcome}", result.file.display());
        let _ = std::io::stdout().flush();
    }

    fn seed_started(&mut self, seed: u64) {
        println!("seed {seed}: exploring {} cases", self.cases);
        let _ = std::io::stdout().flush();
        self.bar = Bar::new(self.cases);
    }

    fn seed_done(&mut self, result: &runner::SeedResult) {
        self.bar = Bar(None);
        match &result.report {
            None => println!(
                "seed {}: skipped (the time budget ran out before it started)",
                result.seed
            ),
            Some(report) => println!(
                "seed {}: {} {}",
                result.seed,
                report.verdict().name().to_uppercase(),
                console::summary(report)
            ),
        }
        let _ = std::io::stdout().flush();
    }

    fn check_progress(&mut self) -> &mut dyn Progress {
        &mut self.bar
    }
}

fn gate(args: GateArgs) -> Result<u8, Failure> {
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    let faults = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &faults)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&args.scenarios)
        .map_err(|e| {
            usage(format!(
                "cannot read scenarios directory {}: {e}",
                args.scenarios.display()
            ))
        })?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut scenarios = Vec::new();
    for file in files {
        let scenario = Scenario::read(&file).map_err(|e| usage(e.to_string()))?;
        scenarios.push((file, scenario));
    }
    let config = runner::GateConfig {
        seeds: args.seeds.clone(),
        check: CheckConfig {
            seed: 0,
            cases: args.cases,
            steps_max: args.steps_max as usize,
            limits: Limits {
                patients_max: args.patients_max,
                ..Limits::default()
            },
            shrink_runs_max: args.shrink_runs_max,
        },
        budget: Duration::from_secs(args.budget_secs),
    };
    println!(
        "chaperone gate | target {spec} | faults {} | {} scenarios from {} | seeds {} | {} cases per seed, \
         steps_max {}, patients_max {}, shrink_runs_max {} | budget {}s",
        fault_list(&faults),
        scenarios.len(),
        args.scenarios.display(),
        args.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(","),
        args.cases,
        args.steps_max,
        args.patients_max,
        args.shrink_runs_max,
        args.budget_secs
    );
    let _ = std::io::stdout().flush();

    let rt = runtime()?;
    let mut printer = GatePrinter {
        bar: Bar(None),
        cases: args.cases,
    };
    // Interrupting drops the gate's future and with it every target it
    // started: their environments remove themselves on drop.
    let report = rt
        .block_on(async {
            let stop = interrupted();
            tokio::select! {
                report = runner::gate(&spec, &faults, &scenarios, &config, &mut printer) => Some(report),
                () = stop => None,
            }
        })
        .ok_or_else(|| unknown("interrupted: no verdict; every container started was removed"))?;
    drop(printer);
    drop(rt);

    let mut scenario_paths = Vec::new();
    for seed in &report.seeds {
        let Some(finding) = seed.report.as_ref().and_then(|r| r.finding.as_ref()) else {
            continue;
        };
        let clause = finding
            .violations
            .iter()
            .map(|v| v.clause)
            .min()
            .unwrap_or(Clause::Ownership);
        let scenario = Scenario {
            description: None,
            target: spec.clone(),
            faults: faults.clone(),
            seed: Some(seed.seed),
            expect: Expect::Violation(clause),
            steps: finding.steps.clone(),
        };
        let path = args.out.join(scenario_file_name(&spec, &faults, seed.seed));
        let shown = path.display().to_string();
        let replay_command = format!("chaperone replay {shown}");
        write_file(&path, &scenario.to_toml(Some(&replay_command)))?;
        println!();
        print!(
            "{}",
            console::finding(finding, Some(&shown), Some(&replay_command))
        );
        scenario_paths.push((seed.seed, shown));
    }

    let verdict = report.verdict();
    let met = report
        .scenarios
        .iter()
        .filter(|s| s.outcome == runner::ScenarioOutcome::Met)
        .count();
    let explored = report.seeds.iter().filter(|s| s.report.is_some()).count();
    let summary = format!(
        "scenarios {met}/{} as expected; seeds explored {explored}/{}; {:.1}s",
        report.scenarios.len(),
        report.seeds.len(),
        report.elapsed.as_secs_f64()
    );
    println!();
    match &verdict {
        Verdict::Pass => println!("GATE PASS: {summary}"),
        Verdict::Violation => println!("GATE FAIL: {summary}"),
        Verdict::Unknown(why) => println!("GATE UNKNOWN: {why}. {summary}"),
    }
    let target_name = spec.to_string();
    if let Some(path) = &args.junit {
        write_file(
            path,
            &crate::report::junit::gate_report(&report, &target_name),
        )?;
    }
    if let Some(path) = &args.json {
        let fault_names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        let value = json::gate_report(&report, &target_name, &fault_names, &scenario_paths);
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        write_file(path, &format!("{text}\n"))?;
    }
    Ok(verdict.exit_code())
}
