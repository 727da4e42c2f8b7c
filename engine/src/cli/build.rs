//! `kiln build [PATTERN...]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};

use super::{Failure, exit};
use crate::action::ExecContext;
use crate::error::ErrorClass;
use crate::exec::{ExecOptions, ProgressMode};
use crate::ops::build::{self, default_cache_dir, parse_patterns, summary_json};
use crate::plan::Request;
use crate::workspace::Workspace;

/// `--remote-download-outputs`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum DownloadOutputs {
    All,
    Toplevel,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Progress {
    Auto,
    Plain,
    None,
}

/// `--config` and `--set`: the configuration to build in (also taken
/// by `kiln query` and `kiln explain`).
#[derive(Args, Debug, Clone, Default)]
pub struct ConfigFlags {
    /// A named configuration from kiln.toml's `[config.NAME]` (repeatable;
    /// later ones win). Its outputs go to kiln-out/NAME/.
    #[arg(long = "config", value_name = "NAME")]
    pub config: Vec<String>,
    /// Set a build setting (repeatable; wins over `--config`), e.g.
    /// `--set //settings:strip=false`.
    #[arg(long = "set", value_name = "LABEL=VALUE")]
    pub set: Vec<String>,
}

impl ConfigFlags {
    /// The configuration request.
    pub fn request(&self) -> Result<crate::graph::config::ConfigRequest, Failure> {
        let mut sets = Vec::new();
        for s in &self.set {
            let Some((l, v)) = s.split_once('=') else {
                return Err(Failure::new(
                    ErrorClass::User,
                    format!(
                        "`--set {s}`: expected LABEL=VALUE, e.g. `--set //settings:strip=false`"
                    ),
                ));
            };
            sets.push((l.trim().to_owned(), v.trim().to_owned()));
        }
        Ok(crate::graph::config::ConfigRequest {
            names: self.config.clone(),
            sets,
            ..Default::default()
        })
    }
}

/// Flags shared by commands that build.
#[derive(Args, Debug, Clone)]
pub struct BuildFlags {
    #[command(flatten)]
    pub configuration: ConfigFlags,
    /// Do it again whenever a file the build depends on changes (sources,
    /// BUILD and .star files, kiln.toml), until Ctrl-C (exit 8).
    #[arg(long = "watch")]
    pub watch: bool,
    /// Keep going after an action fails: build everything that does not
    /// depend on it.
    #[arg(short = 'k', long = "keep-going")]
    pub keep_going: bool,
    /// The local cache directory (default: $KILN_CACHE_DIR, else ~/.cache/kiln).
    #[arg(long = "cache-dir", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Write a summary of the build as JSON.
    #[arg(long = "summary-json", value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// Write a Chrome trace (one slice per action), viewable in Perfetto.
    #[arg(long = "profile", value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Progress display: a live line on a terminal and plain lines
    /// otherwise (auto), one line per action run (plain), or nothing.
    #[arg(long = "progress", value_enum, default_value = "auto")]
    progress: Progress,
    /// A remote cache: grpc://HOST:PORT or grpcs://HOST:PORT (REAPI v2),
    /// http://HOST:PORT/PREFIX (Bazel's HTTP cache protocol). Default:
    /// `remote_cache` in kiln.toml.
    #[arg(long = "remote-cache", value_name = "URL")]
    remote_cache: Option<String>,
    /// The REAPI instance name.
    #[arg(long = "remote-instance-name", value_name = "NAME")]
    remote_instance_name: Option<String>,
    /// Read from the remote cache but never write to it.
    #[arg(long = "no-remote-upload")]
    no_remote_upload: bool,
    /// A header sent with every remote request (repeatable), e.g.
    /// `authorization=Bearer ...`.
    #[arg(long = "remote-header", value_name = "KEY=VALUE")]
    remote_header: Vec<String>,
    /// Seconds before a remote request times out (default 30).
    #[arg(long = "remote-timeout", value_name = "SECONDS")]
    remote_timeout: Option<u64>,
    /// A REAPI execution service, grpc://HOST:PORT or grpcs://HOST:PORT:
    /// spawned actions run there (`-j` of them at once, default 50). The
    /// remote cache defaults to the same endpoint. Default:
    /// `remote_executor` in kiln.toml.
    #[arg(long = "remote-executor", value_name = "URL")]
    remote_executor: Option<String>,
    /// When the remote executor cannot be reached or goes away, run the
    /// remaining actions locally (with one warning) instead of failing.
    #[arg(long = "remote-local-fallback")]
    remote_local_fallback: bool,
    /// Actions run at once on this machine (default: the number of cores;
    /// without an executor, `-j` if smaller).
    #[arg(long = "local-jobs", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    local_jobs: Option<u64>,
    /// Which outputs of remotely executed actions are downloaded: `all`,
    /// or `toplevel`: only the requested targets' files (and what local
    /// actions read), the rest stays in the executor's CAS until needed.
    /// Default: `remote_download_outputs` in kiln.toml, else `all`.
    #[arg(long = "remote-download-outputs", value_name = "MODE", value_enum)]
    remote_download_outputs: Option<DownloadOutputs>,
}

