//! `kiln migrate`: pylon's pyforge manifests turned into kiln BUILD files.
//!
//! Owns reading a pyforge checkout (`cpython-ext/<cap>/pyforge-pkg.toml`,
//! `profiles/<name>.toml`), planning what to write ([`plan`] reads, never
//! writes), writing it ([`Migration::write`], all or nothing) and checking
//! that the result loads ([`Migration::check`]: what `kiln query //DIR/...`
//! runs, in `ops/query`). The command line is `cli/migrate.rs`; the rules
//! the output calls (`cap`, `compose`, the settings) are in `rules/`.
//!
//! The mapping: a C-extension cap (`pattern = "A"`) becomes a `wit_library`
//! and a `cap` in its directory, a shim-only cap a `cap` with only `shims`,
//! the pylon a `compose` in DIR's `BUILD.star`, each profile a
//! `[config.<name>]` table of `kiln.toml` setting `//settings:strip` and
//! `//settings:opt`. What kiln has no equivalent for (gating, toolchains,
//! providers built in sibling checkouts) becomes an [`Unmapped`] line.
//! Committed bindings (`gen_dir`, `gen_import_*`) are dropped: kiln
//! generates bindings at build time.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::error::ErrorClass;
use crate::label::{Label, PackagePath, TargetName};
use crate::ops::query::{self, OutputFormat, QueryError};
use crate::workspace::{BUILD_FILE, CONFIG_FILE, Workspace, WorkspaceError};

/// A cap's manifest, in `cpython-ext/<cap>/`.
const PKG_MANIFEST: &str = "pyforge-pkg.toml";
/// The world written for a cap whose WIT has no single world.
const WORLD_FILE: &str = "kiln_world.wit";
const SETTINGS: [(&str, &str); 2] = [
    (
        "settings/BUILD.star",
        "# Build settings for migrated pyforge profiles (kiln migrate).
bool_setting(name = \"strip\", build_setting_default = True)
string_setting(name = \"opt\", build_setting_default = \"release\", values = [\"release\", \"debug\"])
config_setting(name = \"unstripped\", flag_values = {\":strip\": \"false\"})
config_setting(name = \"debug\", flag_values = {\":opt\": \"debug\"})
",
    ),
    (
        "settings/defs.star",
        "# Values that follow the build settings (kiln migrate).
OPT = select({\"//settings:debug\": \"debug\", \"//conditions:default\": \"release\"})
STRIP = select({\"//settings:unstripped\": False, \"//conditions:default\": True})
",
    ),
];

/// A manifest's schema and the keys of each of its tables (`*`: any key);
/// other keys are reported as unmapped.
struct Schema {
    name: &'static str,
    keys: &'static [(&'static str, &'static str)],
}

const PKG: Schema = Schema {
    name: "tegmentum:pylon-pyforge/pkg@0.1.0",
    keys: &[
        ("", "schema package extension capabilities provides gating"),
        ("package", "name version description pattern"),
        (
            "extension",
            "srcdir module_name c_file wit_dir gen_dir gen_import_c gen_import_obj",
        ),
        ("capabilities", "required"),
        ("capabilities.required", "interface version"),
        ("provides", "module shim dest purpose"),
        ("gating", "include_forges exclude_forges"),
    ],
};
const PROFILE: Schema = Schema {
    name: "tegmentum:python-wasm/profile@0.1.0",
    keys: &[
        ("", "schema python toolchain build capabilities"),
        ("python", "version"),
        ("toolchain", "*"),
        (
            "build",
            "static_openssl static_zlib with_v86_posix strip_composed debug keep_dwarf",
        ),
        ("capabilities", "*"),
    ],
};

/// What `kiln migrate` needs besides the directory.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `cpython` target caps compile against and the pylon is built on.
    pub python: Label,
}

/// Something the manifests say that kiln has no equivalent for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmapped {
    /// The file it concerns, relative to DIR.
    pub file: String,
    /// What could not be mapped, as written there.
    pub what: String,
    /// What the user should do instead.
    pub todo: String,
}

impl fmt::Display for Unmapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unmapped: {}: {} — {}", self.file, self.what, self.todo)
    }
}

/// A file the migration writes.
#[derive(Clone, Debug)]
struct NewFile {
    /// Path relative to the workspace root, `/`-separated.
    path: String,
    /// The whole new contents.
    contents: String,
    /// The contents extend the file that exists (`kiln.toml`), so its
    /// existence is no conflict.
    extends: bool,
}

/// The planned migration of one directory: files and unmapped lines.
#[derive(Debug)]
pub struct Migration {
    /// The workspace root (absolute, canonical).
    root: PathBuf,
    /// DIR relative to the root, `/`-separated (empty: DIR is the root).
    prefix: String,
    /// What to write, sorted by path.
    files: Vec<NewFile>,
    /// What could not be mapped, in manifest order.
    unmapped: Vec<Unmapped>,
}

/// Errors of `kiln migrate`.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// DIR is not a directory.
    #[error(
        "`{0}` is not a directory; pass the pyforge checkout (the directory holding `cpython-ext/` and `profiles/`)"
    )]
    NotADirectory(PathBuf),
    /// DIR's path in the workspace cannot be a package path.
    #[error(
        "`{0}` cannot be a kiln package: its path below the workspace root has `:`, `\\`, a quote or a control character; rename it"
    )]
    NotAPackage(PathBuf),
    /// DIR holds no manifest.
    #[error(
        "No pyforge manifests in `{0}`: expected `cpython-ext/<cap>/pyforge-pkg.toml` or `profiles/<name>.toml`"
    )]
    NothingToMigrate(PathBuf),
    /// An invalid manifest; `at` is `file:line:column`, the file relative to DIR.
    #[error("{at}: {message}")]
    Manifest {
        /// Where.
        at: String,
        /// What was wrong and what to do.
        message: String,
    },
    /// Files to write exist and `--force` was not given.
    #[error("Not writing anything: {} already exist (relative to DIR); pass `--force` to overwrite them", .0.join(", "))]
    Exists(Vec<String>),
    /// The enclosing workspace's `kiln.toml` is invalid.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A file could not be read or written.
    #[error("Cannot {action} `{path}`: {source}")]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The written files do not load.
    #[error("The migrated files do not load (`kiln query {pattern}`): {source}")]
    Check {
        /// The pattern queried.
        pattern: String,
        /// Why loading failed.
        source: Box<QueryError>,
    },
}

