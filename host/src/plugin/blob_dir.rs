//! [`BlobDir`]: the `blob-store` a backup handler writes to — plain files directly inside the one
//! directory the operator named (`node --backup-dir`). Every name the handler passes is checked
//! here ([`check_name`]): a single file name of letters, digits, `.`, `_` and `-`, never starting
//! with `.`, so `../../etc/passwd`, `/etc/passwd` or `a/b` cannot reach outside the directory.
//! Files are opened without following symbolic links, so a link someone placed in the directory
//! does not lead out either.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The longest blob name.
pub(crate) const MAX_NAME: usize = 200;
/// The most bytes one `read` returns, whatever the handler asks for.
pub(crate) const MAX_READ: u32 = 16 << 20;
/// The most names one `list` returns.
pub(crate) const MAX_LIST: usize = 100_000;

/// Why a name is refused, or `Ok` for a name that stays inside the directory.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a blob name must not be empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "blob name of {} bytes is over the limit of {MAX_NAME}",
            name.len()
        ));
    }
    if name.starts_with('.') {
        return Err(format!("blob name {name:?} must not start with `.`"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "blob name {name:?} holds {bad:?}: a blob is a plain file name inside the backup \
             directory (letters, digits, `.`, `_`, `-`)"
        ));
    }
    Ok(())
}

/// The backup directory, as the handler sees it.
#[derive(Debug, Clone)]
pub(crate) struct BlobDir {
    dir: PathBuf,
}

impl BlobDir {
    /// The blob store inside `dir`.
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// Checks that the directory exists and this node can write to it, so that a backup is
    /// refused before the handler runs rather than halfway through.
    pub(crate) fn check_writable(&self) -> Result<(), String> {
        let dir = self.dir.display();
        match std::fs::metadata(&self.dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(format!("the backup directory {dir} is not a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(format!(
                    "the backup directory {dir} does not exist; create it, or start the node \
                     with another --backup-dir"
                ));
            }
            Err(e) => return Err(format!("cannot read the backup directory {dir}: {e}")),
        }
        let probe = self
            .dir
            .join(format!(".write-check-{}", std::process::id()));
        // A new file, never a link someone placed under that name (which could lead out); one
        // left by a crash, or such a link, is removed first (removing a link leaves its target).
        let _ = std::fs::remove_file(&probe);
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&probe)
            .and_then(|mut file| file.write_all(b"probe"));
        if written.is_ok() {
            let _ = std::fs::remove_file(&probe);
        }
        written.map_err(|e| format!("the backup directory {dir} is not writable by this node: {e}"))
    }

    fn path(&self, name: &str) -> Result<PathBuf, String> {
        check_name(name)?;
        Ok(self.dir.join(name))
    }

    fn open(&self, name: &str, options: &mut OpenOptions) -> Result<File, std::io::Error> {
        let path = self.dir.join(name);
        options.custom_flags(libc::O_NOFOLLOW).open(path)
    }

    /// Appends `data` to blob `name` (created if needed) and syncs it to disk.
    pub(crate) fn append(&self, name: &str, data: &[u8]) -> Result<(), String> {
        self.path(name)?;
        let fail = |e: std::io::Error| format!("cannot write blob {name}: {e}");
        let mut file = self
            .open(name, OpenOptions::new().append(true).create(true))
            .map_err(fail)?;
        file.write_all(data).map_err(fail)?;
        file.sync_data().map_err(fail)
    }

    /// Up to `max` (at most [`MAX_READ`]) bytes of blob `name` from `offset`.
    pub(crate) fn read(&self, name: &str, offset: u64, max: u32) -> Result<Vec<u8>, String> {
        self.path(name)?;
        let fail = |e: std::io::Error| format!("cannot read blob {name}: {e}");
        let mut file = self
            .open(name, OpenOptions::new().read(true))
            .map_err(fail)?;
        file.seek(SeekFrom::Start(offset)).map_err(fail)?;
        let mut out = Vec::new();
        file.take(u64::from(max.min(MAX_READ)))
            .read_to_end(&mut out)
            .map_err(fail)?;
        Ok(out)
    }

    /// The blob names starting with `prefix`, in byte order (at most [`MAX_LIST`]).
    pub(crate) fn list(&self, prefix: &str) -> Result<Vec<String>, String> {
        let fail = |e: std::io::Error| {
            format!(
                "cannot list the backup directory {}: {e}",
                self.dir.display()
            )
        };
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            if !entry.file_type().map_err(fail)?.is_file() {
                continue;
            }
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if name.starts_with(prefix) && check_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort_unstable();
        names.truncate(MAX_LIST);
        Ok(names)
    }

    /// Removes blob `name`; a missing blob is no error.
    pub(crate) fn remove(&self, name: &str) -> Result<(), String> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove blob {name}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for bad in [
            "",
            "../../etc/passwd",
            "/etc/passwd",
            "a/b",
            "..",
            ".",
            ".hidden",
            "a\\b",
            "a\0b",
            "é",
            &"x".repeat(MAX_NAME + 1),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
        for good in ["b-1.snap", "b-1.json", "A_z.0", &"x".repeat(MAX_NAME)] {
            check_name(good).unwrap();
        }
    }

    #[test]
    fn blobs_append_read_list_and_remove_inside_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobDir::new(dir.path());
        blobs.check_writable().unwrap();
        blobs.append("b.snap", b"hello ").unwrap();
        blobs.append("b.snap", b"world").unwrap();
        blobs.append("a.json", b"{}").unwrap();
        assert_eq!(blobs.read("b.snap", 0, 100).unwrap(), b"hello world");
        assert_eq!(blobs.read("b.snap", 6, 3).unwrap(), b"wor");
        assert_eq!(blobs.read("b.snap", 100, 3).unwrap(), b"");
        assert_eq!(blobs.list("").unwrap(), ["a.json", "b.snap"]);
        assert_eq!(blobs.list("b").unwrap(), ["b.snap"]);
        assert!(blobs.read("missing", 0, 1).is_err());
        blobs.remove("b.snap").unwrap();
        blobs.remove("b.snap").unwrap();
        assert_eq!(blobs.list("").unwrap(), ["a.json"]);
        assert!(blobs.append("../escape", b"x").is_err());
        assert!(!dir.path().parent().unwrap().join("escape").exists());
    }

    #[test]
    fn a_symbolic_link_in_the_directory_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("secret");
        std::fs::write(&target, b"secret").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("link.snap")).unwrap();
        let blobs = BlobDir::new(dir.path());
        assert!(blobs.read("link.snap", 0, 10).is_err());
        assert!(blobs.append("link.snap", b"overwrite").is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        assert!(blobs.list("").unwrap().is_empty());
    }

    #[test]
    fn a_directory_nobody_may_write_to_is_refused_before_a_backup_starts() {
        // procfs refuses new files even to root, so this holds however the tests run.
        let error = BlobDir::new(Path::new("/proc"))
            .check_writable()
            .unwrap_err();
        assert!(
            error.contains("/proc is not writable by this node"),
            "{error}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        let error = BlobDir::new(file.path()).check_writable().unwrap_err();
        assert!(error.contains("is not a directory"), "{error}");
    }

    #[test]
    fn a_missing_directory_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let error = BlobDir::new(&missing).check_writable().unwrap_err();
        assert!(error.contains("does not exist"), "{error}");
        assert!(error.contains("nope"), "{error}");
    }
}