impl BuildFlags {
    /// The remote cache these flags and `kiln.toml` ask for, if any.
    fn remote(
        &self,
        config: &crate::workspace::Config,
    ) -> Result<Option<crate::remote::RemoteCache>, Failure> {
        let Some(url) = self
            .remote_cache
            .clone()
            .or(config.remote_cache.clone())
            .or(self.executor_url(config))
        else {
            return Ok(None);
        };
        let mut headers = config.remote_headers.clone();
        for h in &self.remote_header {
            let (k, v) = h.split_once('=').ok_or_else(|| {
                Failure::new(
                    ErrorClass::User,
                    format!("`--remote-header {h}`: expected KEY=VALUE"),
                )
            })?;
            headers.push((k.to_owned(), v.to_owned()));
        }
        let options = crate::remote::RemoteOptions {
            url,
            instance: self
                .remote_instance_name
                .clone()
                .or(config.remote_instance_name.clone())
                .unwrap_or_default(),
            headers,
            upload: !self.no_remote_upload && config.remote_upload.unwrap_or(true),
            timeout: std::time::Duration::from_secs(
                self.remote_timeout
                    .or(config.remote_timeout)
                    .unwrap_or(30)
                    .max(1),
            ),
        };
        crate::remote::RemoteCache::new(options)
            .map(Some)
            .map_err(|e| Failure::new(ErrorClass::User, e))
    }

    fn executor_url(&self, config: &crate::workspace::Config) -> Option<String> {
        self.remote_executor
            .clone()
            .or(config.remote_executor.clone())
    }

    /// The remote executor these flags and `kiln.toml` ask for, if any;
    /// it shares the remote cache's instance name, headers and timeout.
    fn executor(
        &self,
        config: &crate::workspace::Config,
        cache: Option<&crate::remote::RemoteCache>,
    ) -> Result<Option<crate::remote::exec::RemoteExecutor>, Failure> {
        let Some(url) = self.executor_url(config) else {
            return Ok(None);
        };
        let mut options = match cache {
            Some(c) => c.options.clone(),
            None => return Ok(None),
        };
        options.url = url;
        let toplevel = match self.remote_download_outputs {
            Some(m) => m == DownloadOutputs::Toplevel,
            None => config.remote_download_toplevel.unwrap_or(false),
        };
        let download = if toplevel {
            crate::remote::lazy::Download::Toplevel
        } else {
            crate::remote::lazy::Download::All
        };
        crate::remote::exec::RemoteExecutor::new(
            &options,
            self.remote_local_fallback,
            download,
            &self.cache_dir(),
        )
        .map(Some)
        .map_err(|e| Failure::new(ErrorClass::User, e))
    }

    /// The cache directory to use.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }
}