impl MigrateError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            MigrateError::Io { .. } => ErrorClass::Environment,
            MigrateError::Workspace(e) => e.class(),
            _ => ErrorClass::User,
        }
    }
}

fn read(path: &Path) -> Result<String, MigrateError> {
    let io = |source| MigrateError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    fs::read_to_string(path).map_err(io)
}

/// A relative path with `/` separators.
fn slash(p: &Path) -> String {
    let parts: Vec<_> = p
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect();
    parts.join("/")
}

/// The entries of `dir`, sorted by name (none if it cannot be read).
fn entries(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<_> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

/// The `*{ext}` files below `dir` (relative to `root`, as the result),
/// recursively and sorted; hidden directories, `__pycache__` and `skip`
/// are left out.
fn files_below(root: &Path, dir: &Path, ext: &str, skip: Option<&Path>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (name, abs) in entries(&root.join(dir)) {
        let rel = dir.join(&name);
        if abs.is_dir() && !name.starts_with('.') && name != "__pycache__" && Some(&*rel) != skip {
            out.extend(files_below(root, &rel, ext, skip));
        } else if abs.is_file() && name.ends_with(ext) {
            out.push(rel);
        }
    }
    out.sort();
    out
}

/// The keys below `path` in `value` that `keys` does not list, dotted.
fn unknown_keys(keys: &[(&str, &str)], path: &str, value: &toml::Value, out: &mut Vec<String>) {
    match value {
        toml::Value::Table(t) => {
            let Some((_, known)) = keys.iter().find(|(p, _)| *p == path) else {
                return;
            };
            for (k, v) in t.iter().filter(|_| *known != "*") {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if known.split(' ').any(|x| x == k) {
                    unknown_keys(keys, &p, v, out);
                } else {
                    out.push(p);
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|i| unknown_keys(keys, path, i, out)),
        _ => {}
    }
}

/// `name` as a cap's target name: what `TargetName` accepts, less `/` and
/// whitespace (odd in a rule's name); other characters become `_`.
fn target_name(name: &str) -> String {
    let odd = |c: char| c.is_whitespace() || c.is_control() || "/:\\\"'".contains(c);
    let s: String = name.chars().map(|c| if odd(c) { '_' } else { c }).collect();
    let valid = !matches!(s.as_str(), "." | "..") && TargetName::new(&s).is_ok();
    if valid { s } else { "cap".to_owned() }
}

/// `name` as a WIT identifier: kebab-case ASCII words starting with a letter.
fn wit_ident(name: &str) -> String {
    let words: Vec<String> = name
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| match w.to_ascii_lowercase() {
            w if w.starts_with(|c: char| c.is_ascii_digit()) => format!("x{w}"),
            w => w,
        })
        .collect();
    if words.is_empty() {
        "cap".to_owned()
    } else {
        words.join("-")
    }
}

/// The packages (`package ns:name...;`) and worlds (`world NAME {`)
/// declared in WIT `texts`, each world with its file's package if any.
type WitDecls = (BTreeSet<String>, Vec<(Option<String>, String)>);

fn wit_decls(texts: &[String]) -> WitDecls {
    let package = Regex::new(r"(?m)^\s*package\s+([a-z][a-z0-9-]*:[a-z][a-z0-9-]*)(@[^;\s]+)?\s*;")
        .expect("valid regex");
    let world = Regex::new(r"(?m)^\s*world\s+%?([a-z][a-z0-9-]*)\s*\{").expect("valid regex");
    let (mut packages, mut worlds) = (BTreeSet::new(), Vec::new());
    for text in texts {
        let pkg = package.captures(text).map(|c| c[1].to_owned());
        worlds.extend(
            world
                .captures_iter(text)
                .map(|c| (pkg.clone(), c[1].to_owned())),
        );
        packages.extend(pkg);
    }
    (packages, worlds)
}

/// `s` as a Starlark string literal.
fn lit(s: &str) -> String {
    format!(
        "\"{}\"",
        s.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    )
}

/// A TOML value as written (strings quoted).
fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => lit(s),
        toml::Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_text).collect::<Vec<_>>().join(", ")
        ),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

/// A list of string literals: inline up to one item, else one per line.
fn list(items: &[String]) -> String {
    match items {
        [] => "[]".to_owned(),
        [one] => format!("[{}]", lit(one)),
        _ => format!(
            "[\n{}    ]",
            items
                .iter()
                .map(|i| format!("        {},\n", lit(i)))
                .collect::<String>()
        ),
    }
}

