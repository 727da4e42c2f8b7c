//! The workspace on disk: its root, its configuration and its packages.
//!
//! Owns finding the root (`kiln.toml`, walking up from a directory), reading
//! `kiln.toml`, and listing the packages (directories holding a
//! `BUILD.star`) under a package path. Reading BUILD files is `load/`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{ErrorClass, Location};
use crate::label::PackagePath;

/// The name of a package's build file.
pub const BUILD_FILE: &str = "BUILD.star";
/// The name of the workspace marker and configuration file.
pub const CONFIG_FILE: &str = "kiln.toml";

/// Workspace-level settings from `kiln.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `default_visibility = "private"` makes targets without a declaration
    /// private to their package (the default is public).
    pub default_private: bool,
    /// `remote_cache = "grpc://host:port"` (or `grpcs://`, `http://host:port/prefix`).
    pub remote_cache: Option<String>,
    /// `remote_instance_name = "name"`.
    pub remote_instance_name: Option<String>,
    /// `remote_upload = false` makes the remote cache read-only.
    pub remote_upload: Option<bool>,
    /// `remote_header = "KEY=VALUE"`, repeatable.
    pub remote_headers: Vec<(String, String)>,
    /// `remote_timeout = 30` (seconds per request).
    pub remote_timeout: Option<u64>,
}

/// A found workspace.
#[derive(Clone, Debug)]
pub struct Workspace {
    /// Absolute path of the directory holding `kiln.toml`.
    pub root: PathBuf,
    /// Its configuration.
    pub config: Config,
}

/// Errors finding or reading the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// No `kiln.toml` above the directory.
    #[error(
        "No `kiln.toml` found in `{0}` or any parent directory; run kiln inside a workspace (a directory with `kiln.toml` and a root `BUILD.star`)"
    )]
    NotFound(PathBuf),
    /// A bad line in `kiln.toml`.
    #[error("{location}: {message}")]
    Config {
        /// Where.
        location: Location,
        /// What was wrong and what is expected.
        message: String,
    },
    /// A file could not be read.
    #[error("Cannot read `{path}`: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl WorkspaceError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            WorkspaceError::Io { .. } => ErrorClass::Environment,
            _ => ErrorClass::User,
        }
    }
}

impl Workspace {
    /// Find the workspace containing `dir`.
    pub fn discover(dir: &Path) -> Result<Self, WorkspaceError> {
        let mut cur = Some(dir);
        while let Some(d) = cur {
            let cfg = d.join(CONFIG_FILE);
            if cfg.is_file() {
                let text = fs::read_to_string(&cfg).map_err(|source| WorkspaceError::Io {
                    path: cfg.clone(),
                    source,
                })?;
                let config = parse_config(&text)?;
                return Ok(Workspace {
                    root: d.to_path_buf(),
                    config,
                });
            }
            cur = d.parent();
        }
        Err(WorkspaceError::NotFound(dir.to_path_buf()))
    }

    /// Absolute path of a workspace-relative path.
    pub fn path(&self, rel: &str) -> PathBuf {
        if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        }
    }

    /// Workspace-relative path of a package's BUILD file.
    pub fn build_file(pkg: &PackagePath) -> String {
        pkg.join(BUILD_FILE)
    }

    /// Whether `pkg` is a package (has a BUILD.star).
    pub fn package_exists(&self, pkg: &PackagePath) -> bool {
        self.path(&Self::build_file(pkg)).is_file()
    }

    /// Every package at or below `pkg`, sorted. Skips hidden directories,
    /// `kiln-out`, `target` and nested workspaces.
    pub fn packages_under(&self, pkg: &PackagePath) -> Result<Vec<PackagePath>, WorkspaceError> {
        self.walk_packages(pkg).map(|(p, _)| p)
    }

    /// `packages_under`, plus every directory read on the way
    /// (workspace-relative); a change to any of them can add or remove a
    /// package.
    pub fn walk_packages(
        &self,
        pkg: &PackagePath,
    ) -> Result<(Vec<PackagePath>, Vec<String>), WorkspaceError> {
        let mut dirs = Vec::new();
        let mut out = Vec::new();
        let mut stack = vec![pkg.as_str().to_owned()];
        while let Some(rel) = stack.pop() {
            let dir = self.path(&rel);
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(source)
                    if rel == pkg.as_str() && source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Ok((out, dirs));
                }
                Err(source) => return Err(WorkspaceError::Io { path: dir, source }),
            };
            dirs.push(rel.clone());
            let mut has_build = false;
            for entry in entries {
                let entry = entry.map_err(|source| WorkspaceError::Io {
                    path: dir.clone(),
                    source,
                })?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                let ft = entry.file_type().map_err(|source| WorkspaceError::Io {
                    path: entry.path(),
                    source,
                })?;
                if ft.is_dir() {
                    if name.starts_with('.')
                        || name == "kiln-out"
                        || name == "target"
                        || entry.path().join(CONFIG_FILE).exists()
                    {
                        continue;
                    }
                    stack.push(if rel.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{rel}/{name}")
                    });
                } else if name == BUILD_FILE {
                    has_build = true;
                }
            }
            if has_build && let Ok(p) = PackagePath::new(&rel) {
                out.push(p);
            }
        }
        out.sort();
        dirs.sort();
        Ok((out, dirs))
    }
}

