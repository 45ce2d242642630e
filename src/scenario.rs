//! Scenario files: a minimal sequence of steps, human-readable and diffable.
//!
//! A scenario is a small TOML file with one step per line, in aliases only
//! (`P1`, `A1`, `C1`, `R1`, never service ids), plus the target kind, the
//! clinic faults it was found with and the outcome it is expected to have:
//!
//! ```toml
//! format = 1
//! target = "embedded"
//! faults = ["recording-idor"]
//! expect = "violation"
//! clause = "refusal"
//! steps = [
//!   "P1 register",
//!   "P1 book A1 at d1-09h",
//!   "P1 start-call A1 -> C1 R1",
//!   "P2 register",
//!   "P2 probe R1",
//! ]
//! ```
//!
//! A step line may hold several steps joined by ` & `
//! (`"P1 upgrade C1 -> R3 & P2 upgrade C2 -> R4"`): they are sent together,
//! concurrently, as a soak saw them overlap. Such steps must be by different
//! patients and each valid before the group starts, since the service may see
//! them in any order. Files without `&` mean one step at a time, as before.
//!
//! Reading validates everything: an error names the file, the line and what
//! was expected. Writing then reading gives back the same scenario.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clinic::{Fault, FaultSet};
use serde::Deserialize;
use toml::Spanned;

use crate::model::{self, Step};
use crate::oracle::Clause;
use crate::target::TargetSpec;

/// The file format version this build reads and writes.
pub const FORMAT: u32 = 1;

/// What replaying the scenario should show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No violation (a regression that must stay fixed, or an example).
    Pass,
    /// A violation of this clause.
    Violation(Clause),
}

/// A parsed, validated scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    /// One line on what it shows (optional).
    pub description: Option<String>,
    /// The target it was found against.
    pub target: TargetSpec,
    /// The name of the binding it was found through (`clinic` when the file
    /// names none). It replays through any binding of the same service.
    pub binding: String,
    /// The clinic faults it was found with (empty for a clean clinic).
    pub faults: FaultSet,
    /// The seed of the run that found it, if a run did.
    pub seed: Option<u64>,
    /// The outcome it should have.
    pub expect: Expect,
    /// The steps, valid from the empty model state, in file order.
    pub steps: Vec<Step>,
    /// Sizes of consecutive groups of `steps` sent together (summing to
    /// `steps.len()`); empty when every step is sent alone.
    pub groups: Vec<usize>,
    /// How the run that found it interleaved each group of more than one
    /// step: for each such group, in order, when each of its steps was sent,
    /// in microseconds after the group's first (at most [`STAGGER_US_MAX`]).
    /// Empty: every group's steps are sent at once.
    pub stagger_us: Vec<Vec<u64>>,
}

/// The longest a scenario may delay a step of a group after the group's
/// first (one second: a race a soak sees is sub-millisecond; a replay must
/// not be made to wait by a file).
pub const STAGGER_US_MAX: u64 = 1_000_000;

/// A scenario file that cannot be used, with where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {message}", path = path.display())]
pub struct ScenarioError {
    /// The file.
    pub path: PathBuf,
    /// The line, from 1 (0 when the file could not be read at all).
    pub line: usize,
    /// What was wrong and what was expected.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    format: Spanned<u32>,
    description: Option<String>,
    target: Spanned<String>,
    binding: Option<String>,
    #[serde(default)]
    faults: Vec<Spanned<String>>,
    seed: Option<u64>,
    expect: Spanned<String>,
    clause: Option<Spanned<String>>,
    steps: Spanned<Vec<Spanned<String>>>,
    stagger_us: Option<Spanned<Vec<Vec<u64>>>>,
}

/// The message with control characters escaped: a TOML string can hold a
/// newline (`"x\ny"`), and an error quoting it must still be one line.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// The largest scenario file read: 1 MiB (a shrunk scenario is a few KiB).
pub const FILE_BYTES_MAX: u64 = 1024 * 1024;

/// The most steps one scenario may hold.
pub const STEPS_MAX: usize = 10_000;

