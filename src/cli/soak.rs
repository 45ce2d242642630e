//! `chaperone soak`: many concurrent patients for a while, with live
//! progress, a journal and a report.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::common::{
    Failure, TargetArgs, check_fault_target, fault_list, interrupted, parse_faults, random_seed,
    ready, runtime, unknown, usage,
};
use crate::runner::Verdict;
use crate::target::TargetSpec;

#[derive(Debug, Args)]
pub(super) struct SoakArgs {
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
    /// Accept a service on which patients never see their own finished
    /// recordings (a pass with completeness warnings instead of unknown).
    #[arg(long)]
    accept_incomplete: bool,
    /// Fail the run (unknown, exit 3) on any completeness warning: a
    /// patient's own finished recording missing from their view.
    #[arg(long)]
    strict: bool,
}

/// Live soak progress: an indicatif bar on a terminal, otherwise (or with
/// `--quiet`) one status line every ten seconds, for CI logs.
pub(super) struct SoakBar {
    bar: Option<indicatif::ProgressBar>,
    last_line: Option<std::time::Instant>,
}

pub(super) fn hms(d: Duration) -> String {
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

/// Replays of each finding's scenario that measure its reproduction rate.
const REPRODUCTION_REPEATS: u32 = 10;

/// A candidate scenario's stagger is also tried closer together, in percent
/// of the spacing the soak saw (0: all at once): a loaded soak's requests
/// take many times longer than a replay's, so its spacing can send a
/// partner after the request it raced has long been answered.
const STAGGER_TRIED_PERCENT: [u64; 3] = [10, 1, 0];

/// How long after the first of them the replays that measure reproduction
/// may go on trying other candidates (pairings and spacings); each
/// finding's scenario as written is measured whatever the budget, so every
/// measured finding states a rate. A candidate's run that has started ends
/// whole (clean-up included), so the budget is overrun by one run at most.
const REPRODUCTION_ALTERNATIVES_BUDGET: Duration = Duration::from_secs(60);

/// Distinct findings (the most frequent) whose scenarios are measured.
const REPRODUCTION_SCENARIOS_MAX: usize = 5;

/// The slowest `--rate`: one operation every 1000 seconds.
const RATE_MIN: f64 = 0.001;

/// The fastest `--rate`.
const RATE_MAX: f64 = 1_000_000.0;

/// `candidate` as written, then with its stagger shrunk to each of
/// [`STAGGER_TRIED_PERCENT`] (an all-zero stagger written as none), without
/// repeating a spacing.
fn spacings(candidate: crate::scenario::Scenario) -> Vec<crate::scenario::Scenario> {
    let closer = STAGGER_TRIED_PERCENT.iter().map(|percent| {
        let mut closer = candidate.clone();
        closer.stagger_us = crate::runner::replay::scaled(&candidate.stagger_us, *percent);
        if closer.stagger_us.iter().flatten().all(|o| *o == 0) {
            closer.stagger_us = Vec::new();
        }
        closer
    });
    let mut spacings: Vec<_> = std::iter::once(candidate.clone()).chain(closer).collect();
    // Shrinking is monotone: equal spacings are neighbours.
    spacings.dedup_by(|a, b| a.stagger_us == b.stagger_us);
    spacings
}

pub(super) fn soak(args: SoakArgs) -> Result<u8, Failure> {
    use crate::runner::soak::{self as soaking, SoakConfig};
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    let faults = parse_faults(&args.target.faults)?;
    check_fault_target(&spec, &faults)?;
    // Below the bound the pause between operations overflows a Duration
    // (1e-300 ops/s); above it the rate is no cap at all.
    if args
        .rate
        .is_some_and(|r| !(r.is_finite() && (RATE_MIN..=RATE_MAX).contains(&r)))
    {
        return Err(usage(format!(
            "--rate must be between {RATE_MIN} and {RATE_MAX} operations per second"
        )));
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
        accept_incomplete: args.accept_incomplete,
        strict: args.strict,
        ..SoakConfig::default()
    };
    outln!(
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
        outln!(
            "(random seed; pass --seed {} for the same patient choices)",
            config.seed
        );
    }
    let _ = std::io::stdout().flush();
    let binding = args.target.binding(&spec)?;
    let target = args
        .target
        .target(spec.clone(), faults)
        .with_binding(binding);
    let rt = runtime()?;
    ready(&rt, &target)?;
    let outcome = {
        let mut bar = SoakBar::new(args.quiet);
        // Ctrl-C or SIGTERM: finish the steps in flight, then write the report.
        let interrupt = async {
            interrupted().await;
            eprintln!("interrupted: finishing the steps in flight, then writing the report");
        };
        rt.block_on(soaking::soak(&target, &config, &mut bar, interrupt))
    };
    let mut outcome = match outcome {
        Ok(outcome) => outcome,
        Err(e) => {
            rt.block_on(target.shutdown());
            return Err(match e {
                soaking::SoakError::Io { .. } => usage(e.to_string()),
                soaking::SoakError::Target(_) => unknown(e.to_string()),
            });
        }
    };
    // How often each distinct finding's scenario reproduces, measured on the
    // same target before it goes: the report states the rate, so a FLAKY
    // replay is expected, not a surprise. Skipped after an interrupt.
    if !outcome.interrupted {
        let measured = outcome
            .distinct
            .iter()
            .take(REPRODUCTION_SCENARIOS_MAX)
            .filter(|d| d.scenario.is_some())
            .count();
        if measured > 0 {
            outln!(
                "replaying {measured} finding(s)' scenarios to measure how often they reproduce (at most {} s for other pairings and spacings)",
                REPRODUCTION_ALTERNATIVES_BUDGET.as_secs()
            );
        }
        let budget_end = std::time::Instant::now() + REPRODUCTION_ALTERNATIVES_BUDGET;
        for d in outcome.distinct.iter_mut().take(REPRODUCTION_SCENARIOS_MAX) {
            let Some(scenario) = d
                .scenario
                .as_ref()
                .and_then(|path| crate::scenario::Scenario::read(path).ok())
            else {
                continue;
            };
            // The scenario as written first; then, while it does not
            // reproduce every time, each other pairing of its race's steps,
            // each also with its spacing shrunk. The best replaces the file
            // (a tie keeps the first).
            let candidates = std::iter::once(scenario)
                .chain(d.alternatives.iter().cloned())
                .flat_map(spacings);
            let mut best: Option<(usize, usize)> = None;
            let mut interrupted_now = false;
            for (n, candidate) in candidates.enumerate() {
                if best.is_some_and(|(hit, of)| hit == of && of > 0)
                    || (n > 0 && std::time::Instant::now() >= budget_end)
                {
                    break;
                }
                let stop = interrupted();
                // The scenario as written is measured whole; the others stop
                // at the budget (a run that started ends, clean-up included).
                let deadline = (n > 0).then_some(budget_end);
                let replay = crate::runner::replay_until(
                    &target,
                    &candidate,
                    REPRODUCTION_REPEATS,
                    deadline,
                );
                let report = rt.block_on(async {
                    tokio::select! {
                        report = replay => Some(report),
                        () = stop => None,
                    }
                });
                let Some(report) = report else {
                    interrupted_now = true;
                    break;
                };
                if n > 0
                    && report.runs.len() < REPRODUCTION_REPEATS as usize
                    && std::time::Instant::now() >= budget_end
                {
                    // Cut short by the budget: not comparable, and the last.
                    break;
                }
                let rate = (report.reproducing(candidate.expect), report.decided());
                let better = match best {
                    None => true,
                    // hit/of > best_hit/best_of, without division.
                    Some((hit, of)) => rate.1 > 0 && (of == 0 || rate.0 * of > hit * rate.1),
                };
                if better {
                    if n > 0
                        && let Some(path) = &d.scenario
                        && let Err(error) = soaking::write_scenario(path, &candidate)
                    {
                        eprintln!("error: could not write {}: {error}", path.display());
                        continue;
                    }
                    best = Some(rate);
                }
            }
            d.reproduced = best;
            if interrupted_now {
                break;
            }
        }
    }
    rt.block_on(target.shutdown());
    drop(rt);
    let written = crate::report::soak::write(&outcome, &config.report_dir).map_err(|e| {
        usage(format!(
            "cannot write the report into {}: {e}",
            config.report_dir.display()
        ))
    })?;
    let verdict = outcome.verdict();
    outln!(
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
    // One line per distinct finding, with its count: a bug seen thousands
    // of times is one line here, as on stderr.
    for d in outcome.distinct.iter().take(10) {
        outln!("finding: {}× {}: {}", d.count, d.signature, d.first);
        if let Some(path) = &d.scenario {
            let rate = d
                .reproduced
                .map(|(n, of)| format!("; reproduced {n}/{of} on replay"))
                .unwrap_or_default();
            outln!(
                "  scenario: {} (replay: {}{rate})",
                path.display(),
                super::common::replay_command(
                    &path.display().to_string(),
                    &spec,
                    args.target.binding.as_deref()
                ) + " --repeat 20"
            );
        }
    }
    if outcome.distinct.len() > 10 {
        outln!(
            "... {} more distinct findings in the report",
            outcome.distinct.len() - 10
        );
    }
    outln!(
        "report: {} | {} | {} | {} | journal {}",
        written.html.display(),
        written.markdown.display(),
        written.json.display(),
        written.junit.display(),
        outcome.journal.display()
    );
    match &verdict {
        Verdict::Pass => outln!("PASS: no privacy violation."),
        Verdict::Violation => outln!("FAIL: privacy violation."),
        Verdict::Unknown(why) => outln!("UNKNOWN: {why}."),
    }
    Ok(verdict.exit_code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_race_is_also_tried_closer_together_and_all_at_once() {
        // Goal: a loaded soak's spacing (12.9 ms between two upgrades) is
        // tried as written, then at a tenth, a hundredth and all at once,
        // since a replay's requests take a fraction of the soak's; a
        // scenario sent all at once already is tried once.
        let text = "format = 1\ntarget = \"embedded\"\nexpect = \"violation\"\nclause = \"ownership\"\nsteps = [\n  \"P1 register & P2 register\",\n]\nstagger_us = [[0, 12900]]\n";
        let scenario = crate::scenario::Scenario::parse(std::path::Path::new("race.toml"), text)
            .expect("a valid scenario");
        let tried: Vec<Vec<Vec<u64>>> = spacings(scenario.clone())
            .into_iter()
            .map(|s| s.stagger_us)
            .collect();
        assert_eq!(
            tried,
            vec![
                vec![vec![0, 12900]],
                vec![vec![0, 1290]],
                vec![vec![0, 129]],
                vec![]
            ]
        );
        let mut at_once = scenario;
        at_once.stagger_us = Vec::new();
        assert_eq!(spacings(at_once).len(), 1);
    }
}
