//! The clinic image, built locally with nothing pulled.
//!
//! The image is `FROM scratch` plus the release `clinic` binary and exactly
//! the shared libraries `ldd` says it loads (the dynamic loader among them),
//! each at the path the binary looks for it. It is tagged by the first 16 hex
//! digits of the binary's SHA-256, so a rebuilt binary gets a new image and an
//! unchanged one is never rebuilt.
//!
//! **Invariants:** nothing is ever pulled (the Dockerfile has no base image);
//! the tag is a pure function of the binary's bytes, the same one
//! `ci/build-images.sh` computes.
//!
//! Knobs: `CHAPERONE_CLINIC_BIN` names the clinic binary; without it the
//! release build next to the running executable is used (`target/release/clinic`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use testcontainers::GenericBuildableImage;
use testcontainers::bollard::Docker;
use testcontainers::runners::AsyncBuilder;

/// The repository of the clinic image.
pub const CLINIC_IMAGE: &str = "chaperone-clinic";

/// Where the clinic binary lives inside the image.
const CLINIC_PATH: &str = "/usr/local/bin/clinic";

/// Why the clinic image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// No clinic binary was found.
    #[error(
        "no clinic binary at {tried}; build it with `cargo build --release -p clinic` or set CHAPERONE_CLINIC_BIN"
    )]
    NoBinary {
        /// The paths looked at.
        tried: String,
    },
    /// The binary or a library could not be read, or `ldd` failed.
    #[error("{0}")]
    Io(String),
    /// The engine refused or failed the build.
    #[error("building {reference} failed: {reason}")]
    Build {
        /// `chaperone-clinic:TAG`.
        reference: String,
        /// The engine's reason, one line.
        reason: String,
    },
}

/// A clinic image present in the local engine.
#[derive(Debug, Clone)]
pub struct ClinicImage {
    /// The binary it was built from.
    pub binary: PathBuf,
    /// `chaperone-clinic`.
    pub image: String,
    /// The binary's content hash.
    pub tag: String,
    /// Whether this call built it (false: it was already there).
    pub built: bool,
    /// Time spent building (zero if it was there).
    pub build_time: Duration,
    /// The image's size as the engine reports it, in bytes.
    pub size_bytes: Option<i64>,
}

impl ClinicImage {
    /// `chaperone-clinic:TAG`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// The clinic binary to put in the image: `CHAPERONE_CLINIC_BIN`, else the
/// release build beside (or above) the running executable, else a sibling.
pub fn clinic_binary() -> Result<PathBuf, ImageError> {
    let mut tried = Vec::new();
    if let Some(path) = std::env::var_os("CHAPERONE_CLINIC_BIN") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        return Err(ImageError::NoBinary {
            tried: format!("{} (CHAPERONE_CLINIC_BIN)", path.display()),
        });
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/release/chaperone, target/debug/chaperone, target/debug/deps/it-HASH.
        for dir in exe.ancestors().skip(1).take(3) {
            let release = dir.join("release").join("clinic");
            if release.is_file() {
                return Ok(release);
            }
            tried.push(release.display().to_string());
            if dir.file_name().is_some_and(|n| n == "release") {
                let sibling = dir.join("clinic");
                if sibling.is_file() {
                    return Ok(sibling);
                }
            }
        }
    }
    let local = PathBuf::from("target/release/clinic");
    if local.is_file() {
        return Ok(local);
    }
    tried.push(local.display().to_string());
    Err(ImageError::NoBinary {
        tried: tried.join(", "),
    })
}

/// The image tag for a binary: the first 16 hex digits of its SHA-256.
pub fn tag_for(binary: &Path) -> Result<String, ImageError> {
    let bytes = std::fs::read(binary)
        .map_err(|e| ImageError::Io(format!("cannot read {}: {e}", binary.display())))?;
    let digest = Sha256::digest(&bytes);
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

/// The shared libraries `binary` loads, the dynamic loader included, by
/// absolute path as `ldd` prints them. Empty for a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let output = std::process::Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|e| ImageError::Io(format!("cannot run ldd: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        // ldd fails on static binaries ("not a dynamic executable"): nothing to add.
        let err = String::from_utf8_lossy(&output.stderr);
        if text.contains("statically linked") || err.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(ImageError::Io(format!(
            "ldd {} failed: {}",
            binary.display(),
            err.lines().next().unwrap_or("no message")
        )));
    }
    let mut libraries = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` or
        // `/lib64/ld-linux-x86-64.so.2 (0x...)`; the vDSO has no path.
        let path = match line.split_once("=>") {
            Some((_, right)) => right.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    libraries.sort();
    libraries.dedup();
    Ok(libraries)
}

/// The engine's size for an image, if it has it.
async fn image_size(docker: &Docker, reference: &str) -> Option<i64> {
    docker
        .inspect_image(reference)
        .await
        .ok()
        .and_then(|i| i.size)
}

/// Make sure the clinic image for `binary` exists: build it if missing.
pub async fn ensure_clinic_image(
    docker: &Docker,
    binary: &Path,
    force: bool,
) -> Result<ClinicImage, ImageError> {
    let tag = tag_for(binary)?;
    let reference = format!("{CLINIC_IMAGE}:{tag}");
    if !force && let Some(size) = image_size(docker, &reference).await {
        return Ok(ClinicImage {
            binary: binary.to_path_buf(),
            image: CLINIC_IMAGE.to_string(),
            tag,
            built: false,
            build_time: Duration::ZERO,
            size_bytes: Some(size),
        });
    }
    let started = Instant::now();
    let libraries = shared_libraries(binary)?;
    let mut build = GenericBuildableImage::new(CLINIC_IMAGE, &tag)
        .with_dockerfile_string(format!(
            "FROM scratch\nCOPY rootfs/ /\nLABEL dev.chaperone.image=clinic\nENTRYPOINT [\"{CLINIC_PATH}\"]\n"
        ))
        .with_file(binary, format!("rootfs{CLINIC_PATH}"));
    for library in &libraries {
        // Copy the file the path resolves to, placed at the path the binary asks for.
        let real = std::fs::canonicalize(library)
            .map_err(|e| ImageError::Io(format!("cannot read {}: {e}", library.display())))?;
        build = build.with_file(real, format!("rootfs{}", library.display()));
    }
    let _built = build.build_image().await.map_err(|e| ImageError::Build {
        reference: reference.clone(),
        reason: e.to_string().replace('\n', " "),
    })?;
    let build_time = started.elapsed();
    Ok(ClinicImage {
        binary: binary.to_path_buf(),
        image: CLINIC_IMAGE.to_string(),
        tag,
        built: true,
        build_time,
        size_bytes: image_size(docker, &reference).await,
    })
}