/// A rule attribute: its name and its value as Starlark text.
type Attr = (&'static str, String);

/// A rule call, one attribute per line.
fn call(kind: &str, attrs: &[Attr]) -> String {
    let body: String = attrs
        .iter()
        .map(|(k, v)| format!("    {k} = {v},\n"))
        .collect();
    format!("\n{kind}(\n{body})\n")
}

/// `label` as a BUILD file writes it: `//pkg` when the name repeats the
/// package's last segment.
fn short(label: &Label) -> String {
    match label.package.last_segment() {
        Some(last) if last == label.name.as_str() => label.package.to_string(),
        _ => label.to_string(),
    }
}

/// `pyforge-pkg.toml` as written (unknown keys are found on the plain
/// table); spans locate errors.
#[derive(Deserialize)]
struct RawPkg {
    package: Option<Spanned<RawPackage>>,
    extension: Option<Spanned<RawExtension>>,
    #[serde(default)]
    capabilities: RawCapabilities,
    #[serde(default)]
    provides: Vec<Spanned<RawProvide>>,
    #[serde(default)]
    gating: RawGating,
}

/// `[package]`: `pattern` is `"A"` (a C extension) or `"shim-only"`.
#[derive(Deserialize)]
struct RawPackage {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    pattern: Option<Spanned<String>>,
}

/// `[extension]`: paths relative to the manifest's directory, `c_file`
/// relative to `srcdir`; `gen_import_*` are not read (kiln generates
/// bindings).
#[derive(Deserialize)]
struct RawExtension {
    srcdir: Option<Spanned<String>>,
    module_name: Option<String>,
    c_file: Option<Spanned<OneOrMany>>,
    wit_dir: Option<Spanned<String>>,
    gen_dir: Option<String>,
}

/// A string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `[capabilities]`: `[[capabilities.required]]`, the interfaces imported.
#[derive(Deserialize, Default)]
struct RawCapabilities {
    #[serde(default)]
    required: Vec<RawRequired>,
}

/// An imported interface: `ns:pkg/iface` and its version.
#[derive(Deserialize)]
struct RawRequired {
    interface: String,
    version: Option<String>,
}

/// `[[provides]]`: `shim` (a `.py` file or a directory, relative to the
/// manifest's directory) installed at `dest` (below `Lib/`; a directory
/// when it ends with `/`).
#[derive(Deserialize)]
struct RawProvide {
    shim: String,
    dest: String,
    purpose: Option<String>,
}

/// `[gating]`: forges that get or do not get the cap.
#[derive(Deserialize, Default)]
struct RawGating {
    #[serde(default)]
    include_forges: Vec<String>,
    #[serde(default)]
    exclude_forges: Vec<String>,
}

/// `profiles/<name>.toml` as written.
#[derive(Deserialize)]
struct RawProfile {
    #[serde(default)]
    python: toml::Table,
    #[serde(default)]
    toolchain: toml::Table,
    #[serde(default)]
    build: RawBuild,
    #[serde(default)]
    capabilities: toml::Table,
}

/// `[build]` of a profile; `debug` or `keep_dwarf` make it a debug build.
#[derive(Deserialize, Default)]
struct RawBuild {
    static_openssl: Option<bool>,
    static_zlib: Option<bool>,
    with_v86_posix: Option<bool>,
    strip_composed: Option<bool>,
    debug: Option<bool>,
    keep_dwarf: Option<bool>,
}

/// A manifest being read: where it is and its text, for error locations.
struct Source {
    /// Its path relative to DIR.
    file: PathBuf,
    text: String,
}

impl Source {
    /// An error at byte `offset`, as `file:line:column: message`.
    fn err(&self, offset: usize, message: impl Into<String>) -> MigrateError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let at = format!("{}:{line}:{col}", slash(&self.file));
        MigrateError::Manifest {
            at,
            message: message.into(),
        }
    }
}

/// A file a cap installs into the stdlib.
struct Shim {
    /// Its label, as written in the cap's package.
    label: String,
    /// Its path below the stdlib root.
    dest: String,
    /// Why, from the manifest (a comment in the BUILD file).
    purpose: Option<String>,
}

/// A migrated cap, as the compose needs it.
struct Cap {
    /// `//pkg:name`.
    label: String,
    /// The interfaces it imports, `ns:pkg/iface@version`.
    required: Vec<String>,
}

/// One planning run; paths are relative to DIR unless said otherwise.
struct Planner<'a> {
    /// DIR, absolute and canonical.
    dir: PathBuf,
    /// DIR relative to the workspace root (`""`: DIR is the root).
    prefix: String,
    opts: &'a Options,
    /// Directories that are or will be packages besides those with a
    /// `BUILD.star` already: DIR, the cap directories, `new_packages`.
    packages: BTreeSet<PathBuf>,
    /// Directories holding files of other packages' shims, which get a
    /// `BUILD.star` with only a comment.
    new_packages: BTreeSet<PathBuf>,
    files: Vec<NewFile>,
    unmapped: Vec<Unmapped>,
}

/// Plan the migration of the pyforge checkout `dir`; nothing is written.
pub fn plan(dir: &Path, opts: &Options) -> Result<Migration, MigrateError> {
    let not_dir = || MigrateError::NotADirectory(dir.to_owned());
    let dir = dir
        .canonicalize()
        .ok()
        .filter(|d| d.is_dir())
        .ok_or_else(not_dir)?;
    let (root, new_workspace) = match Workspace::discover(&dir) {
        Ok(ws) => (ws.root, false),
        Err(WorkspaceError::NotFound(_)) => (dir.clone(), true),
        Err(e) => return Err(e.into()),
    };
    let prefix = slash(dir.strip_prefix(&root).unwrap_or(Path::new("")));
    if PackagePath::new(&prefix).is_err() {
        return Err(MigrateError::NotAPackage(dir));
    }
    let cap_dirs: Vec<PathBuf> = entries(&dir.join("cpython-ext"))
        .into_iter()
        .filter(|(_, p)| p.join(PKG_MANIFEST).is_file())
        .map(|(name, _)| Path::new("cpython-ext").join(name))
        .collect();
    let profiles: Vec<String> = entries(&dir.join("profiles"))
        .into_iter()
        .filter(|(name, p)| name.ends_with(".toml") && p.is_file())
        .map(|(name, _)| name)
        .collect();
    if cap_dirs.is_empty() && profiles.is_empty() {
        return Err(MigrateError::NothingToMigrate(dir));
    }
    let mut packages = BTreeSet::from([PathBuf::new()]);
    packages.extend(cap_dirs.iter().cloned());
    let mut p = Planner {
        dir,
        prefix,
        opts,
        packages,
        new_packages: BTreeSet::new(),
        files: Vec::new(),
        unmapped: Vec::new(),
    };
    let mut caps = Vec::new();
    for d in &cap_dirs {
        caps.extend(p.cap(d)?);
    }
    p.compose(&caps);
    if !SETTINGS.iter().all(|(path, _)| root.join(path).is_file()) {
        for (path, text) in SETTINGS {
            p.add(path.to_owned(), text.to_owned());
        }
    }
    p.profiles(&root, new_workspace, &profiles, &caps)?;
    for d in std::mem::take(&mut p.new_packages) {
        let contents = "# Files used by other packages (kiln migrate).\n".to_owned();
        p.add(p.ws_path(&d.join(BUILD_FILE)), contents);
    }
    p.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Migration {
        root,
        prefix: p.prefix,
        files: p.files,
        unmapped: p.unmapped,
    })
}

