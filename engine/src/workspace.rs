//! The workspace on disk: its root, its configuration and its packages.
//!
//! Owns finding the root (`kiln.toml`, walking up from a directory), reading
//! `kiln.toml` (TOML through serde, unknown keys rejected), and listing the packages (directories holding a
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
    /// `remote_executor = "grpc://host:port"` (or `grpcs://`).
    pub remote_executor: Option<String>,
    /// `remote_instance_name = "name"`.
    pub remote_instance_name: Option<String>,
    /// `remote_upload = false` makes the remote cache read-only.
    pub remote_upload: Option<bool>,
    /// `remote_header = "KEY=VALUE"`, repeatable.
    pub remote_headers: Vec<(String, String)>,
    /// `remote_timeout = 30` (seconds per request).
    pub remote_timeout: Option<u64>,
    /// `remote_download_outputs = "toplevel"` (or `"all"`).
    pub remote_download_toplevel: Option<bool>,
    /// `[config.NAME]` tables: named configurations (`kiln build --config
    /// NAME`), each a list of build setting label, value (bools written
    /// `true`/`false`) and where it is written, in file order.
    pub configs: std::collections::BTreeMap<String, Vec<(String, String, Location)>>,
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

/// `kiln.toml` as written (TOML, unknown keys rejected).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    default_visibility: Option<toml::Spanned<String>>,
    remote_cache: Option<String>,
    remote_executor: Option<String>,
    remote_instance_name: Option<String>,
    remote_upload: Option<bool>,
    /// `"K=V"` or a list of them.
    remote_header: Option<toml::Spanned<OneOrMany>>,
    remote_timeout: Option<toml::Spanned<i64>>,
    remote_download_outputs: Option<toml::Spanned<String>>,
    config: Option<std::collections::BTreeMap<String, toml::Value>>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Line and column (1-based) of byte `offset` in `text`.
fn location_at(text: &str, offset: usize) -> Location {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Location {
        file: CONFIG_FILE.to_owned(),
        line,
        col,
    }
}

/// Where `key` of `[config.NAME]` is written (the first line after the
/// table header that starts with it), for messages about its value.
fn key_location(text: &str, name: &str, key: &str) -> Option<Location> {
    let mut offset = 0;
    let mut inside = false;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            let header = t
                .trim_start_matches('[')
                .trim_end_matches(']')
                .replace(['"', ' '], "");
            inside = header == format!("config.{name}");
        } else if inside
            && (t.starts_with(&format!("\"{key}\""))
                || t.starts_with(&format!("'{key}'"))
                || t.starts_with(key))
        {
            let col = line.len() - line.trim_start().len();
            return Some(location_at(text, offset + col));
        }
        offset += line.len();
    }
    None
}

