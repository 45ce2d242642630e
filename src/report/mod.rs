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

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::write_atomic;

    #[test]
    fn a_reader_of_the_old_file_never_sees_half_of_the_new_one() {
        // Goal: reports and scenario files are replaced whole (issue 11 item
        // 10). Method: a reader opens the old file; after the write, that
        // reader still reads the old bytes whole (an in-place rewrite would
        // show it truncated or new bytes), the path holds the new bytes, and
        // no temporary file is left; a write that cannot be renamed into
        // place (the path is a directory) leaves no temporary file either.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.md");
        std::fs::write(&path, "old report\n").unwrap();
        let mut reader = std::fs::File::open(&path).unwrap();
        write_atomic(&path, "new report, longer than the old one\n").unwrap();
        let mut seen = String::new();
        reader.read_to_string(&mut seen).unwrap();
        assert_eq!(seen, "old report\n");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "new report, longer than the old one\n"
        );
        let names = |dir: &std::path::Path| -> Vec<String> {
            std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(names(dir.path()), vec!["report.md".to_string()]);

        let taken = dir.path().join("taken");
        std::fs::create_dir(&taken).unwrap();
        assert!(write_atomic(&taken, "bytes").is_err());
        let mut left = names(dir.path());
        left.sort();
        assert_eq!(left, vec!["report.md".to_string(), "taken".to_string()]);
    }
}
