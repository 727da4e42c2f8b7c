//! `kiln build`: plan (reusing the persisted analysis when nothing it read
//! changed), then execute against the local cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use kiln_cache::{Cache, CacheError};

use crate::analysis::{AnalysisError, analyze};
use crate::error::ErrorClass;
use crate::exec::{ExecError, ExecOptions, ExecReport, execute};
use crate::graph::target::{GraphError, TargetGraph};
use crate::label::{LabelError, TargetPattern};
use crate::load::loader::{LoadError, Loader};
use crate::plan::persist as plan;
use crate::plan::{Plan, PlanTarget, Request, uptodate};
use crate::workspace::Workspace;

/// Errors of `kiln build` other than failing actions.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A bad pattern.
    #[error(transparent)]
    Label(#[from] LabelError),
    /// Loading failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The target graph failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Analysis failed.
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// Execution could not proceed.
    #[error(transparent)]
    Exec(#[from] ExecError),
}

impl BuildError {
    /// Who must act.
    pub fn class(&self) -> ErrorClass {
        match self {
            BuildError::Label(_) => ErrorClass::User,
            BuildError::Load(e) => e.class(),
            BuildError::Graph(e) => e.class(),
            BuildError::Analysis(e) => e.class(),
            BuildError::Cache(_) | BuildError::Exec(_) => ErrorClass::Local,
        }
    }
}

/// Open the local cache at `dir`, warning on stderr if it had to recover
/// (a corrupt database moved aside).
pub fn open_cache(dir: &Path) -> Result<Cache, CacheError> {
    let c = Cache::open(dir)?;
    if let Some(what) = c.recovered() {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "WARNING: {what}");
    }
    Ok(c)
}

/// The default local cache directory: `$KILN_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/kiln`, else `~/.cache/kiln`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("KILN_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("kiln");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("kiln")
}

/// Parse command-line patterns (default `//...`).
pub fn parse_patterns(patterns: &[String]) -> Result<Vec<TargetPattern>, LabelError> {
    if patterns.is_empty() {
        return Ok(vec![TargetPattern::parse("//...")?]);
    }
    patterns.iter().map(|p| TargetPattern::parse(p)).collect()
}

/// A plan for some patterns, and how it was made.
pub struct MadePlan {
    /// The plan.
    pub plan: Plan,
    /// The files it depends on.
    pub watched: plan::Watched,
    /// Whether the persisted plan was reused (no loading or analysis).
    pub reused: bool,
    /// Warnings loading gave (`deprecation`); none when reused.
    pub warnings: Vec<String>,
}

/// The plan for `patterns`: persisted if still valid, else from loading and
/// analysis (and then persisted), with the files it depends on.
pub fn make_plan(ws: &Workspace, req: &Request) -> Result<MadePlan, BuildError> {
    if let Some((plan, watched)) = plan::load(&ws.root, req) {
        return Ok(MadePlan {
            plan,
            watched,
            reused: true,
            warnings: Vec::new(),
        });
    }
    let since = kiln_cache::stat::now_ns();
    let loader = Loader::new(ws.clone())?;
    let g = TargetGraph::load(&loader, &req.patterns, true, Some(&req.config))?;
    kiln_cache::fault::point("analysis");
    let analysis = analyze(&loader, &g, &g.roots)?;
    let p = Plan::from_analysis(&g, &analysis)?;
    // A plan that cannot be saved is rebuilt next time; not an error.
    let w = plan::save(
        &ws.root,
        req,
        &plan::watched_files(&loader, &g, &analysis.read_files),
        since,
        &p,
    )
    .unwrap_or_default();
    Ok(MadePlan {
        plan: p,
        watched: w,
        reused: false,
        warnings: g.warnings,
    })
}

/// What a build did.
pub struct BuildOutcome {
    /// Execution counts.
    pub report: ExecReport,
    /// The requested targets, as planned.
    pub targets: Vec<PlanTarget>,
    /// Wall time.
    pub duration: Duration,
    /// Whether the persisted analysis was reused.
    pub plan_reused: bool,
    /// Warnings of loading (printed before the build's line).
    pub warnings: Vec<String>,
    /// The configuration's directory under `kiln-out/`, if not the default.
    pub out_dir: Option<String>,
}

impl BuildOutcome {
    /// Where execution path `p` is in the workspace (relative to the root).
    pub fn workspace_path<'a>(&self, p: &'a str) -> std::borrow::Cow<'a, str> {
        crate::artifact::workspace_path(p, self.out_dir.as_deref())
    }
}

/// Run `kiln build`.
pub fn build(
    ws: &Workspace,
    req: &Request,
    cache_dir: &Path,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<BuildOutcome, BuildError> {
    match build_once(ws, req, cache_dir, opts, interrupt.clone()) {
        // The database is an index of the blobs: a damaged one is moved
        // aside and the build runs again with a new one (actions run again;
        // nothing wrong is ever read from it).
        Err(BuildError::Cache(e) | BuildError::Exec(ExecError::Cache(e))) if e.is_corrupt() => {
            let aside = Cache::quarantine(cache_dir)?;
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "WARNING: {e}\nWARNING: moved the damaged database to `{}`; building again with a new one",
                aside.display()
            );
            uptodate::invalidate(&ws.root, req);
            build_once(ws, req, cache_dir, opts, interrupt)
        }
        Err(BuildError::Cache(e) | BuildError::Exec(ExecError::Cache(e)))
            if e.may_be_disk_full() && disk_full(cache_dir) =>
        {
            Err(BuildError::Exec(ExecError::Local(format!(
                "{e}\nNo space left on device: the filesystem of the cache `{}` is full",
                cache_dir.display()
            ))))
        }
        r => r,
    }
}

