//! The command line: `run`, `replay`, `soak`, `faults`.
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
    /// Many concurrent patients for a while: live progress, a journal, a report.
    Soak(SoakArgs),
    /// List the reference clinic's plantable faults.
    Faults,
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
struct SoakArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Concurrent simulated patients.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    patients: u32,
    /// How long to run (`90s`, `10m`, `2h`). Default 60s, or unbounded with --ops-max.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many operations (deterministic bound for tests and CI).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    ops_max: Option<u64>,
    /// Most operations per second over all patients (default: as fast as the target answers).
    #[arg(long, value_name = "OPS_PER_S")]
    rate: Option<f64>,
    /// Seed of the patients' choices. Default: random, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// `balanced` (the hunting mix) or `read-heavy` (mostly history views).
    #[arg(long, default_value = "balanced")]
    mix: crate::runner::soak::Mix,
    /// Steps each patient takes before a fresh patient takes its place.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    steps_per_patient_max: u64,
    /// Where the journal, scenarios and report files go.
    #[arg(long, default_value = "soak-report", value_name = "DIR")]
    report: PathBuf,
    /// No progress bar: one status line every 10 seconds (for CI logs).
    #[arg(long)]
    quiet: bool,
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
        Command::Soak(args) => soak(args),
        Command::Faults => {
            faults();
            Ok(0)
        }
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
            patients_max: u32::from(args.patients_max),
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
            groups: Vec::new(),
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

/// Live soak progress: an indicatif bar on a terminal, otherwise (or with
/// `--quiet`) one status line every ten seconds, for CI logs.
struct SoakBar {
    bar: Option<indicatif::ProgressBar>,
    last_line: Option<std::time::Instant>,
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl SoakBar {
    fn new(quiet: bool) -> SoakBar {
        if quiet || !std::io::stderr().is_terminal() {
            return SoakBar {
                bar: None,
                last_line: None,
            };
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        SoakBar {
            bar: Some(bar),
            last_line: None,
        }
    }
}

impl crate::runner::soak::SoakProgress for SoakBar {
    fn tick(&mut self, s: &crate::runner::soak::Snapshot) {
        let remaining = match (s.remaining, s.ops_max) {
            (Some(left), _) => format!("{} left", hms(left)),
            (None, Some(max)) => format!("{}/{max} ops", s.ops),
            (None, None) => "until stopped".to_string(),
        };
        let line = format!(
            "{} elapsed, {remaining} | {} ops, {:.0} ops/s | {} active patients | {} violations | {} errors | p99 {:.1} ms",
            hms(s.elapsed),
            s.ops,
            s.ops_per_s,
            s.active,
            s.violations,
            s.errors,
            s.latency_ms_p99
        );
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= Duration::from_secs(10));
                if due {
                    eprintln!("soak: {line}");
                    self.last_line = Some(std::time::Instant::now());
                }
            }
        }
    }

    fn finding(&mut self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(format!("violation: {line}")),
            None => eprintln!("violation: {line}"),
        }
    }
}

impl Drop for SoakBar {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn soak(args: SoakArgs) -> Result<u8, Failure> {
    use crate::runner::soak::{self as soaking, SoakConfig};
    let spec = args.target.target.clone().unwrap_or(TargetSpec::Embedded);
    let faults = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &faults)?;
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(usage(
            "--rate must be a positive number of operations per second",
        ));
    }
    let seed_given = args.seed.is_some();
    let config = SoakConfig {
        seed: args.seed.unwrap_or_else(random_seed),
        patients: args.patients,
        duration: match (args.duration, args.ops_max) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(60)),
        },
        ops_max: args.ops_max,
        rate: args.rate,
        mix: args.mix,
        report_dir: args.report.clone(),
        steps_per_patient_max: args.steps_per_patient_max as usize,
        ..SoakConfig::default()
    };
    println!(
        "chaperone soak | target {spec} | faults {} | seed {} | patients {} | duration {} | ops-max {} | rate {} | mix {} | steps per patient {} | report {}",
        fault_list(&faults),
        config.seed,
        config.patients,
        config
            .duration
            .map_or("unbounded".to_string(), |d| humantime::format_duration(d)
                .to_string()),
        config.ops_max.map_or("none".to_string(), |n| n.to_string()),
        config
            .rate
            .map_or("unlimited".to_string(), |r| format!("{r} ops/s")),
        config.mix.name(),
        config.steps_per_patient_max,
        config.report_dir.display()
    );
    if !seed_given {
        println!(
            "(random seed; pass --seed {} for the same patient choices)",
            config.seed
        );
    }
    let _ = std::io::stdout().flush();
    let target = Target::new(spec.clone(), faults);
    let rt = runtime()?;
    rt.block_on(target.probe()).map_err(|e| {
        unknown(format!(
            "target {spec} is unreachable or unhealthy: {e}; start it or check --target"
        ))
    })?;
    let outcome = {
        let mut bar = SoakBar::new(args.quiet);
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("interrupted: finishing the steps in flight, then writing the report");
            } else {
                std::future::pending::<()>().await;
            }
        };
        rt.block_on(soaking::soak(&target, &config, &mut bar, interrupt))
    };
    drop(rt);
    let outcome = outcome.map_err(|e| match e {
        soaking::SoakError::Io { .. } => usage(e.to_string()),
        soaking::SoakError::Target(_) => unknown(e.to_string()),
    })?;
    let written = crate::report::soak::write(&outcome, &config.report_dir).map_err(|e| {
        usage(format!(
            "cannot write the report into {}: {e}",
            config.report_dir.display()
        ))
    })?;
    let verdict = outcome.verdict();
    println!(
        "{} ops in {:.1} s ({:.0} ops/s), {} patients in all, {} violations, {} errors, {} completeness warnings, peak RSS {}",
        outcome.ops,
        outcome.elapsed.as_secs_f64(),
        outcome.ops as f64 / outcome.elapsed.as_secs_f64().max(1e-6),
        outcome.patients_total,
        outcome.violations,
        outcome.errors,
        outcome.warnings,
        outcome
            .peak_rss_kib
            .map_or("unknown".to_string(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            ))
    );
    for finding in outcome
        .findings
        .iter()
        .filter(|f| f.scenario.is_some())
        .take(5)
    {
        if let Some(path) = &finding.scenario {
            println!(
                "scenario: {} (replay: chaperone replay {} --repeat 20)",
                path.display(),
                path.display()
            );
        }
    }
    println!(
        "report: {} | {} | {} | {} | journal {}",
        written.html.display(),
        written.markdown.display(),
        written.json.display(),
        written.junit.display(),
        outcome.journal.display()
    );
    match &verdict {
        Verdict::Pass => println!("PASS: no privacy violation."),
        Verdict::Violation => println!("FAIL: privacy violation."),
        Verdict::Unknown(why) => println!("UNKNOWN: {why}."),
    }
    Ok(verdict.exit_code())
}
