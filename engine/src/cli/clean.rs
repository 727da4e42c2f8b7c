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
    clean::clean_outputs(&ws.root);
    if args.cache {
        let dir = args.cache_dir.unwrap_or_else(default_cache_dir);
        clean::clean_cache(&dir).map_err(|e| Failure::new(ErrorClass::User, e))?;
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
            let mut c = kiln_cache::Cache::open(&dir)
                .map_err(|e| Failure::new(ErrorClass::Environment, e))?;
            let (results, blobs, bytes) = c
                .gc(max)
                .map_err(|e| Failure::new(ErrorClass::Environment, e))?;
            out(&format!(
                "removed {results} action results and {blobs} blobs ({bytes} bytes)\n"
            ));
        }
    }
    Ok(exit::OK)
}
