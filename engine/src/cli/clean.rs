//! `kiln clean [--cache]` and `kiln cache stats | gc --max-size SIZE`.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use super::{Failure, exit, out};
use crate::error::ErrorClass;
use crate::ops::build::default_cache_dir;
use crate::ops::clean;
use crate::workspace::Workspace;

/// Arguments of `kiln clean`.
#[derive(Args, Debug)]
pub struct CleanArgs {
    /// Also remove the local cache.
    #[arg(long)]
    cache: bool,
    /// The local cache directory (default: $KILN_CACHE_DIR, else ~/.cache/kiln).
    #[arg(long = "cache-dir", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// Run `kiln clean`.
pub fn run_clean(cwd: &Path, args: CleanArgs) -> Result<i32, Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    super::build::lock_workspace(&ws)?;
    clean::clean_outputs(&ws.root);
    if args.cache {
        let dir = args.cache_dir.unwrap_or_else(default_cache_dir);
        // Alone: a build sharing the cache keeps its blobs until it ends.
        let lock = if dir.join("VERSION").exists() {
            Some(
                kiln_cache::Cache::open_exclusive(&dir, waiting(&dir))
                    .map_err(|e| Failure::new(ErrorClass::Local, e))?,
            )
        } else {
            None
        };
        let r = clean::clean_cache(&dir).map_err(|e| Failure::new(ErrorClass::User, e));
        drop(lock);
        r?;
    }
    Ok(exit::OK)
}

/// Arguments of `kiln cache`.
#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    command: CacheCommand,
    /// The local cache directory (default: $KILN_CACHE_DIR, else ~/.cache/kiln).
    #[arg(long = "cache-dir", value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum CacheCommand {
    /// Blobs, bytes, action results and file states in the local cache.
    Stats,
    /// Shrink the cache: drop the least recently used action results and
    /// every blob no kept result needs.
    Gc {
        /// The most blob bytes to keep (e.g. `10G`, `512M`).
        #[arg(long = "max-size", value_name = "SIZE")]
        max_size: String,
    },
    /// Check every blob against its digest and every action result's
    /// blobs; report orphans. Exit 0 when sound, 36 when something is
    /// broken (without `--repair`).
    Verify {
        /// Drop what is broken (corrupt blobs, results naming missing
        /// blobs; a corrupt database is rebuilt from what can be read), so
        /// the actions run again.
        #[arg(long)]
        repair: bool,
    },
}

fn waiting(dir: &Path) -> impl FnOnce() + '_ {
    move || {
        eprintln!(
            "kiln: another kiln process is using the cache at `{}`; waiting for it to finish...",
            dir.display()
        )
    }
}

/// Run `kiln cache ...`.
pub fn run_cache(args: CacheArgs) -> Result<i32, Failure> {
    let dir = args.cache_dir.unwrap_or_else(default_cache_dir);
    match args.command {
        CacheCommand::Stats => {
            let s = clean::stats(&dir).map_err(|e| Failure::new(ErrorClass::Environment, e))?;
            let mut text = format!(
                "cache: {}\nblobs: {} ({} bytes)\naction results: {}\nfile states: {}\n",
                dir.display(),
                s.blobs,
                s.blob_bytes,
                s.actions,
                s.files
            );
            for (k, v) in &s.counters {
                text.push_str(&format!("{}: {v}\n", k.replace('_', " ")));
            }
            out(&text);
        }
        CacheCommand::Gc { max_size } => {
            let max =
                clean::parse_size(&max_size).map_err(|e| Failure::new(ErrorClass::User, e))?;
            let mut c = kiln_cache::Cache::open_exclusive(&dir, waiting(&dir))
                .map_err(|e| Failure::new(ErrorClass::Local, e))?;
            let (results, blobs, bytes) =
                c.gc(max).map_err(|e| Failure::new(ErrorClass::Local, e))?;
            out(&format!(
                "removed {results} action results and {blobs} blobs ({bytes} bytes)\n"
            ));
        }
        CacheCommand::Verify { repair } => return verify(&dir, repair),
    }
    Ok(exit::OK)
}

fn verify(dir: &Path, repair: bool) -> Result<i32, Failure> {
    if !dir.join("VERSION").exists() {
        return Err(Failure::new(
            ErrorClass::User,
            format!(
                "`{}` is not a kiln cache (no VERSION file); pass the cache with --cache-dir",
                dir.display()
            ),
        ));
    }
    let local = |e| Failure::new(ErrorClass::Local, e);
    let mut c = if repair {
        kiln_cache::Cache::open_exclusive(dir, waiting(dir)).map_err(local)?
    } else {
        kiln_cache::Cache::open(dir).map_err(local)?
    };
    if let Some(what) = c.recovered() {
        eprintln!("WARNING: {what}");
    }
    let r = c.verify(repair).map_err(local)?;
    let mut text = format!(
        "cache: {}\ndatabase: {}\nblobs: {} ({} bytes), {} corrupt, {} stray files, {} partial copies of dead processes\naction results: {}, {} broken\norphan blobs: {} ({} bytes; `kiln cache gc` reclaims them)\n",
        dir.display(),
        r.database.as_deref().unwrap_or("ok"),
        r.blobs,
        r.blob_bytes,
        r.corrupt_blobs.len(),
        r.stray_files.len(),
        r.leftovers.len(),
        r.results,
        r.broken_results.len(),
        r.orphans,
        r.orphan_bytes,
    );
    for d in &r.corrupt_blobs {
        text.push_str(&format!("corrupt blob: {}\n", d.hex()));
    }
    for f in &r.stray_files {
        text.push_str(&format!("stray file: blobs/{f}\n"));
    }
    for (k, why) in &r.broken_results {
        text.push_str(&format!("broken result {}: {why}\n", k.hex()));
    }
    if let Some((blobs, results)) = r.repaired {
        text.push_str(&format!(
            "repaired: removed {blobs} blob files and {results} action results\n"
        ));
    }
    out(&text);
    if (r.broken() && r.repaired.is_none()) || r.database.is_some() {
        return Err(Failure::new(
            ErrorClass::Local,
            format!(
                "the cache at `{}` is damaged; run `kiln cache verify --repair` to drop what is broken",
                dir.display()
            ),
        ));
    }
    Ok(exit::OK)
}
