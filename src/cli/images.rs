//! `chaperone images build`: the clinic's container image, built locally.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::common::{Failure, runtime, unknown, usage};

#[derive(Debug, Subcommand)]
pub(super) enum ImagesCommand {
    /// Build the clinic image from the release clinic binary, pulling nothing.
    Build(ImagesBuildArgs),
}

#[derive(Debug, Args)]
pub(super) struct ImagesBuildArgs {
    /// The clinic binary [default: CHAPERONE_CLINIC_BIN, else target/release/clinic].
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Rebuild even if an image with this binary's hash exists.
    #[arg(long)]
    force: bool,
}

pub(super) fn images_build(args: ImagesBuildArgs) -> Result<u8, Failure> {
    use crate::target::{containers, images};
    let binary = match args.binary {
        Some(path) if path.is_file() => path,
        Some(path) => return Err(usage(format!("no clinic binary at {}", path.display()))),
        None => images::clinic_binary().map_err(|e| usage(e.to_string()))?,
    };
    let rt = runtime()?;
    let docker = rt
        .block_on(containers::docker())
        .map_err(|e| unknown(e.to_string()))?;
    let image = rt
        .block_on(images::ensure_clinic_image(&docker, &binary, args.force))
        .map_err(|e| unknown(e.to_string()))?;
    let size = image.size_bytes.map_or("unknown size".to_string(), |b| {
        format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
    });
    if image.built {
        outln!(
            "built {} from {} in {:.1}s ({size})",
            image.reference(),
            binary.display(),
            image.build_time.as_secs_f64()
        );
    } else {
        outln!(
            "{} is up to date for {} ({size})",
            image.reference(),
            binary.display()
        );
    }
    Ok(0)
}