/// Parse `kiln.toml` (TOML). Keys: `default_visibility` (`"public"` or
/// `"private"`), `remote_cache`, `remote_executor`, `remote_instance_name`, `remote_upload`
/// (bool), `remote_header` (`"KEY=VALUE"` or a list of them),
/// `remote_timeout` (seconds, positive), `remote_download_outputs`
/// (`"all"` or `"toplevel"`), and `[config.NAME]` tables of build
/// setting label = value. Anything else is an error with its line and
/// column.
pub fn parse_config(text: &str) -> Result<Config, WorkspaceError> {
    let err = |offset: usize, message: String| WorkspaceError::Config {
        location: location_at(text, offset),
        message,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = e.span().map_or(0, |s| s.start);
        let msg = e.message().trim_end_matches('\n').to_owned();
        let mut chars = msg.chars();
        let msg = match chars.next() {
            Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
            None => msg,
        };
        err(
            at,
            format!("{msg}; see the README for the keys of kiln.toml"),
        )
    })?;
    let mut config = Config {
        remote_cache: raw.remote_cache,
        remote_executor: raw.remote_executor,
        remote_instance_name: raw.remote_instance_name,
        remote_upload: raw.remote_upload,
        ..Config::default()
    };
    if let Some(v) = raw.default_visibility {
        config.default_private = match v.get_ref().as_str() {
            "public" => false,
            "private" => true,
            other => {
                return Err(err(
                    v.span().start,
                    format!(
                        "`default_visibility` must be \"public\" or \"private\", found `{other}`"
                    ),
                ));
            }
        };
    }
    if let Some(v) = raw.remote_download_outputs {
        config.remote_download_toplevel = match v.get_ref().as_str() {
            "all" => Some(false),
            "toplevel" => Some(true),
            other => {
                return Err(err(
                    v.span().start,
                    format!(
                        "`remote_download_outputs` must be \"all\" or \"toplevel\", found `{other}`"
                    ),
                ));
            }
        };
    }
    if let Some(h) = raw.remote_header {
        let at = h.span().start;
        let list = match h.into_inner() {
            OneOrMany::One(x) => vec![x],
            OneOrMany::Many(v) => v,
        };
        for v in list {
            match v.split_once('=') {
                Some((k, val)) if !k.trim().is_empty() => config
                    .remote_headers
                    .push((k.trim().to_owned(), val.trim().to_owned())),
                _ => {
                    return Err(err(
                        at,
                        format!(
                            "`remote_header` must be \"KEY=VALUE\" (or a list of them), found `{v}`"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(t) = raw.config {
        for (name, v) in t {
            let at = text
                .find(&format!("config.{name}"))
                .or_else(|| text.find("config"))
                .unwrap_or(0);
            let ok = !name.is_empty()
                && !name.starts_with(['.', '-'])
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
            if !ok {
                return Err(err(
                    at,
                    format!(
                        "`[config.{name}]`: a configuration name is letters, digits, `_`, `-` and `.`, not starting with `.` or `-` (it names a directory in kiln-out/)"
                    ),
                ));
            }
            let toml::Value::Table(settings) = v else {
                return Err(err(
                    at,
                    format!(
                        "`config.{name}` must be a table of build setting label = value, e.g. `[config.{name}]` then `\"//settings:opt\" = \"debug\"`"
                    ),
                ));
            };
            // Spans are not kept below the top level: each entry is
            // located by finding its key's line.
            let mut list = Vec::new();
            for (label, value) in settings {
                let written = match value {
                    toml::Value::Boolean(b) => b.to_string(),
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    other => {
                        return Err(err(
                            at,
                            format!(
                                "`config.{name}`: the value of `{label}` must be a string or a bool, found a {}",
                                other.type_str()
                            ),
                        ));
                    }
                };
                let location =
                    key_location(text, &name, &label).unwrap_or_else(|| location_at(text, at));
                list.push((label, written, location));
            }
            config.configs.insert(name, list);
        }
    }
    if let Some(t) = raw.remote_timeout {
        match u64::try_from(*t.get_ref()) {
            Ok(n) if n > 0 => config.remote_timeout = Some(n),
            _ => {
                return Err(err(
                    t.span().start,
                    format!(
                        "`remote_timeout` must be a positive number of seconds, found `{}`",
                        t.get_ref()
                    ),
                ));
            }
        }
    }
    Ok(config)
}

/// The workspace lock, held by this process (see [`lock`]).
static HELD: std::sync::Mutex<Option<nix::fcntl::Flock<fs::File>>> = std::sync::Mutex::new(None);

/// Take the workspace's lock for the rest of this command: one kiln
/// command at a time writes a workspace's `kiln-out/`, as with Bazel's
/// output-base lock. A second command waits, saying so (`on_wait` gets the
/// other process's id when known). The lock is an `flock` on the workspace
/// root directory itself, so `kiln clean` cannot remove it, and the kernel
/// releases it when the process dies.
pub fn lock(root: &Path, on_wait: impl FnOnce(Option<u32>)) -> Result<(), String> {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.is_some() {
        return Ok(());
    }
    let dir = fs::File::open(root)
        .map_err(|e| format!("cannot open the workspace `{}`: {e}", root.display()))?;
    let owner = crate::artifact::state_dir(root).join("lock-owner");
    let got = kiln_cache::flock_waiting(dir, true, || {
        on_wait(
            fs::read_to_string(&owner)
                .ok()
                .and_then(|s| s.trim().parse().ok()),
        )
    })
    .map_err(|e| format!("cannot lock the workspace `{}`: {e}", root.display()))?;
    // Who holds it, for the message of the next one to wait; best effort.
    if let Some(parent) = owner.parent()
        && fs::create_dir_all(parent).is_ok()
    {
        let _ = fs::write(&owner, format!("{}\n", std::process::id()));
    }
    *held = Some(got);
    Ok(())
}

/// Release the workspace lock early (`kiln run`, before the program runs).
pub fn unlock() {
    *HELD.lock().unwrap_or_else(|e| e.into_inner()) = None;
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
        assert!(
            e.starts_with(
                "kiln.toml:2:1: Unknown field `bogus`, expected one of `default_visibility`"
            ),
            "{e}"
        );
        let e = parse_config("remote_timeout = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "kiln.toml:1:18: `remote_timeout` must be a positive number of seconds, found `0`"
        );
        let e = parse_config("remote_cache = \"unterminated\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("kiln.toml:1:"), "{e}");
        let c = parse_config("remote_header = [\"a=1\", \"b = 2\"]\n").unwrap();
        assert_eq!(
            c.remote_headers,
            [
                ("a".to_owned(), "1".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
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
        let e = parse_config("remote_upload = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("kiln.toml:1:17: Invalid type: string"), "{e}");
    }
}
