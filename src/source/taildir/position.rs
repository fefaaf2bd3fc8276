//! The taildir position file, in Flume's JSON format: `[{"inode":N,"pos":N,"file":"/path"}]`.
//!
//! An existing Flume position file is read as is, so Flumen resumes where Flume stopped.
//! Positions are written to a temporary file, fsynced, and renamed over the old one, so a crash
//! leaves the old or the new file, never a torn one. A position counts only bytes whose events
//! are committed to the channel.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One entry, as Flume writes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PositionEntry {
    /// The file's inode.
    pub inode: u64,
    /// Bytes consumed (committed).
    pub pos: u64,
    /// The file's path when last seen.
    pub file: String,
}

/// Reads a position file; a missing file is an empty one. Entries are keyed by inode.
pub fn read(path: &Path) -> Result<BTreeMap<u64, PositionEntry>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read position file {}: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let entries: Vec<PositionEntry> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "position file {} is not Flume's JSON format: {e}",
            path.display()
        )
    })?;
    Ok(entries.into_iter().map(|e| (e.inode, e)).collect())
}

/// Writes the entries atomically and durably.
pub fn write(path: &Path, entries: &[PositionEntry]) -> io::Result<()> {
    let json = serde_json::to_vec(entries).map_err(io::Error::other)?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.sync_data()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(&dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flumes_format_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("taildir_position.json");
        std::fs::write(
            &p,
            r#"[{"inode":2496001,"pos":12,"file":"/var/log/app/a.log"},{"inode":7,"pos":0,"file":"/x"}]"#,
        )
        .unwrap();
        let m = read(&p).unwrap();
        assert_eq!(m[&2496001].pos, 12);
        assert_eq!(m[&7].file, "/x");
        let entries: Vec<PositionEntry> = m.values().cloned().collect();
        write(&p, &entries).unwrap();
        assert_eq!(read(&p).unwrap(), m);
        std::fs::write(&p, "not json").unwrap();
        assert!(read(&p).unwrap_err().contains("not Flume's JSON format"));
    }
}
