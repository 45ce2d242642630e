//! `chaperone binding ...`: debug a binding against a running service.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Subcommand};

use super::common::{Failure, TargetArgs, ready, runtime, unknown, usage};
use crate::binding::{self, Binding};
use crate::driver::Driver as _;
use crate::target::TargetSpec;

#[derive(Debug, Subcommand)]
pub(super) enum BindingCommand {
    /// Perform every bound action once with fresh patients; one line per action (✓ or ✗ with the reason and a hint).
    Check(CheckArgs),
    /// Draft a binding from an OpenAPI 3 document, with `# TODO` where it could not decide.
    Init(InitArgs),
    /// Print the JSON Schema of binding files (for editors: validation and completion).
    Schema,
}

#[derive(Debug, Args)]
pub(super) struct InitArgs {
    /// The service's OpenAPI 3 document (JSON): a file, or an http:// URL such as http://127.0.0.1:8080/openapi.json.
    #[arg(long, value_name = "FILE|URL")]
    openapi: String,
    /// Write the draft here instead of standard output (refuses to overwrite a file).
    #[arg(long, value_name = "FILE.toml")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The binding file to check.
    file: PathBuf,
    #[command(flatten)]
    target: TargetArgs,
}

pub(super) fn binding(command: BindingCommand) -> Result<u8, Failure> {
    match command {
        BindingCommand::Check(args) => check(args),
        BindingCommand::Init(args) => init(args),
        BindingCommand::Schema => {
            outln!("{}", binding::schema::schema_json());
            Ok(0)
        }
    }
}

fn init(args: InitArgs) -> Result<u8, Failure> {
    let doc = if args.openapi.starts_with("http://") || args.openapi.starts_with("https://") {
        let rt = runtime()?;
        rt.block_on(binding::init::fetch_openapi(&args.openapi))
            .map_err(|e| unknown(format!("--openapi: {e}")))?
    } else {
        let path = std::path::Path::new(&args.openapi);
        let bytes = crate::scenario::read_bounded(path, binding::init::OPENAPI_BYTES_MAX as u64)
            .map_err(|e| {
                usage(format!(
                    "{}: cannot read the OpenAPI document: {e}",
                    path.display()
                ))
            })?;
        binding::init::parse_openapi(&bytes)
            .map_err(|e| usage(format!("{}: {e}", path.display())))?
    };
    binding::init::validate_openapi(&doc).map_err(|e| usage(format!("--openapi: {e}")))?;
    let draft = binding::init::draft_from_openapi(&doc);
    match &args.out {
        None => outln!("{draft}"),
        Some(path) => {
            if path.exists() {
                return Err(usage(format!(
                    "{} exists; choose another --out (a draft never overwrites a file)",
                    path.display()
                )));
            }
            std::fs::write(path, &draft)
                .map_err(|e| usage(format!("cannot write {}: {e}", path.display())))?;
            outln!(
                "wrote {}; next: chaperone binding check {} --target URL",
                path.display(),
                path.display()
            );
        }
    }
    Ok(0)
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    if args.target.binding.is_some() {
        return Err(usage("`binding check FILE` checks FILE; drop --binding"));
    }
    let binding = Arc::new(Binding::load(&args.file).map_err(|e| usage(e.to_string()))?);
    let spec = args.target.spec()?.unwrap_or(TargetSpec::Embedded);
    let faults = super::common::parse_faults(&args.target.faults)?;
    super::common::check_fault_target(&spec, &faults)?;
    outln!(
        "chaperone binding check: {} (binding `{}`, service `{}`) | target {spec}",
        args.file.display(),
        binding.name,
        binding.service
    );
    let target = args
        .target
        .target(spec, faults)
        .with_binding(binding.clone());
    let rt = runtime()?;
    ready(&rt, &target)?;
    let report = rt.block_on(async {
        let case = target.open_case().await?;
        let mut driver = case.driver();
        let report = binding::check::check(&binding, &mut driver).await;
        if case.is_shared() {
            // Best effort: what the check created on a shared service.
            let _ = driver.clean_up().await;
        }
        case.close().await;
        Ok::<_, crate::driver::TargetError>(report)
    });
    rt.block_on(target.shutdown());
    let report = report.map_err(|e| unknown(format!("the target could not be opened: {e}")))?;
    for line in &report.lines {
        outln!("{line}");
    }
    if report.passed() {
        outln!("the binding drives the service: every bound action worked");
        Ok(0)
    } else {
        let failed = report
            .lines
            .iter()
            .filter(|l| l.mark != binding::check::Mark::Ok)
            .count();
        outln!("the service could not be driven: {failed} action(s) did not work");
        Ok(3)
    }
}
