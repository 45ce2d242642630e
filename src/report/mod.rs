//! Reports: what a run tells people and machines.
//!
//! - [`console`]: the header, the explanation of a finding, the summary.
//! - [`json`]: a machine-readable report.
//! - [`junit`]: JUnit XML for the gate.
//! - [`soak`]: the soak report: HTML, Markdown, JSON, JUnit XML, SVG plots.
//!
//! **Architecture invariant:** reports are built from aliases, clauses and
//! counts only; no service id, token or body can reach them, because the
//! runner never hands them any.

pub mod console;
pub mod json;
pub mod junit;
pub mod soak;

/// Write `bytes` to `path` atomically: into a temporary file beside it, then
/// renamed over it, so a reader (or a killed run) never sees half a report
/// or half a scenario file.
pub fn write_atomic(path: &std::path::Path, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("not a file path"))?;
    let mut temporary = name.to_os_string();
    temporary.push(format!(".tmp-{}", std::process::id()));
    let temporary = path.with_file_name(temporary);
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}