/// Arguments of `kiln build`.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// Targets to build (default: `//...`).
    patterns: Vec<String>,
    #[command(flatten)]
    flags: BuildFlags,
}

/// Run `kiln build`.
pub fn run(cwd: &Path, jobs: Option<usize>, args: BuildArgs) -> Result<i32, Failure> {
    if args.flags.watch {
        let (ws, opts, interrupt) = prepare(cwd, jobs, &args.flags)?;
        let req = request(&args.patterns, &args.flags)?;
        let f = &args.flags;
        return watch_loop(&ws, &req, &interrupt, &mut || {
            let o = build::build(&ws, &req, &f.cache_dir(), &opts, interrupt.clone())
                .map_err(|e| Failure::new(e.class(), e))?;
            report(&o, f, &opts)
        });
    }
    build_patterns(cwd, jobs, &args.patterns, &args.flags).map(|(code, _, _)| code)
}

/// The request of `patterns` in the configuration `f` asks for.
pub fn request(patterns: &[String], f: &BuildFlags) -> Result<Request, Failure> {
    Ok(Request {
        patterns: parse_patterns(patterns).map_err(|e| Failure::new(ErrorClass::User, e))?,
        config: f.configuration.request()?,
    })
}

/// `--watch`: run `once` (a build, test or run of `req`), then again
/// after every change to a file it depends on, until Ctrl-C (exit 8). A
/// failure is reported and watching goes on; when loading itself failed,
/// every BUILD.star and `kiln.toml` is watched.
pub fn watch_loop(
    ws: &Workspace,
    req: &Request,
    interrupt: &AtomicBool,
    once: &mut dyn FnMut() -> Result<i32, Failure>,
) -> Result<i32, Failure> {
    use std::sync::atomic::Ordering;

    use crate::ops::watch;
    loop {
        match once() {
            Ok(exit::INTERRUPTED) => return Ok(exit::INTERRUPTED),
            Ok(_) => {}
            Err(f) => eprintln!("ERROR: {}", f.message),
        }
        if interrupt.load(Ordering::SeqCst) {
            eprintln!("ERROR: interrupted");
            return Ok(exit::INTERRUPTED);
        }
        let w = watch::watched(ws, req).unwrap_or_else(|_| every_build_file(ws));
        eprintln!(
            "watch: waiting for a change to {} files (Ctrl-C to stop)",
            w.files.len()
        );
        match watch::wait_for_change(&w, interrupt)
            .map_err(|e| Failure::new(ErrorClass::Environment, e))?
        {
            Some(path) => {
                let shown = path.strip_prefix(&ws.root).unwrap_or(&path);
                eprintln!("watch: `{}` changed; building again", shown.display());
            }
            None => return Ok(exit::INTERRUPTED),
        }
    }
}

/// What to watch when loading failed: `kiln.toml` and every package's
/// BUILD.star, with the package directories (a new package appears).
fn every_build_file(ws: &Workspace) -> crate::ops::watch::Watched {
    let mut w = crate::ops::watch::Watched::default();
    w.files.insert(ws.root.join(crate::workspace::CONFIG_FILE));
    if let Ok((pkgs, dirs)) = ws.walk_packages(&crate::label::PackagePath::root()) {
        for p in pkgs {
            w.files.insert(ws.root.join(Workspace::build_file(&p)));
        }
        for d in dirs {
            w.dirs.insert(ws.root.join(d));
        }
    }
    w
}

/// Take the workspace lock (waiting, with a message, for another kiln
/// command in the same workspace).
pub fn lock_workspace(ws: &Workspace) -> Result<(), Failure> {
    crate::workspace::lock(&ws.root, |pid| {
        let who = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
        eprintln!(
            "kiln: another kiln command{who} is running in this workspace; waiting for it to finish..."
        );
    })
    .map_err(|e| Failure::new(ErrorClass::Local, e))
}