/// Parse `kiln.toml`: `key = "value"` lines, `#` comments. Known keys:
/// `default_visibility` (`"public"` or `"private"`).
pub fn parse_config(text: &str) -> Result<Config, WorkspaceError> {
    let mut config = Config::default();
    for (i, line) in text.lines().enumerate() {
        let loc = |col: usize| Location {
            file: CONFIG_FILE.to_owned(),
            line: i + 1,
            col,
        };
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            return Err(WorkspaceError::Config {
                location: loc(1),
                message: format!("Expected `key = \"value\"`, found `{l}`"),
            });
        };
        let (k, v) = (k.trim(), v.trim().trim_matches('"'));
        match k {
            "default_visibility" => match v {
                "public" => config.default_private = false,
                "private" => config.default_private = true,
                _ => {
                    return Err(WorkspaceError::Config {
                        location: loc(1),
                        message: format!(
                            "`default_visibility` must be \"public\" or \"private\", found `{v}`"
                        ),
                    });
                }
            },
            "remote_cache" => config.remote_cache = Some(v.to_owned()),
            "remote_instance_name" => config.remote_instance_name = Some(v.to_owned()),
            "remote_upload" => match v {
                "true" => config.remote_upload = Some(true),
                "false" => config.remote_upload = Some(false),
                _ => {
                    return Err(WorkspaceError::Config {
                        location: loc(1),
                        message: format!("`remote_upload` must be true or false, found `{v}`"),
                    });
                }
            },
            "remote_header" => match v.split_once('=') {
                Some((hk, hv)) if !hk.trim().is_empty() => config
                    .remote_headers
                    .push((hk.trim().to_owned(), hv.trim().to_owned())),
                _ => {
                    return Err(WorkspaceError::Config {
                        location: loc(1),
                        message: format!("`remote_header` must be \"KEY=VALUE\", found `{v}`"),
                    });
                }
            },
            "remote_timeout" => match v.parse::<u64>() {
                Ok(n) if n > 0 => config.remote_timeout = Some(n),
                _ => {
                    return Err(WorkspaceError::Config {
                        location: loc(1),
                        message: format!(
                            "`remote_timeout` must be a positive number of seconds, found `{v}`"
                        ),
                    });
                }
            },
            _ => {
                return Err(WorkspaceError::Config {
                    location: loc(1),
                    message: format!(
                        "Unknown key `{k}` in kiln.toml; known keys: default_visibility, remote_cache, remote_instance_name, remote_upload, remote_header, remote_timeout"
                    ),
                });
            }
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config() {
        assert!(!parse_config("# nothing\n").unwrap().default_private);
        assert!(
            parse_config("default_visibility = \"private\"\n")
                .unwrap()
                .default_private
        );
        let e = parse_config("\nbogus = 1\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "kiln.toml:2:1: Unknown key `bogus` in kiln.toml; known keys: default_visibility, remote_cache, remote_instance_name, remote_upload, remote_header, remote_timeout"
        );
        let c = parse_config(
            "remote_cache = \"grpc://127.0.0.1:9\"\nremote_instance_name = \"main\"\nremote_upload = false\nremote_header = \"authorization=Bearer x\"\nremote_timeout = 5\n",
        )
        .unwrap();
        assert_eq!(c.remote_cache.as_deref(), Some("grpc://127.0.0.1:9"));
        assert_eq!(c.remote_instance_name.as_deref(), Some("main"));
        assert_eq!(c.remote_upload, Some(false));
        assert_eq!(
            c.remote_headers,
            [("authorization".to_owned(), "Bearer x".to_owned())]
        );
        assert_eq!(c.remote_timeout, Some(5));
        let e = parse_config("remote_upload = maybe\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`remote_upload` must be true or false"), "{e}");
    }
}
