//! `chaperone import-fuzz`: a `flows` fuzz crash input into a scenario file.

use std::path::PathBuf;

use clap::Args;

use super::common::{
    Failure, fault_list, parse_faults, runtime, scenario_file_name, unknown, usage, write_file,
};
use crate::report::console;
use crate::target::{Target, TargetSpec};

#[derive(Debug, Args)]
pub(super) struct ImportFuzzArgs {
    /// The crash input (`fuzz/artifacts/flows/crash-...`).
    artifact: PathBuf,
    /// A fault the fuzzer ran with (repeatable; as in CHAPERONE_FUZZ_FAULTS).
    #[arg(long = "fault", value_name = "NAME")]
    faults: Vec<String>,
    /// The binding the fuzzer drove the clinic through (default: the clinic's `/v1`).
    #[arg(long, value_name = "FILE.toml")]
    binding: Option<PathBuf>,
    /// Where to write the scenario. Default: scenarios/found/fuzz-<faults>-<hash>.toml.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// A short, stable name for an artifact's bytes (FNV-1a, 8 hex digits).
pub(super) fn content_hash(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

/// The largest fuzz artifact read: 1 MiB.
const ARTIFACT_BYTES_MAX: u64 = 1024 * 1024;

pub(super) fn import_fuzz(args: ImportFuzzArgs) -> Result<u8, Failure> {
    use crate::import::{ImportError, import};
    // libFuzzer inputs are a few KiB; the bound keeps `/dev/zero` or a huge
    // file from being read whole.
    let bytes = crate::scenario::read_bounded(&args.artifact, ARTIFACT_BYTES_MAX).map_err(|e| {
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
    outln!(
        "chaperone import-fuzz: {} | {} bytes | target embedded | faults {}",
        args.artifact.display(),
        bytes.len(),
        fault_list(&faults)
    );
    let binding = super::common::load_binding(args.binding.as_deref(), &TargetSpec::Embedded)?;
    let target = Target::new(TargetSpec::Embedded, faults).with_binding(binding);
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
    let replay_command = super::common::replay_command(&shown, &TargetSpec::Embedded, None);
    write_file(&path, &imported.scenario.to_toml(Some(&replay_command)))?;
    outln!(
        "decoded {} steps up to the violation; shrunk to {} in {} runs",
        imported.decoded_len,
        imported.scenario.steps.len(),
        imported.shrink_runs
    );
    outln!();
    out!(
        "{}",
        console::explain(&imported.scenario.steps, &imported.violations, None)
    );
    outln!();
    outln!("Scenario written to {shown}");
    outln!("Replay it: {replay_command}");
    Ok(0)
}
