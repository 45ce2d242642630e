//! `chaperone run`: explore random patient flows, shrink the first leak to a
//! scenario file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{
    Bar, Failure, TargetArgs, check_fault_target, fault_list, parse_faults, random_seed, ready,
    replay_command, runtime, scenario_file_name, until_interrupted, writable_dir, write_file,
};
use crate::model::Limits;
use crate::oracle::Clause;
use crate::report::{console, json};
use crate::runner::{self, CheckConfig, Verdict};
use crate::scenario::{Expect, Scenario};
use crate::target::{Target, TargetSpec};

#[derive(Debug, Args)]
pub(super) struct RunArgs {
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

pub(super) fn run(args: RunArgs, process_start: std::time::Instant) -> Result<u8, Failure> {
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
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

    let binding = args.target.binding(&spec)?;
    let target = Target::new(spec.clone(), faults.clone()).with_binding(binding.clone());
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
            binding: binding.name.clone(),
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
        let replay_command = replay_command(&shown, args.target.binding.as_deref());
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
