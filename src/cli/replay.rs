//! `chaperone replay`: replay a scenario file; REPRODUCED, FLAKY or FIXED.

use std::path::PathBuf;

use clap::Args;
use clinic::FaultSet;

use super::common::{
    Failure, TargetArgs, check_fault_target, fault_list, parse_faults, ready, runtime,
    until_interrupted, usage,
};
use crate::report::console;
use crate::runner::{self, Reproduction};
use crate::scenario::{Expect, Scenario};
use crate::target::TargetSpec;

#[derive(Debug, Args)]
pub(super) struct ReplayArgs {
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

pub(super) fn replay(args: ReplayArgs) -> Result<u8, Failure> {
    let scenario = Scenario::read(&args.file).map_err(|e| usage(e.to_string()))?;
    // The scenario's recorded target is information: traffic goes only to
    // the target on the command line, or the embedded clinic by default, so
    // a checked-in file cannot start containers or call a URL.
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    if args.target.target.is_none() && scenario.target != TargetSpec::Embedded {
        outln!(
            "(the scenario was recorded against {}; replaying against the embedded clinic; pass --target to choose)",
            scenario.target
        );
    }
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
    outln!(
        "chaperone replay: {} | {} steps | target {spec} | faults {} | repeat {} | expected {expected}",
        args.file.display(),
        scenario.steps.len(),
        fault_list(&faults),
        args.repeat
    );
    let binding = args.target.binding(&spec)?;
    if let Some(i) = crate::model::first_outside(binding.caps, &scenario.steps) {
        return Err(usage(format!(
            "{}: step `{}` needs an action or view the binding `{}` does not have; replay it through a binding that has it (--binding FILE)",
            args.file.display(),
            scenario.steps[i],
            binding.name
        )));
    }
    let target = args
        .target
        .target(spec.clone(), faults)
        .with_binding(binding);
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
        outln!();
        out!("{}", console::explain(&scenario.steps, violations, None));
    }
    let decided = report.decided();
    let reproducing = report.reproducing(scenario.expect);
    outln!();
    // The verdict line, the other-violations line and the exit code agree:
    // exit 1 whenever any run violated the property, and then the verdict
    // line never says FIXED.
    let clauses = report.clauses();
    let violating = report.violating();
    let names: Vec<&str> = clauses.iter().map(|c| c.name()).collect();
    match (scenario.expect, report.reproduction(scenario.expect)) {
        (_, None) => {}
        // A scenario expected to pass is a regression guard, not a bug to fix.
        (Expect::Pass, Some(Reproduction::Fixed)) => {
            outln!("PASS 0/{decided} runs violated the property")
        }
        (Expect::Pass, Some(_)) => {
            outln!("REGRESSED {reproducing}/{decided} runs violated the property")
        }
        (_, Some(Reproduction::Reproduced)) => outln!("REPRODUCED {reproducing}/{decided}"),
        (_, Some(Reproduction::Flaky)) => outln!("FLAKY {reproducing}/{decided}"),
        (Expect::Violation(clause), Some(Reproduction::Fixed)) if violating > 0 => outln!(
            "OTHER VIOLATION {violating}/{decided}: {} (the scenario records {clause}, reproduced 0/{decided})",
            names.join(", ")
        ),
        (_, Some(Reproduction::Fixed)) => outln!("FIXED 0/{decided}"),
    }
    if let Expect::Violation(clause) = scenario.expect
        && reproducing > 0
        && violating > reproducing
    {
        outln!(
            "other violations: {} (the scenario records {clause})",
            names.join(", ")
        );
    }
    if let Some(why) = report.unknown() {
        let unknown_runs = report.runs.len() - decided;
        outln!(
            "UNKNOWN in {unknown_runs}/{} run(s): {why}",
            report.runs.len()
        );
    }
    if violating > 0 {
        return Ok(1);
    }
    if decided < report.runs.len() {
        return Ok(3);
    }
    Ok(0)
}
