//! The findings journal: one JSON object per line, appended and flushed to
//! the operating system the moment it is known, so a soak that is killed
//! (SIGKILL, OOM, a CI timeout) still leaves every finding it made.
//!
//! Lines: `{"kind":"start",...}` with the seed and limits, one
//! `{"kind":"violation",...}` per violation (aliases, clause, field path,
//! the explanation, the history and the scenario file), and
//! `{"kind":"end",...}` with the verdict when the soak ends cleanly.
//! **Invariant:** no line holds a service id, token or body.

use std::fs::File;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// An open journal file.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    lines: u64,
}

impl Journal {
    /// Create (or truncate) the journal at `path`.
    pub fn create(path: &Path) -> io::Result<Journal> {
        Ok(Journal {
            file: File::create(path)?,
            path: path.to_path_buf(),
            lines: 0,
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Append one line and hand it to the operating system at once. Writing
    /// the whole line with one `write_all` on an unbuffered file means a kill
    /// can cut at most the line being written, never lose an earlier one.
    pub fn append(&mut self, value: &serde_json::Value) -> io::Result<()> {
        let mut line = serde_json::to_vec(value).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.file.flush()?;
        self.lines += 1;
        Ok(())
    }
}
