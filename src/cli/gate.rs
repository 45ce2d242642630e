//! `chaperone gate`: the CI gate; replay every checked-in scenario, then
//! explore fixed seeds within a time budget.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::common::{
    Bar, Failure, NoninterferenceArgs, TargetArgs, check_fault_target, fault_list, interrupted,
    parse_faults, runtime, scenario_file_name, unknown, usage, write_file,
};
use crate::model::Limits;
use crate::oracle::Clause;
use crate::report::{console, json};
use crate::runner::{self, CheckConfig, Progress, Verdict};
use crate::scenario::{Expect, Scenario};
use crate::target::TargetSpec;

#[derive(Debug, Args)]
pub(super) struct GateArgs {
    #[command(flatten)]
    target: TargetArgs,
    #[command(flatten)]
    noninterference: NoninterferenceArgs,
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
    /// Accept a service on which patients never see their own finished
    /// recordings (a pass with completeness warnings instead of unknown).
    #[arg(long)]
    accept_incomplete: bool,
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
pub(super) struct GatePrinter {
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
        outln!("scenario {} ... {outcome}", result.file.display());
        let _ = std::io::stdout().flush();
    }

    fn seed_started(&mut self, seed: u64) {
        outln!("seed {seed}: exploring {} cases", self.cases);
        let _ = std::io::stdout().flush();
        self.bar = Bar::new(self.cases);
    }

    fn seed_done(&mut self, result: &runner::SeedResult) {
        self.bar = Bar(None);
        match &result.report {
            None => outln!(
                "seed {}: skipped (the time budget ran out before it started)",
                result.seed
            ),
            Some(report) => outln!(
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

pub(super) fn gate(args: GateArgs) -> Result<u8, Failure> {
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    let faults = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &faults)?;
    let binding = args.noninterference.apply(args.target.binding(&spec)?);
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
                patients_max: u32::from(args.patients_max),
                ..Limits::default()
            },
            shrink_runs_max: args.shrink_runs_max,
            accept_incomplete: args.accept_incomplete,
            // A gate fails on completeness warnings too (as `run --strict`).
            strict: true,
        },
        budget: Duration::from_secs(args.budget_secs),
        body_limits: args.target.body_limits(),
    };
    outln!(
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

    if scenarios.is_empty() {
        outln!(
            "note: no scenario files (*.toml) in {}: nothing to replay; only the seeds are explored",
            args.scenarios.display()
        );
    }
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
                report = runner::gate(&spec, &binding, &faults, &scenarios, &config, &mut printer) => Some(report),
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
        let clause =
            crate::oracle::primary_clause(&finding.violations).unwrap_or(Clause::Ownership);
        let scenario = Scenario {
            description: None,
            target: spec.clone(),
            binding: binding.name.clone(),
            faults: faults.clone(),
            seed: Some(seed.seed),
            expect: Expect::Violation(clause),
            steps: finding.steps.clone(),
            groups: Vec::new(),
            stagger_us: Vec::new(),
        };
        let path = args.out.join(scenario_file_name(&spec, &faults, seed.seed));
        let shown = path.display().to_string();
        let replay_command =
            super::common::replay_command(&shown, &spec, args.target.binding.as_deref());
        write_file(&path, &scenario.to_toml(Some(&replay_command)))?;
        outln!();
        out!(
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
    outln!();
    match &verdict {
        Verdict::Pass => outln!("GATE PASS: {summary}"),
        Verdict::Violation => outln!("GATE FAIL: {summary}"),
        Verdict::Unknown(why) => outln!("GATE UNKNOWN: {why}. {summary}"),
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
