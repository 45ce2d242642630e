//! `chaperone run`: explore random patient flows, shrink the first leak to a
//! scenario file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::Args;

use super::common::{
    Bar, Failure, NoninterferenceArgs, TargetArgs, check_fault_target, fault_list, parse_faults,
    random_seed, ready, runtime, scenario_file_name, until_interrupted, writable_dir, write_file,
};
use crate::model::Limits;
use crate::oracle::Clause;
use crate::report::{console, json};
use crate::runner::{self, CheckConfig, Verdict};
use crate::scenario::{Expect, Scenario};
use crate::target::TargetSpec;

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    noninterference: NoninterferenceArgs,
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
    /// Accept a service on which patients never see their own finished
    /// recordings (a pass with completeness warnings instead of unknown).
    #[arg(long)]
    accept_incomplete: bool,
    /// Fail the run (unknown, exit 3) on any completeness warning: a
    /// patient's own finished recording missing from their view.
    #[arg(long)]
    strict: bool,
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
        accept_incomplete: args.accept_incomplete,
        strict: args.strict,
    };
    outln!(
        "{}",
        console::header("run", &spec.to_string(), &fault_list(&faults), &config)
    );
    if !seed_given {
        outln!(
            "(random seed; pass --seed {} to explore the same cases again)",
            config.seed
        );
    }
    let _ = std::io::stdout().flush();
    writable_dir(&args.out)?;
    if let Some(json) = &args.json {
        writable_dir(json.parent().unwrap_or(Path::new(".")))?;
    }

    let binding = args.noninterference.apply(args.target.binding(&spec)?);
    let target = args
        .target
        .target(spec.clone(), faults.clone())
        .with_binding(binding.clone());
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
            stagger_us: Vec::new(),
        };
        let path = args
            .out
            .join(scenario_file_name(&spec, &faults, config.seed));
        let shown = path.display().to_string();
        let replay_command =
            super::common::replay_command(&shown, &spec, args.target.binding.as_deref());
        // The finding is printed whatever happens to the file: it is never lost.
        match write_file(&path, &scenario.to_toml(Some(&replay_command))) {
            Ok(()) => {
                outln!();
                out!(
                    "{}",
                    console::finding(finding, Some(&shown), Some(&replay_command))
                );
                scenario_path = Some(shown);
            }
            Err(failure) => {
                outln!();
                out!("{}", console::finding(finding, None, None));
                late_failure = Some(failure);
            }
        }
    }
    outln!();
    match &verdict {
        Verdict::Pass => outln!("PASS: no privacy violation. {}", console::summary(&report)),
        Verdict::Violation => outln!("FAIL: privacy violation. {}", console::summary(&report)),
        Verdict::Unknown(why) => outln!("UNKNOWN: {why}. {}", console::summary(&report)),
    }
    if verdict == Verdict::Pass {
        let me = super::common::invocation();
        if faults.contains(clinic::Fault::UpgradeSharedSlot) {
            // The one planted race: `run` sends one request at a time and
            // cannot see it, so a pass here says nothing about it.
            outln!(
                "note: upgrade-shared-slot is a race between concurrent upgrades, which `run` (one request at a \
                 time) cannot show; hunt it with `{me} soak --fault upgrade-shared-slot`"
            );
        } else if faults.is_empty() && spec == TargetSpec::Embedded {
            outln!(
                "Next: plant the 2020 incident and watch it found: `{me} run --fault upgrade-latest-call` \
                 (`{me} faults` lists the others)"
            );
        }
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