/// The workspace at `cwd`, execution options from the flags, and an
/// interrupt flag set by SIGINT/SIGTERM.
pub fn prepare(
    cwd: &Path,
    jobs: Option<usize>,
    f: &BuildFlags,
) -> Result<(Workspace, ExecOptions, Arc<AtomicBool>), Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    lock_workspace(&ws)?;
    let remote = f.remote(&ws.config)?;
    let executor = f.executor(&ws.config, remote.as_ref())?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // With an executor `-j` bounds remote actions (most of the time is
    // waiting on the network), as in Bazel; local work keeps the cores.
    let jobs = jobs.unwrap_or(if executor.is_some() { 50 } else { cores });
    let local_jobs = match f.local_jobs {
        Some(n) => n as usize,
        None if executor.is_some() => cores,
        None => jobs,
    };
    let opts = ExecOptions {
        jobs,
        local_jobs,
        executor: executor.map(Arc::new),
        keep_going: f.keep_going,
        progress: match f.progress {
            Progress::Auto => ProgressMode::Auto,
            Progress::Plain => ProgressMode::Plain,
            Progress::None => ProgressMode::None,
        },
        profile: f.profile.clone(),
        remote: remote.map(Arc::new),
        context: ExecContext::new(f.cache_dir()),
        flaky_test_attempts: 1,
    };
    let interrupt = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, interrupt.clone());
    }
    Ok((ws, opts, interrupt))
}

/// Build `patterns` as `kiln build` does (summary line, `--summary-json`);
/// returns the exit code, the workspace and what the build did.
pub fn build_patterns(
    cwd: &Path,
    jobs: Option<usize>,
    patterns: &[String],
    f: &BuildFlags,
) -> Result<(i32, Workspace, build::BuildOutcome), Failure> {
    let (ws, opts, interrupt) = prepare(cwd, jobs, f)?;
    let req = request(patterns, f)?;
    let o = build::build(&ws, &req, &f.cache_dir(), &opts, interrupt)
        .map_err(|e| Failure::new(e.class(), e))?;
    let code = report(&o, f, &opts)?;
    Ok((code, ws, o))
}

/// Print a build's summary line (and write `--summary-json`); the exit
/// code it means.
pub fn report(o: &build::BuildOutcome, f: &BuildFlags, opts: &ExecOptions) -> Result<i32, Failure> {
    if let Some(path) = &f.summary_json {
        let text = serde_json::to_string_pretty(&summary_json(o)).unwrap_or_default();
        std::fs::write(path, text + "\n").map_err(|e| {
            Failure::new(
                ErrorClass::Environment,
                format!("Cannot write `{}`: {e}", path.display()),
            )
        })?;
    }
    let r = &o.report;
    let mut line = format!("{} actions: {} executed", r.total, r.executed);
    if r.remote_executed > 0 || opts.executor.is_some() {
        line.push_str(&format!(" ({} remotely)", r.remote_executed));
    }
    line.push_str(&format!(", {} cached", r.local_hits));
    if r.remote_hits > 0 || opts.remote.is_some() {
        line.push_str(&format!(", {} remote hits", r.remote_hits));
    }
    if r.failed > 0 {
        line.push_str(&format!(", {} failed", r.failed));
    }
    let skipped = r.total - r.executed - r.local_hits - r.remote_hits - r.failed;
    if skipped > 0 {
        line.push_str(&format!(", {skipped} not run"));
    }
    line.push_str(&format!(" ({:.2}s)", o.duration.as_secs_f64()));
    for w in &o.warnings {
        eprintln!("WARNING: {w}");
    }
    eprintln!("{line}");
    if let Some(note) = r.isolation.as_ref().and_then(|i| i.note.as_ref()) {
        eprintln!("note: sandbox: {note}");
    }
    if let Some(w) = opts.remote.as_ref().and_then(|r| r.warning()) {
        eprintln!("WARNING: {w}");
    }
    Ok(if r.interrupted {
        eprintln!("ERROR: interrupted");
        exit::INTERRUPTED
    } else if r.failed > 0 {
        exit::BUILD_FAILED
    } else {
        exit::OK
    })
}