/// The highest alias number (`P…`, `A…`, `C…`, `R…`) a scenario may name.
/// Scenarios are renumbered from 1, so a real one stays far below; the bound
/// keeps a hostile file from sizing the model's tables by an alias value.
pub const ALIAS_MAX: u32 = 10_000;

/// Read at most `max` bytes of the file at `path`; a longer file (or one that
/// never ends, like `/dev/zero`) is an error after reading `max + 1` bytes.
pub fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!(
            "the file is larger than the {max}-byte limit"
        )));
    }
    Ok(bytes)
}

/// The first alias word in `step` whose number is over [`ALIAS_MAX`].
fn alias_over_max(step: &str) -> Option<&str> {
    step.split_whitespace().find(|word| {
        let Some(digits) = word.strip_prefix(['P', 'A', 'C', 'R']) else {
            return false;
        };
        !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits
                .parse::<u64>()
                .map_or(true, |n| n > u64::from(ALIAS_MAX))
    })
}

impl Scenario {
    /// Read and validate a scenario file (at most [`FILE_BYTES_MAX`] bytes).
    pub fn read(path: &Path) -> Result<Scenario, ScenarioError> {
        let error = |message: String| ScenarioError {
            path: path.to_path_buf(),
            line: 0,
            message,
        };
        let bytes = read_bounded(path, FILE_BYTES_MAX)
            .map_err(|e| error(format!("cannot read the scenario file: {e}")))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| error("cannot read the scenario file: it is not UTF-8 text".into()))?;
        Scenario::parse(path, &text)
    }

    /// Parse and validate scenario text; `path` is only used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let error = |offset: usize, message: String| ScenarioError {
            path: path.to_path_buf(),
            line: line_of(text, offset),
            message: one_line(&message),
        };
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            let message = e.message().trim().replace('\n', " ");
            error(
                offset,
                format!(
                    "{message} (expected keys: format, description, target, binding, faults, seed, expect, clause, steps, stagger_us)"
                ),
            )
        })?;
        if *raw.format.get_ref() != FORMAT {
            return Err(error(
                raw.format.span().start,
                format!(
                    "format {} is not supported; this build reads format {FORMAT}",
                    raw.format.get_ref()
                ),
            ));
        }
        // Information only: a scenario never chooses where traffic goes.
        let target = TargetSpec::recorded(raw.target.get_ref())
            .map_err(|e| error(raw.target.span().start, format!("{e}")))?;
        let mut faults = FaultSet::default();
        for fault in &raw.faults {
            let parsed: Fault = fault
                .get_ref()
                .parse()
                .map_err(|e| error(fault.span().start, format!("{e}")))?;
            faults.insert(parsed);
        }
        let expect = match (raw.expect.get_ref().as_str(), &raw.clause) {
            ("pass", None) => Expect::Pass,
            ("pass", Some(clause)) => {
                return Err(error(
                    clause.span().start,
                    "`clause` only goes with expect = \"violation\"".into(),
                ));
            }
            ("violation", Some(clause)) => Expect::Violation(
                clause
                    .get_ref()
                    .parse()
                    .map_err(|e: String| error(clause.span().start, e))?,
            ),
            ("violation", None) => {
                return Err(error(
                    raw.expect.span().start,
                    "expect = \"violation\" needs `clause = \"ownership|content|refusal|erasure|completeness\"`".into(),
                ));
            }
            (other, _) => {
                return Err(error(
                    raw.expect.span().start,
                    format!("expect = {other:?} is unknown; expected \"pass\" or \"violation\""),
                ));
            }
        };
        let mut steps = Vec::new();
        let mut groups = Vec::new();
        let mut line_of_step = Vec::new();
        for (n, line) in raw.steps.get_ref().iter().enumerate() {
            let parts: Vec<&str> = line.get_ref().split('&').map(str::trim).collect();
            for part in &parts {
                if let Some(word) = alias_over_max(part) {
                    return Err(error(
                        line.span().start,
                        format!("step {part:?}: alias {word} is over the limit of {ALIAS_MAX}"),
                    ));
                }
                if steps.len() >= STEPS_MAX {
                    return Err(error(
                        line.span().start,
                        format!(
                            "more than {STEPS_MAX} steps; a scenario holds at most {STEPS_MAX}"
                        ),
                    ));
                }
                let step = Step::parse(part)
                    .map_err(|e| error(line.span().start, format!("step {part:?}: {e}")))?;
                steps.push(step);
                line_of_step.push(n);
            }
            groups.push(parts.len());
        }
        if groups.iter().all(|size| *size == 1) {
            groups.clear();
        }
        if steps.is_empty() {
            return Err(error(
                raw.steps.span().start,
                "`steps` is empty; expected at least one step".into(),
            ));
        }
        let caps = model::caps_for(&steps);
        if let Some(i) =
            model::first_invalid_grouped(model::limits_for(caps, &steps), &steps, &groups)
        {
            let line = &raw.steps.get_ref()[line_of_step[i]];
            let together = if groups.is_empty() {
                ""
            } else {
                "; steps sent together (`&`) must be by different patients and each valid before the line"
            };
            return Err(error(
                line.span().start,
                format!(
                    "step `{}` is not valid at this point: it needs an earlier step to have made what it names \
                     (a registered patient, their own booked appointment, an active call, a finished recording) \
                     and must create fresh aliases{together}",
                    steps[i]
                ),
            ));
        }
        let stagger_us = match raw.stagger_us {
            None => Vec::new(),
            Some(stagger) => {
                let at = stagger.span().start;
                let stagger = stagger.into_inner();
                let concurrent: Vec<usize> = groups.iter().copied().filter(|n| *n > 1).collect();
                if stagger.len() != concurrent.len() {
                    return Err(error(
                        at,
                        format!(
                            "`stagger_us` has {} entries, but the steps have {} lines of steps sent together (`&`); \
                             give one list per such line, or drop the key",
                            stagger.len(),
                            concurrent.len()
                        ),
                    ));
                }
                for (n, (offsets, size)) in stagger.iter().zip(&concurrent).enumerate() {
                    if offsets.len() != *size {
                        return Err(error(
                            at,
                            format!(
                                "`stagger_us` entry {} has {} offsets for a line of {size} steps; give one per step",
                                n + 1,
                                offsets.len()
                            ),
                        ));
                    }
                    if let Some(over) = offsets.iter().find(|o| **o > STAGGER_US_MAX) {
                        return Err(error(
                            at,
                            format!(
                                "`stagger_us` entry {}: {over} us is over the limit of {STAGGER_US_MAX} us",
                                n + 1
                            ),
                        ));
                    }
                }
                if stagger.iter().flatten().all(|o| *o == 0) {
                    Vec::new()
                } else {
                    stagger
                }
            }
        };
        Ok(Scenario {
            description: raw.description,
            target,
            binding: raw.binding.unwrap_or_else(|| "clinic".to_string()),
            faults,
            seed: raw.seed,
            expect,
            steps,
            groups,
            stagger_us,
        })
    }

    /// The steps as sent: one slice per group (a single step when sequential).
    pub fn step_groups(&self) -> Vec<&[Step]> {
        if self.groups.is_empty() {
            return self.steps.chunks(1).collect();
        }
        let mut out = Vec::with_capacity(self.groups.len());
        let mut start = 0;
        for &size in &self.groups {
            out.push(&self.steps[start..start + size]);
            start += size;
        }
        out
    }

    /// Whether some steps are sent together.
    pub fn is_concurrent(&self) -> bool {
        self.groups.iter().any(|size| *size > 1)
    }

    /// The file's text: comments, header, then one step per line.
    pub fn to_toml(&self, replay_hint: Option<&str>) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut out = String::new();
        out.push_str("# Chaperone scenario: patient steps in aliases only (no service ids, tokens or bodies).\n");
        if let Some(hint) = replay_hint {
            let _ = writeln!(out, "# Replay: {hint}");
        }
        let _ = writeln!(out, "format = {FORMAT}");
        if let Some(description) = &self.description {
            let _ = writeln!(out, "description = {}", quote(description));
        }
        let _ = writeln!(out, "target = {}", quote(&self.target.to_string()));
        let _ = writeln!(out, "binding = {}", quote(&self.binding));
        let faults: Vec<String> = self.faults.iter().map(|f| quote(f.name())).collect();
        let _ = writeln!(out, "faults = [{}]", faults.join(", "));
        if let Some(seed) = self.seed {
            let _ = writeln!(out, "seed = {seed}");
        }
        match self.expect {
            Expect::Pass => out.push_str("expect = \"pass\"\n"),
            Expect::Violation(clause) => {
                let _ = writeln!(
                    out,
                    "expect = \"violation\"\nclause = {}",
                    quote(clause.name())
                );
            }
        }
        out.push_str("steps = [\n");
        for group in self.step_groups() {
            let line: Vec<String> = group.iter().map(Step::to_string).collect();
            let _ = writeln!(out, "  {},", quote(&line.join(" & ")));
        }
        out.push_str("]\n");
        if !self.stagger_us.is_empty() {
            out.push_str(
                "# When each step of a line sent together is sent, in microseconds after the\n\
                 # line's first: from the run that found it, shrunk towards an unloaded\n\
                 # service's answer times. Replay keeps that order and spacing.\n",
            );
            let lines: Vec<String> = self
                .stagger_us
                .iter()
                .map(|offsets| {
                    let offsets: Vec<String> = offsets.iter().map(u64::to_string).collect();
                    format!("[{}]", offsets.join(", "))
                })
                .collect();
            let _ = writeln!(out, "stagger_us = [{}]", lines.join(", "));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "format = 1\ntarget = \"embedded\"\nfaults = [\"recording-idor\"]\nexpect = \"violation\"\n\
                        clause = \"refusal\"\nsteps = [\n  \"P1 register\",\n  \"P1 book A1 at d1-09h\",\n  \
                        \"P1 start-call A1 -> C1 R1\",\n  \"P2 register\",\n  \"P2 probe R1\",\n]\n";

    #[test]
    fn writes_and_reads_back_the_same_scenario() {
        let scenario = Scenario::parse(Path::new("x.toml"), GOOD).unwrap();
        let text = scenario.to_toml(Some("chaperone replay x.toml"));
        assert_eq!(
            Scenario::parse(Path::new("x.toml"), &text).unwrap(),
            scenario
        );
        assert_eq!(scenario.steps.len(), 5);
    }

    #[test]
    fn concurrent_groups_round_trip_and_are_validated() {
        // Goal: `&` lines read back as groups sent together, write back the
        // same, and a group that could not run in any order is refused.
        let text = "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\n  \"P1 register & P2 register\",\n  \
                    \"P1 book A1 at d1-09h & P2 book A2 at d1-10h\",\n  \"P1 start-call A1 -> C1 R1\",\n  \
                    \"P2 start-call A2 -> C2 R2\",\n  \"P1 upgrade C1 -> R3 & P2 upgrade C2 -> R4\",\n]\n";
        let scenario = Scenario::parse(Path::new("g.toml"), text).unwrap();
        assert_eq!(scenario.groups, vec![2, 2, 1, 1, 2]);
        assert!(scenario.is_concurrent());
        assert_eq!(scenario.step_groups()[4].len(), 2);
        let written = scenario.to_toml(None);
        assert!(written.contains("\"P1 upgrade C1 -> R3 & P2 upgrade C2 -> R4\""));
        assert_eq!(
            Scenario::parse(Path::new("g.toml"), &written).unwrap(),
            scenario
        );
        // Sequential files keep no groups, so they read exactly as before.
        assert!(
            Scenario::parse(Path::new("x.toml"), GOOD)
                .unwrap()
                .groups
                .is_empty()
        );

        for (bad, needle) in [
            ("P1 register & P1 book A1 at d1-09h", "different patients"),
            ("P1 register & P2 probe R1", "not valid at this point"),
        ] {
            let text = format!(
                "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\nsteps = [\n  \"{bad}\",\n]\n"
            );
            let err = Scenario::parse(Path::new("g.toml"), &text).unwrap_err();
            assert_eq!(err.line, 5, "{err}");
            assert!(err.to_string().contains(needle), "{err}");
        }
    }

    #[test]
    fn a_recorded_stagger_round_trips_and_is_bounded() {
        // Goal: `stagger_us` (when each step of a `&` line was sent) reads
        // back as written, is optional, and a file cannot make replay wait
        // long or give offsets for lines that do not exist.
        // Method: a two-group file with a stagger, written and read back;
        // then each bad stagger, which must be a one-line error naming it.
        let steps = "steps = [\n  \"P1 register & P2 register\",\n  \"P1 book A1 at d1-09h\",\n  \
                     \"P1 book A2 at d1-10h & P2 book A3 at d1-10h\",\n]\n";
        let head = "format = 1\ntarget = \"embedded\"\nexpect = \"pass\"\n";
        let text = format!("{head}{steps}stagger_us = [[0, 120], [35, 0]]\n");
        let scenario = Scenario::parse(Path::new("s.toml"), &text).unwrap();
        assert_eq!(scenario.stagger_us, vec![vec![0, 120], vec![35, 0]]);
        let written = scenario.to_toml(None);
        assert!(
            written.contains("stagger_us = [[0, 120], [35, 0]]"),
            "{written}"
        );
        assert_eq!(
            Scenario::parse(Path::new("s.toml"), &written).unwrap(),
            scenario
        );
        // All at once is the same as no stagger, and writes none.
        let zero = format!("{head}{steps}stagger_us = [[0, 0], [0, 0]]\n");
        let zero = Scenario::parse(Path::new("s.toml"), &zero).unwrap();
        assert!(zero.stagger_us.is_empty());
        assert!(!zero.to_toml(None).contains("stagger_us"));

        for (bad, needle) in [
            ("[[0, 120]]", "has 1 entries, but the steps have 2 lines"),
            (
                "[[0, 120], [0]]",
                "entry 2 has 1 offsets for a line of 2 steps",
            ),
            (
                "[[0, 1000001], [0, 0]]",
                "1000001 us is over the limit of 1000000 us",
            ),
            ("[[0, -1], [0, 0]]", "stagger_us"),
            ("\"soon\"", "stagger_us"),
        ] {
            let text = format!("{head}{steps}stagger_us = {bad}\n");
            let err = Scenario::parse(Path::new("s.toml"), &text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.contains(needle), "{bad}: {shown}");
            assert!(!shown.contains('\n'), "{bad}: {shown}");
        }
    }

    #[test]
    fn errors_name_the_line_and_what_was_expected() {
        // Goal: a bad file is pinned to its line with a useful message.
        let cases = [
            (
                GOOD.replace("P2 probe R1", "P2 fly R1"),
                11,
                "unknown action `fly`",
            ),
            (
                GOOD.replace("P2 probe R1", "P2 probe R9"),
                11,
                "not valid at this point",
            ),
            (
                GOOD.replace("recording-idor", "no-such-fault"),
                3,
                "unknown fault",
            ),
            (
                GOOD.replace("clause = \"refusal\"", "clause = \"nope\""),
                5,
                "unknown clause",
            ),
            (
                GOOD.replace("format = 1", "format = 7"),
                1,
                "format 7 is not supported",
            ),
            (
                GOOD.replace("target = \"embedded\"", "target = \"ftp://x\""),
                2,
                "unknown target",
            ),
            (GOOD.replace("expect", "expectation"), 4, "unknown field"),
            ("format = 1\nsteps = [\n".to_string(), 2, "unclosed array"),
            // Found by the scenario_parse fuzz target: quoted values holding
            // a newline made multi-line errors.
            (
                GOOD.replace("recording-idor", "x\\ny"),
                3,
                "unknown fault \"x\\ny\"",
            ),
            (
                GOOD.replace("P2 probe R1", "P2 da\\nnce"),
                11,
                "step \"P2 da\\nnce\"",
            ),
        ];
        for (text, line, needle) in cases {
            let err = Scenario::parse(Path::new("s.toml"), &text).unwrap_err();
            assert_eq!(err.line, line, "{err}");
            assert!(
                err.to_string().starts_with(&format!("s.toml:{line}: ")),
                "{err}"
            );
            assert!(err.to_string().contains(needle), "{err}");
            assert!(!err.to_string().contains('\n'), "multi-line error: {err}");
        }
    }
}
