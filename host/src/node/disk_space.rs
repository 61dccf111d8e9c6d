//! What a fatal storage error most likely means for the operator. After one of fjall's background
//! workers fails (a flush on a full disk, say), every later write fails with just "Poisoned", and
//! that is the error the raft core stops with; the cause is only in fjall's log line before it.
//! So the node looks at the disk itself and says what it found.

use std::path::Path;

/// Below this many free bytes a disk is taken for full: fjall writes tables of up to 64 MiB, and
/// one that failed partway leaves that much free or less.
const NEARLY_FULL: u64 = 64 << 20;

/// Bytes an unprivileged writer may still use on the filesystem holding `dir`, if the system
/// says.
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `stat` points at one `statvfs` to fill.
    let status = unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) };
    if status != 0 {
        return None;
    }
    // SAFETY: zeroed is a valid `statvfs`, and statvfs filled it in.
    let stat = unsafe { stat.assume_init() };
    Some(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// What to add to a fatal error's `reason`, given the free bytes on the data directory's disk.
pub(super) fn hint(reason: &str, free: Option<u64>, dir: &Path) -> String {
    match free {
        Some(free) if free < NEARLY_FULL => format!(
            "; the disk holding {} is full ({free} bytes free), the likely cause: free space \
             there, then restart the node",
            dir.display()
        ),
        _ if reason.contains("Poisoned") => "; fjall refused further writes after one of its \
             background workers failed: the error it logged just before this says why"
            .to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nearly_full_disk_is_named_with_its_path() {
        let said = hint("FjallError: Poisoned", Some(4096), Path::new("/data/n3"));
        assert!(
            said.contains("/data/n3 is full (4096 bytes free)"),
            "{said}"
        );
        assert!(said.contains("free space there, then restart"), "{said}");
    }

    #[test]
    fn a_poisoned_database_on_a_roomy_disk_points_at_fjalls_own_log_line() {
        let said = hint("FjallError: Poisoned", Some(10 << 30), Path::new("/d"));
        assert!(said.contains("background workers failed"), "{said}");
        assert!(hint("FjallError: Poisoned", None, Path::new("/d")).contains("fjall refused"));
    }

    #[test]
    fn other_errors_on_a_roomy_disk_get_no_hint() {
        assert_eq!(
            hint("checksum mismatch", Some(10 << 30), Path::new("/d")),
            ""
        );
    }

    #[test]
    fn the_free_space_of_a_real_directory_is_known() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some());
        assert_eq!(free_bytes(&dir.path().join("missing")), None);
    }
}
