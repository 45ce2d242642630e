//! The command line: `run`, `replay`, `faults`, `import-fuzz`.
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
}

#[derive(Debug, Args)]
struct TargetArgs {
    /// `embedded` (the reference clinic in-process) or the base URL of a running clinic.
    #[arg(long, value_name = "embedded|URL")]
    target: Option<TargetSpec>,
    /// Plant a fault in the embedded clinic (repeatable); see `chaperone faults`.
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
            "--fault plants faults in the embedded clinic only; a URL target runs the faults it was started with \
             (e.g. `clinic serve --fault NAME`), so drop --fault or use --target embedded",
        ));
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| unknown(format!("cannot start the async runtime: {e}")))
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
        TargetSpec::Embedded if faults.is_empty() => "clean".to_string(),
        TargetSpec::Embedded => faults
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
    let spec = args.target.target.clone().unwrap_or(TargetSpec::Embedded);
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
    rt.block_on(target.probe()).map_err(|e| {
        unknown(format!(
            "target {spec} is unreachable or unhealthy: {e}; start it or check --target"
        ))
    })?;
    let setup = process_start.elapsed();
    let report = {
        let mut bar = Bar::new(config.cases);
        rt.block_on(runner::check(&target, &config, &mut bar))
    };
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
    let spec = args
        .target
        .target
        .clone()
        .unwrap_or_else(|| scenario.target.clone());
    let explicit = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &explicit)?;
    let faults = if args.no_faults {
        FaultSet::default()
    } else if !explicit.is_empty() {
        explicit
    } else if matches!(spec, TargetSpec::Url(_)) {
        // The file's faults were planted in an embedded clinic; a URL target
        // runs whatever it was started with.
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
    rt.block_on(target.probe()).map_err(|e| {
        unknown(format!(
            "target {spec} is unreachable or unhealthy: {e}; start it or check --target"
        ))
    })?;
    let report = rt.block_on(runner::replay(&target, &scenario, args.repeat));
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