impl Planner<'_> {
    /// `rel` relative to the workspace root.
    fn ws_path(&self, rel: &Path) -> String {
        let rel = slash(rel);
        match (self.prefix.as_str(), rel.as_str()) {
            ("", r) => r.to_owned(),
            (p, "") => p.to_owned(),
            (p, r) => format!("{p}/{r}"),
        }
    }

    /// Write `contents` to `path` (workspace-relative), a new file.
    fn add(&mut self, path: String, contents: String) {
        self.files.push(NewFile {
            path,
            contents,
            extends: false,
        });
    }

    fn note(&mut self, file: &Path, what: impl Into<String>, todo: impl Into<String>) {
        let (file, what, todo) = (slash(file), what.into(), todo.into());
        self.unmapped.push(Unmapped { file, what, todo });
    }

    /// Read and parse manifest `file` as `T`; note its unknown keys and an
    /// unexpected schema.
    fn manifest<T: DeserializeOwned>(
        &mut self,
        file: PathBuf,
        schema: &Schema,
    ) -> Result<(T, Source), MigrateError> {
        let src = Source {
            text: read(&self.dir.join(&file))?,
            file,
        };
        let typed = toml::from_str::<T>(&src.text).map_err(|e| {
            let msg = e.message().trim_end();
            let first = msg
                .chars()
                .next()
                .map(|c| c.to_uppercase().to_string())
                .unwrap_or_default();
            let rest = msg.chars().skip(1).collect::<String>();
            src.err(
                e.span().map_or(0, |s| s.start),
                format!("{first}{rest}; fix the manifest"),
            )
        })?;
        let table = toml::from_str(&src.text).unwrap_or(toml::Value::Table(toml::Table::new()));
        let mut unknown = Vec::new();
        unknown_keys(schema.keys, "", &table, &mut unknown);
        for k in unknown {
            self.note(
                &src.file,
                format!("unknown key `{k}`"),
                "not migrated; carry it over by hand if it matters",
            );
        }
        if let Some(s) = table
            .get("schema")
            .and_then(|s| s.as_str())
            .filter(|s| *s != schema.name)
        {
            self.note(
                &src.file,
                format!("schema `{s}`"),
                format!("read as `{}`; check the result", schema.name),
            );
        }
        Ok((typed, src))
    }

    /// `rel`, as written in a manifest in `base`: a path relative to DIR
    /// that exists (a directory, a file, or either when `want_dir` is
    /// `None`); the error completes "`key = value` ...".
    fn existing(&self, base: &Path, rel: &str, want_dir: Option<bool>) -> Result<PathBuf, String> {
        let joined = match Path::new(rel).strip_prefix(&self.dir) {
            Ok(r) => Some(r.to_owned()),
            Err(_) if Path::new(rel).is_absolute() => None,
            Err(_) => Some(base.join(rel)),
        };
        let p = joined.and_then(|j| {
            let mut p = PathBuf::new();
            for c in j.components() {
                match c {
                    Component::Normal(s) => p.push(s),
                    Component::ParentDir if !p.pop() => return None,
                    _ => {}
                }
            }
            Some(p)
        });
        let Some(p) = p else {
            let name = self.dir.file_name().unwrap_or_default().to_string_lossy();
            return Err(format!(
                "leaves `{name}` (the directory being migrated); move it inside"
            ));
        };
        let abs = self.dir.join(&p);
        let (ok, what) = match want_dir {
            Some(true) => (abs.is_dir(), "is not a directory"),
            Some(false) => (abs.is_file(), "is not a file"),
            None => (abs.exists(), "does not exist"),
        };
        if ok {
            Ok(p)
        } else {
            Err(format!("names `{}`, which {what}; fix the path", slash(&p)))
        }
    }

    /// The label of `file` as written in package `pkg`: relative in it,
    /// else `//owner:path`, the owner being the nearest package above the
    /// file (below DIR), or else `anchor` made one.
    fn label(&mut self, file: &Path, anchor: &Path, pkg: &Path) -> String {
        let is_package =
            |d: &Path| self.packages.contains(d) || self.dir.join(d).join(BUILD_FILE).is_file();
        let found = file
            .ancestors()
            .skip(1)
            .take_while(|d| !d.as_os_str().is_empty())
            .find(|d| is_package(d));
        let owner = found.unwrap_or(anchor).to_owned();
        if found.is_none() && self.packages.insert(owner.clone()) {
            self.new_packages.insert(owner.clone());
        }
        let rel = slash(file.strip_prefix(&owner).unwrap_or(file));
        if owner == pkg {
            rel
        } else {
            format!("//{}:{rel}", self.ws_path(&owner))
        }
    }

    /// Migrate the cap in `cap_dir`; `None` if its directory cannot be a package.
    fn cap(&mut self, cap_dir: &Path) -> Result<Option<Cap>, MigrateError> {
        let (raw, src): (RawPkg, _) = self.manifest(cap_dir.join(PKG_MANIFEST), &PKG)?;
        let file = &src.file;
        let package = raw.package.ok_or_else(|| {
            src.err(
                0,
                "No `[package]` table; add one with `name`, `version` and `pattern`",
            )
        })?;
        let pkg_at = package.span().start;
        let package = package.into_inner();
        let name = package
            .name
            .ok_or_else(|| src.err(pkg_at, "`[package]` has no `name`; add `name = \"<cap>\"`"))?;
        let c_ext = match package
            .pattern
            .as_ref()
            .map(|p| (p.span().start, p.get_ref().as_str()))
        {
            Some((_, "A")) => true,
            Some((_, "shim-only")) => false,
            Some((at, other)) => {
                let expected =
                    "expected \"A\" (a C extension) or \"shim-only\" (Python facades only)";
                return Err(src.err(at, format!("Unknown `pattern` `{other}`: {expected}")));
            }
            None => {
                let msg = "`[package]` has no `pattern`; add `pattern = \"A\"` or \"shim-only\"";
                return Err(src.err(pkg_at, msg));
            }
        };
        let ws_dir = self.ws_path(cap_dir);
        if PackagePath::new(&ws_dir).is_err() {
            self.note(
                file,
                format!("directory `{}`", slash(cap_dir)),
                "not a valid package path; rename it and run `kiln migrate` again",
            );
            return Ok(None);
        }
        let target = target_name(&name);
        if target != name {
            self.note(
                file,
                format!("`name = {}`", lit(&name)),
                format!("not a valid target name; the cap is named `{target}`"),
            );
        }
        for (key, forges) in [
            ("include_forges", &raw.gating.include_forges),
            ("exclude_forges", &raw.gating.exclude_forges),
        ] {
            if !forges.is_empty() {
                let list: Vec<String> = forges.iter().map(|f| lit(f)).collect();
                let what = format!("`[gating] {key} = [{}]`", list.join(", "));
                let todo = "kiln has no forges; list the cap in the `caps` of each compose that should have it";
                self.note(file, what, todo);
            }
        }
        let gen_dir = raw
            .extension
            .as_ref()
            .and_then(|e| e.get_ref().gen_dir.as_deref());
        let gen_dir = gen_dir.and_then(|g| self.existing(cap_dir, g, Some(true)).ok());
        let shims = self.shims(&src, cap_dir, &raw.provides, gen_dir.as_deref())?;
        let version = package.version.as_deref().unwrap_or("no version");
        let description = package
            .description
            .map(|d| format!(": {}", d.replace('\n', " ")))
            .unwrap_or_default();
        let mut build = format!(
            "# Migrated by `kiln migrate` from {PKG_MANIFEST} ({name} {version}{description}).\n"
        );
        let mut attrs = vec![("name", lit(&target))];
        let required: Vec<String> = match (raw.extension, c_ext) {
            (Some(ext), true) => {
                let required: Vec<String> = raw
                    .capabilities
                    .required
                    .iter()
                    .map(|r| match &r.version {
                        Some(v) if !r.interface.contains('@') => format!("{}@{v}", r.interface),
                        _ => r.interface.clone(),
                    })
                    .collect();
                let gen_dir = gen_dir.as_deref();
                let (text, more) =
                    self.c_extension(&src, cap_dir, &target, ext, gen_dir, &required)?;
                build.push_str(&text);
                attrs.extend(more);
                required
            }
            (None, true) => {
                let msg = "`pattern = \"A\"` needs an `[extension]` table with `module_name`, \
                           `c_file` and `wit_dir`";
                return Err(src.err(pkg_at, msg));
            }
            (Some(_), false) => {
                let todo = "ignored: the pattern is \"shim-only\" (no C code)";
                self.note(file, "`[extension]`", todo);
                Vec::new()
            }
            (None, false) => Vec::new(),
        };
        if !shims.is_empty() {
            let mut entries = String::new();
            for s in &shims {
                let line = format!("        {}: {},", lit(&s.label), lit(&s.dest));
                entries.push_str(&line);
                if let Some(p) = &s.purpose {
                    entries.push_str(&format!("  # {}", p.replace('\n', " ")));
                }
                entries.push('\n');
            }
            attrs.push(("shims", format!("{{\n{entries}    }}")));
        }
        build.push_str(&call("cap", &attrs));
        self.add(self.ws_path(&cap_dir.join(BUILD_FILE)), build);
        Ok(Some(Cap {
            label: format!("//{ws_dir}:{target}"),
            required,
        }))
    }

    /// A C extension's `wit_library` (with the load of `OPT` before it) and
    /// its `cap` attributes after `name`.
    fn c_extension(
        &mut self,
        src: &Source,
        cap_dir: &Path,
        target: &str,
        ext: Spanned<RawExtension>,
        gen_dir: Option<&Path>,
        required: &[String],
    ) -> Result<(String, Vec<Attr>), MigrateError> {
        let ext_at = ext.span().start;
        let ext = ext.into_inner();
        let module = ext.module_name.ok_or_else(|| {
            src.err(
                ext_at,
                "`[extension]` has no `module_name`; add the Python module the C code defines",
            )
        })?;
        let (srcdir_at, srcdir) = ext.srcdir.map_or((ext_at, ".".to_owned()), |s| {
            (s.span().start, s.into_inner())
        });
        let srcdir = self
            .existing(cap_dir, &srcdir, Some(true))
            .map_err(|m| src.err(srcdir_at, format!("`srcdir = {}` {m}", lit(&srcdir))))?;
        let c_file = ext.c_file.ok_or_else(|| {
            src.err(
                ext_at,
                "`[extension]` has no `c_file`; add the C source(s) of the module",
            )
        })?;
        let c_at = c_file.span().start;
        let c_files = match c_file.into_inner() {
            OneOrMany::One(f) => vec![f],
            OneOrMany::Many(v) => v,
        };
        let mut srcs = Vec::new();
        for c in c_files {
            let f = self
                .existing(&srcdir, &c, Some(false))
                .map_err(|m| src.err(c_at, format!("`c_file` `{c}` {m}")))?;
            srcs.push(self.label(&f, &srcdir, cap_dir));
        }
        srcs.sort();
        srcs.dedup();
        let hdrs: Vec<String> = files_below(&self.dir, &srcdir, ".h", gen_dir)
            .iter()
            .map(|h| self.label(h, &srcdir, cap_dir))
            .collect();
        let (mut wit_srcs, mut texts) = (Vec::new(), Vec::new());
        if let Some(w) = ext.wit_dir {
            let wit_dir = self
                .existing(cap_dir, w.get_ref(), Some(true))
                .map_err(|m| {
                    src.err(
                        w.span().start,
                        format!("`wit_dir = {}` {m}", lit(w.get_ref())),
                    )
                })?;
            for f in files_below(&self.dir, &wit_dir, ".wit", gen_dir) {
                if f != cap_dir.join(WORLD_FILE) {
                    texts.push(read(&self.dir.join(&f))?);
                    wit_srcs.push(self.label(&f, &wit_dir, cap_dir));
                }
            }
        }
        let (packages, worlds) = wit_decls(&texts);
        let world = match worlds.as_slice() {
            [(Some(pkg), w)] => format!("{pkg}/{w}"),
            worlds => {
                if !worlds.is_empty() {
                    let names: Vec<&str> = worlds.iter().map(|(_, w)| w.as_str()).collect();
                    self.note(
                        &src.file,
                        format!("`wit_dir` declares the worlds {}", names.join(", ")),
                        format!(
                            "kiln needs one; {WORLD_FILE} imports the required capabilities instead"
                        ),
                    );
                }
                for r in required {
                    let pkg = r.split(['/', '@']).next().unwrap_or_default();
                    if !packages.contains(pkg) {
                        let what =
                            format!("requires `{r}`, whose package no file in `wit_dir` declares");
                        self.note(
                            &src.file,
                            what,
                            "add its WIT (e.g. below wit/deps/) so the world resolves",
                        );
                    }
                }
                let ident = wit_ident(target);
                let imports: String = required
                    .iter()
                    .map(|r| format!("    import {r};\n"))
                    .collect();
                let contents = format!(
                    "// Generated by `kiln migrate`: the capabilities {PKG_MANIFEST} requires.
package kiln-migrate:{ident};

world cap {{
{imports}}}
"
                );
                self.add(self.ws_path(&cap_dir.join(WORLD_FILE)), contents);
                wit_srcs.push(WORLD_FILE.to_owned());
                format!("kiln-migrate:{ident}/cap")
            }
        };
        wit_srcs.sort();
        let wit = if target == "wit" { "wit_files" } else { "wit" };
        let mut text = "\nload(\"//settings:defs.star\", \"OPT\")\n".to_owned();
        text.push_str(&call(
            "wit_library",
            &[("name", lit(wit)), ("srcs", list(&wit_srcs))],
        ));
        let mut attrs = vec![("module", lit(&module)), ("srcs", list(&srcs))];
        if !hdrs.is_empty() {
            attrs.push(("hdrs", list(&hdrs)));
        }
        attrs.extend([
            ("wit", lit(&format!(":{wit}"))),
            ("world", lit(&world)),
            ("linkage", lit("static")),
            ("python", lit(&short(&self.opts.python))),
            ("opt", "OPT".to_owned()),
        ]);
        Ok((text, attrs))
    }

    /// A cap's `shims` in manifest
    /// order, each file and each destination once.
    fn shims(
        &mut self,
        src: &Source,
        cap_dir: &Path,
        provides: &[Spanned<RawProvide>],
        gen_dir: Option<&Path>,
    ) -> Result<Vec<Shim>, MigrateError> {
        let mut out: Vec<Shim> = Vec::new();
        for prov in provides {
            let (at, prov) = (prov.span().start, prov.get_ref());
            let dest = match prov.dest.strip_prefix("Lib/") {
                Some(d) if !d.split('/').any(|s| s == ".." || s == ".") => d,
                _ => {
                    let expected = "a path below `Lib/` (the stdlib root), e.g. \"Lib/zlib.py\" or \"Lib/pkg/\"";
                    return Err(src.err(
                        at,
                        format!("`dest = {}` must be {expected}", lit(&prov.dest)),
                    ));
                }
            };
            let shim = self
                .existing(cap_dir, &prov.shim, None)
                .map_err(|m| src.err(at, format!("`shim = {}` {m}", lit(&prov.shim))))?;
            let into_dir = dest.is_empty() || dest.ends_with('/');
            let mut found = Vec::new();
            if self.dir.join(&shim).is_dir() {
                let base = if into_dir {
                    dest.to_owned()
                } else {
                    format!("{dest}/")
                };
                for f in files_below(&self.dir, &shim, ".py", gen_dir) {
                    let to = format!("{base}{}", slash(f.strip_prefix(&shim).unwrap_or(&f)));
                    found.push((self.label(&f, &shim, cap_dir), to));
                }
            } else {
                let name = shim.file_name().unwrap_or_default().to_string_lossy();
                let to = if into_dir {
                    format!("{dest}{name}")
                } else {
                    dest.to_owned()
                };
                found.push((
                    self.label(&shim, shim.parent().unwrap_or(cap_dir), cap_dir),
                    to,
                ));
            }
            for (label, to) in found {
                match out.iter().find(|s| s.label == label || s.dest == to) {
                    Some(Shim {
                        label: l, dest: d, ..
                    }) => {
                        let todo = format!(
                            "a cap installs each file once, at one place; kept `{l}` as `{d}`"
                        );
                        self.note(&src.file, format!("`{label}` installed as `{to}`"), todo);
                    }
                    None => out.push(Shim {
                        label,
                        dest: to,
                        purpose: prov.purpose.clone(),
                    }),
                }
            }
        }
        Ok(out)
    }

    /// DIR's `BUILD.star`: the pylon, with a comment per provider it needs.
    fn compose(&mut self, caps: &[Cap]) {
        let needed: BTreeSet<&String> = caps
            .iter()
            .flat_map(|c| &c.required)
            .filter(|i| !i.starts_with("wasi:"))
            .collect();
        let mut text =
            String::from("# Migrated by `kiln migrate`: the pylon of the caps in cpython-ext/.\n");
        for i in &needed {
            text.push_str(&format!(
                "# Needs a provider exporting {i} (it lived in a sibling checkout): "
            ));
            text.push_str("add its target and list it in `providers`.\n");
        }
        text.push_str("\nload(\"//settings:defs.star\", \"STRIP\")\n");
        let mut labels: Vec<String> = caps.iter().map(|c| c.label.clone()).collect();
        labels.sort();
        text.push_str(&call(
            "compose",
            &[
                ("name", lit("pylon")),
                ("base", lit(&short(&self.opts.python))),
                ("caps", list(&labels)),
                ("providers", "[]".to_owned()),
                ("strip", "STRIP".to_owned()),
            ],
        ));
        self.add(self.ws_path(Path::new(BUILD_FILE)), text);
    }

    /// Each profile as a `[config.<name>]` table of the root's `kiln.toml`
    /// (created when DIR is the root).
    fn profiles(
        &mut self,
        root: &Path,
        new_workspace: bool,
        names: &[String],
        caps: &[Cap],
    ) -> Result<(), MigrateError> {
        let existing = if new_workspace {
            "# The kiln workspace of a migrated pyforge checkout (kiln migrate).\n".to_owned()
        } else {
            read(&root.join(CONFIG_FILE))?
        };
        let configs = toml::from_str::<toml::Table>(&existing)
            .ok()
            .and_then(|mut t| t.remove("config"));
        let mut tables = String::new();
        for file_name in names {
            let (raw, src): (RawProfile, _) =
                self.manifest(Path::new("profiles").join(file_name), &PROFILE)?;
            let file = &src.file;
            let stem = file_name.trim_end_matches(".toml");
            let mut name: String = stem
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if name.is_empty() || name.starts_with('-') {
                name.insert(0, 'p');
            }
            if name != stem {
                self.note(
                    file,
                    format!("profile name `{stem}`"),
                    format!("not a configuration name; it is `[config.{name}]`"),
                );
            }
            if let Some(v) = raw.python.get("version").filter(|v| {
                !v.as_str()
                    .is_some_and(|v| v == "3.11" || v.starts_with("3.11."))
            }) {
                self.note(
                    file,
                    format!("`[python] version = {}`", toml_text(v)),
                    "kiln builds CPython 3.11; the configuration uses it",
                );
            }
            for (k, v) in &raw.toolchain {
                self.note(
                    file,
                    format!("`[toolchain] {k} = {}`", toml_text(v)),
                    "kiln finds the C toolchain itself (`ctx.toolchain(\"c\")`); set it up there",
                );
            }
            let b = &raw.build;
            for (key, value, bad, todo) in [
                (
                    "static_openssl",
                    b.static_openssl,
                    true,
                    "kiln's cpython builds no OpenSSL modules",
                ),
                (
                    "static_zlib",
                    b.static_zlib,
                    false,
                    "kiln's cpython always links zlib statically",
                ),
                (
                    "with_v86_posix",
                    b.with_v86_posix,
                    true,
                    "kiln builds for WASI only; there is no v86 POSIX layer",
                ),
            ] {
                if value == Some(bad) {
                    self.note(file, format!("`[build] {key} = {bad}`"), todo);
                }
            }
            let debug = b.debug == Some(true) || b.keep_dwarf == Some(true);
            if debug && b.strip_composed == Some(true) {
                self.note(
                    file,
                    "`[build] strip_composed = true` with DWARF kept",
                    "a debug configuration does not strip: `//settings:strip` is false",
                );
            }
            let strip = if debug { Some(false) } else { b.strip_composed };
            for (slot, v) in &raw.capabilities {
                let hint = slot.trim_end_matches("_PROVIDER").to_ascii_lowercase();
                let ifaces: BTreeSet<&str> = caps
                    .iter()
                    .flat_map(|c| &c.required)
                    .map(String::as_str)
                    .filter(|i| i.contains(&hint))
                    .collect();
                let what = if ifaces.is_empty() {
                    "the interface its caps import".to_owned()
                } else {
                    ifaces.into_iter().collect::<Vec<_>>().join(", ")
                };
                let todo = format!(
                    "add a provider target exporting {what} and list it in `providers` of `//{}:pylon`",
                    self.prefix
                );
                self.note(
                    file,
                    format!(
                        "`[capabilities] {slot} = {}` (a provider built in a sibling checkout)",
                        toml_text(v)
                    ),
                    todo,
                );
            }
            if configs.as_ref().is_some_and(|c| c.get(&name).is_some()) {
                self.note(
                    file,
                    format!("`[config.{name}]`"),
                    "kiln.toml has it already; left as it is",
                );
                continue;
            }
            tables.push_str(&format!(
                "\n# From {} (kiln migrate).\n[config.{name}]\n",
                slash(file)
            ));
            if let Some(s) = strip {
                tables.push_str(&format!("\"//settings:strip\" = {s}\n"));
            }
            if debug {
                tables.push_str("\"//settings:opt\" = \"debug\"\n");
            }
        }
        if new_workspace || !tables.is_empty() {
            let sep = if existing.is_empty() || existing.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            self.files.push(NewFile {
                path: CONFIG_FILE.to_owned(),
                contents: format!("{existing}{sep}{tables}"),
                extends: !new_workspace,
            });
        }
        Ok(())
    }
}