/// Whether the filesystem holding `dir` has (almost) no space left.
fn disk_full(dir: &Path) -> bool {
    nix::sys::statvfs::statvfs(dir)
        .is_ok_and(|s| s.blocks_available().saturating_mul(s.fragment_size()) < (1 << 20))
}

fn build_once(
    ws: &Workspace,
    req: &Request,
    cache_dir: &Path,
    opts: &ExecOptions,
    interrupt: Arc<AtomicBool>,
) -> Result<BuildOutcome, BuildError> {
    let t0 = Instant::now();
    let root = &ws.root;
    if opts.profile.is_none()
        && let Some(noop) = uptodate::check(root, req, cache_dir)
    {
        if !noop.changed.is_empty() {
            let mut cache = open_cache(cache_dir)?;
            let ws_key = crate::artifact::runs_key(root, noop.out_dir.as_deref());
            cache.transaction(|t| {
                noop.changed
                    .iter()
                    .try_for_each(|name| t.set_up_to_date(&ws_key, name))
            })?;
            uptodate::clear_changed(root, req);
        }
        let report = ExecReport {
            total: noop.total,
            local_hits: noop.total,
            ..Default::default()
        };
        return Ok(BuildOutcome {
            report,
            targets: noop.targets,
            duration: t0.elapsed(),
            plan_reused: true,
            warnings: Vec::new(),
            out_dir: noop.out_dir,
        });
    }
    uptodate::invalidate(root, req);
    let MadePlan {
        plan: p,
        watched,
        reused: plan_reused,
        warnings,
    } = make_plan(ws, req)?;
    let targets = p.targets.clone();
    let out_dir = p.out_dir.clone();
    let mut cache = open_cache(cache_dir)?;
    let report = execute(root, &mut cache, p, opts, interrupt)?;
    record_remote_traffic(&cache, opts);
    if let Some(snapshot) = &report.snapshot {
        let files: Vec<(PathBuf, Option<kiln_cache::Stat>)> = watched
            .iter()
            .map(|(f, st)| (root.join(f), *st))
            .chain(snapshot.iter().map(|(p, st)| (p.clone(), Some(*st))))
            .collect();
        // Without the record the next no-op takes the normal path; not an error.
        let _ = uptodate::write(
            root,
            req,
            cache_dir,
            &files,
            &uptodate::NoOp {
                total: report.total,
                targets: targets.clone(),
                changed: report.changed.clone(),
                out_dir: out_dir.clone(),
            },
        );
    }
    Ok(BuildOutcome {
        report,
        targets,
        duration: t0.elapsed(),
        plan_reused,
        warnings,
        out_dir,
    })
}

/// Add a build's remote cache traffic to the cache's counters (for
/// `kiln cache stats`).
pub fn record_remote_traffic(cache: &Cache, opts: &ExecOptions) {
    if let Some(x) = &opts.executor {
        use std::sync::atomic::Ordering::Relaxed;
        let t = &x.traffic;
        let _ = cache.add_counters(&[
            ("remote_executed", t.executed.load(Relaxed)),
            ("remote_exec_cached", t.cached.load(Relaxed)),
            ("remote_bytes_down", t.bytes_down.load(Relaxed)),
            ("remote_bytes_up", t.bytes_up.load(Relaxed)),
        ]);
    }
    if let Some(r) = &opts.remote {
        use std::sync::atomic::Ordering::Relaxed;
        let t = &r.traffic;
        // Statistics only: a failure to record them is not a build failure.
        let _ = cache.add_counters(&[
            ("remote_hits", t.hits.load(Relaxed)),
            ("remote_misses", t.misses.load(Relaxed)),
            ("remote_uploads", t.uploads.load(Relaxed)),
            ("remote_bytes_down", t.bytes_down.load(Relaxed)),
            ("remote_bytes_up", t.bytes_up.load(Relaxed)),
        ]);
    }
}

/// The `--summary-json` document (DESIGN.md section 5).
pub fn summary_json(o: &BuildOutcome) -> serde_json::Value {
    let r = &o.report;
    let outputs: serde_json::Map<String, serde_json::Value> = o
        .targets
        .iter()
        .map(|t| {
            let files: Vec<String> = t
                .outputs
                .iter()
                .map(|p| o.workspace_path(p).into_owned())
                .collect();
            (t.label.to_string(), serde_json::json!(files))
        })
        .collect();
    serde_json::json!({
        "actions": {
            "total": r.total,
            "executed": r.executed,
            "local_hits": r.local_hits,
            "remote_hits": r.remote_hits,
            "remote_executed": r.remote_executed,
            "failed": r.failed,
        },
        "outputs": outputs,
        "duration_ms": o.duration.as_millis() as u64,
        "analysis_reused": o.plan_reused,
        "interrupted": r.interrupted,
        "sandbox": r.isolation.as_ref().map(|i| serde_json::json!({
            "network_isolated": i.network,
            "workspace_hidden": i.workspace_hidden,
            "tmp_private": i.tmp_private,
            "process_limit": i.process_limit,
            "note": i.note,
        })),
    })
}
