//! Where sonoprint keeps its files: the one place that decides it.

use std::path::PathBuf;

/// The data folder: `library.db` and `logs/`.
#[derive(Debug, Clone)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// The library database.
    pub fn db(&self) -> PathBuf {
        self.root.join("library.db")
    }

    /// The log folder (`sonoprint.log` and its rotations).
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }
}

/// `--data-dir` if given, else `$SONOPRINT_HOME`, else `~/.sonoprint`.
pub fn resolve(flag: Option<PathBuf>) -> Result<DataDir, String> {
    let env = std::env::var_os("SONOPRINT_HOME").filter(|v| !v.is_empty());
    let home = std::env::var_os("HOME").filter(|v| !v.is_empty());
    pick(flag, env.map(PathBuf::from), home.map(PathBuf::from))
}

fn pick(
    flag: Option<PathBuf>,
    env: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Result<DataDir, String> {
    let root = flag
        .or(env)
        .or_else(|| home.map(|h| h.join(".sonoprint")))
        .ok_or("cannot tell where the library lives: HOME is not set; use --data-dir DIR")?;
    // A relative --data-dir is taken from the current folder, and stored absolute so that the
    // paths printed are unambiguous.
    let root = std::path::absolute(&root)
        .map_err(|e| format!("bad data folder {}: {e}", root.display()))?;
    Ok(DataDir { root })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_then_env_then_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        let d = pick(p("/a"), p("/b"), p("/h")).unwrap();
        assert_eq!(d.db(), PathBuf::from("/a/library.db"));
        let d = pick(None, p("/b"), p("/h")).unwrap();
        assert_eq!(d.db(), PathBuf::from("/b/library.db"));
        let d = pick(None, None, p("/h")).unwrap();
        assert_eq!(d.logs(), PathBuf::from("/h/.sonoprint/logs"));
        assert!(pick(None, None, None).is_err());
    }
}