impl Migration {
    /// What could not be mapped; each displays as one line.
    pub fn unmapped(&self) -> &[Unmapped] {
        &self.unmapped
    }

    /// A workspace-relative path as shown to the user: relative to DIR.
    fn shown(&self, path: &str) -> String {
        if self.prefix.is_empty() {
            return path.to_owned();
        }
        match path
            .strip_prefix(&self.prefix)
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(r) => r.to_owned(),
            None => format!("{}{path}", "../".repeat(self.prefix.split('/').count())),
        }
    }

    /// Write the files; unless `force`, write nothing if any of them
    /// exists. Returns the paths written, relative to DIR.
    pub fn write(&self, force: bool) -> Result<Vec<String>, MigrateError> {
        let exists = |f: &&NewFile| !f.extends && self.root.join(&f.path).exists();
        let existing: Vec<String> = self
            .files
            .iter()
            .filter(exists)
            .map(|f| format!("`{}`", self.shown(&f.path)))
            .collect();
        if !force && !existing.is_empty() {
            return Err(MigrateError::Exists(existing));
        }
        for f in &self.files {
            let path = self.root.join(&f.path);
            let io = |source| MigrateError::Io {
                action: "write",
                path: path.clone(),
                source,
            };
            fs::create_dir_all(path.parent().unwrap_or(&self.root)).map_err(io)?;
            fs::write(&path, &f.contents).map_err(io)?;
        }
        Ok(self.files.iter().map(|f| self.shown(&f.path)).collect())
    }

    /// Load every target below DIR, as `kiln query //DIR/...` does; the
    /// number of targets.
    pub fn check(&self) -> Result<usize, MigrateError> {
        let pattern = if self.prefix.is_empty() {
            "//...".to_owned()
        } else {
            format!("//{}/...", self.prefix)
        };
        let ws = Workspace::discover(&self.root.join(&self.prefix))?;
        let labels =
            query::query(ws, &pattern, OutputFormat::Label).map_err(|e| MigrateError::Check {
                pattern,
                source: Box::new(e),
            })?;
        Ok(labels.lines().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of the fixture workspace (`forge/` is the checkout) in a
    /// temporary directory, removed on drop.
    struct Tmp(PathBuf);

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/migrate/pyforge"
    );

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for (name, path) in entries(from) {
            if path.is_dir() {
                copy_dir(&path, &to.join(name));
            } else {
                fs::copy(path, to.join(name)).unwrap();
            }
        }
    }

    fn fixture(name: &str) -> (Tmp, PathBuf) {
        let tmp =
            Tmp(std::env::temp_dir().join(format!("kiln-migrate-{name}-{}", std::process::id())));
        let _ = fs::remove_dir_all(&tmp.0);
        copy_dir(&Path::new(FIXTURE).join("ws"), &tmp.0);
        let dir = tmp.0.join("forge");
        (tmp, dir)
    }

    fn opts() -> Options {
        Options {
            python: Label::parse_absolute("//third_party/cpython").unwrap(),
        }
    }

    fn contents<'a>(m: &'a Migration, path: &str) -> &'a str {
        &m.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("{path} is not written"))
            .contents
    }

    /// Every file planned for the fixture is `files/<path>` (the workspace
    /// after `kiln migrate forge`); `KILN_BLESS=1` rewrites them.
    #[test]
    fn fixture_files() {
        let (_tmp, dir) = fixture("files");
        let m = plan(&dir, &opts()).unwrap();
        let want = Path::new(FIXTURE).join("files");
        if std::env::var_os("KILN_BLESS").is_some() {
            let _ = fs::remove_dir_all(&want);
        }
        for f in &m.files {
            let path = want.join(&f.path);
            if std::env::var_os("KILN_BLESS").is_some() {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, &f.contents).unwrap();
            }
            assert_eq!(
                fs::read_to_string(&path).unwrap_or_default(),
                f.contents,
                "{}",
                f.path
            );
        }
        let planned: Vec<PathBuf> = m.files.iter().map(|f| PathBuf::from(&f.path)).collect();
        let mut blessed: Vec<PathBuf> = files_below(&want, Path::new(""), "", None);
        blessed.sort();
        assert_eq!(blessed, planned);
    }

    #[test]
    fn existing_files_need_force_and_configs_are_not_duplicated() {
        let (tmp, dir) = fixture("force");
        let m = plan(&dir, &opts()).unwrap();
        assert!(
            m.write(false)
                .unwrap()
                .contains(&"../settings/defs.star".to_owned())
        );
        let again = plan(&dir, &opts()).unwrap();
        let e = again.write(false).unwrap_err().to_string();
        assert!(
            e.starts_with("Not writing anything: `BUILD.star`, `cpython-ext/café/BUILD.star`,"),
            "{e}"
        );
        assert!(
            !e.contains("settings") && !e.contains("kiln.toml") && !e.contains("_compression"),
            "{e}"
        );
        let line = "unmapped: profiles/debug.toml: `[config.debug]` — kiln.toml has it already; left as it is";
        assert!(again.unmapped().iter().any(|u| u.to_string() == line));
        again.write(true).unwrap();
        assert_eq!(
            fs::read_to_string(tmp.0.join("kiln.toml"))
                .unwrap()
                .matches("[config.debug]")
                .count(),
            1
        );
    }

    #[test]
    fn a_checkout_outside_any_workspace_becomes_its_root() {
        let (tmp, dir) = fixture("root");
        fs::remove_file(tmp.0.join("kiln.toml")).unwrap();
        let m = plan(&dir, &opts()).unwrap();
        assert!(contents(&m, "kiln.toml").starts_with("# The kiln workspace of a migrated pyforge checkout (kiln migrate).\n\n# From profiles/debug.toml"));
        assert!(contents(&m, "BUILD.star").contains("        \"//cpython-ext/zlib:zlib\",\n"));
        assert!(
            contents(&m, "cpython-ext/zlib/BUILD.star")
                .contains("\"//cpython-ext/_compression:zlib.py\": \"zlib.py\",")
        );
        contents(&m, "settings/defs.star");
    }

    #[test]
    fn bad_manifests_name_the_file_and_place() {
        let (_tmp, dir) = fixture("bad");
        let manifest = dir.join("cpython-ext/zlib/pyforge-pkg.toml");
        let good = fs::read_to_string(&manifest).unwrap();
        for (text, want) in [
            (
                "[package\nname = 1".to_owned(),
                "cpython-ext/zlib/pyforge-pkg.toml:1:9: ",
            ),
            (
                good.replace("name = \"zlib\"\n", ""),
                "cpython-ext/zlib/pyforge-pkg.toml:3:1: `[package]` has no `name`",
            ),
            (
                good.replace("\"A\"", "\"B\""),
                "cpython-ext/zlib/pyforge-pkg.toml:7:11: Unknown `pattern` `B`",
            ),
            (
                good.replace("../_compression/zlib.py", "gone.py"),
                ":22:1: `shim = \"gone.py\"` names `cpython-ext/zlib/gone.py`, which does not exist",
            ),
            (
                good.replace("../_compression/zlib.py", "../../../kiln.toml"),
                "`shim = \"../../../kiln.toml\"` leaves `forge`",
            ),
            (
                good.replace("Lib/zlib.py", "zlib.py"),
                "`dest = \"zlib.py\"` must be a path below `Lib/`",
            ),
        ] {
            fs::write(&manifest, text).unwrap();
            let e = plan(&dir, &opts()).unwrap_err().to_string();
            assert!(e.contains(want), "want {want}\ngot {e}");
        }
    }

    #[test]
    fn names_and_worlds() {
        assert_eq!(
            (
                target_name("zlib"),
                target_name("a:b/c d"),
                target_name("..")
            ),
            ("zlib".into(), "a_b_c_d".into(), "cap".into())
        );
        assert_eq!(
            (wit_ident("Hashlib_Blake3"), wit_ident("3d")),
            ("hashlib-blake3".into(), "x3d".into())
        );
        let texts = [
            "package a:b@1.0.0;\nworld w {\n}\n".to_owned(),
            "world %v {}".to_owned(),
        ];
        let (packages, worlds) = wit_decls(&texts);
        assert_eq!(packages, BTreeSet::from(["a:b".to_owned()]));
        assert_eq!(
            worlds,
            [(Some("a:b".into()), "w".into()), (None, "v".into())]
        );
    }
}
