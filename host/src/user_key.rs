//! The user's identity: the key the CLI and the SDK clients speak as. The access policy judges
//! every request by its public half, the endpoint id `iroh-raft whoami` prints.
//!
//! Where it lives: `--key FILE` or `IROH_RAFT_KEY=FILE` if given, else `iroh-raft/key` in the
//! user's configuration directory (`$XDG_CONFIG_HOME`, or `~/.config`). It is created on first
//! use, readable by its owner only.

use std::path::{Path, PathBuf};

use iroh::SecretKey;

use crate::net::NetError;

/// The environment variable naming the key file (as `--key` does).
pub const KEY_ENV: &str = "IROH_RAFT_KEY";

/// Where the user's key lives when no file is named: `$XDG_CONFIG_HOME/iroh-raft/key`, or
/// `$HOME/.config/iroh-raft/key`.
pub fn default_user_key_path() -> Result<PathBuf, NetError> {
    let config_dir = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        })
        .ok_or_else(|| NetError::SecretKey {
            path: PathBuf::from("~/.config/iroh-raft/key"),
            reason: format!(
                "neither XDG_CONFIG_HOME nor HOME is set; name a key file with --key FILE or \
                 {KEY_ENV}=FILE"
            ),
        })?;
    Ok(config_dir.join("iroh-raft").join("key"))
}

/// The user's key from `path`; when `None`, from the file `IROH_RAFT_KEY` names, else from
/// [`default_user_key_path`]. Created there (mode 0600, its directory 0700) if it does not exist
/// yet.
pub fn load_user_key(path: Option<&Path>) -> Result<SecretKey, NetError> {
    let path = match path {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os(KEY_ENV).filter(|value| !value.is_empty()) {
            Some(named) => PathBuf::from(named),
            None => default_user_key_path()?,
        },
    };
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        create_private_dir(dir).map_err(|e| NetError::SecretKey {
            path: path.clone(),
            reason: format!("cannot create {}: {e}", dir.display()),
        })?;
    }
    crate::net::load_or_create_secret_key(&path)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_key_is_created_once_private_and_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("key");
        let first = load_user_key(Some(&path)).unwrap();
        let second = load_user_key(Some(&path)).unwrap();
        assert_eq!(first.public(), second.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
        }
    }
}
