//! `kiln clean [--cache]` and `kiln cache stats | gc`.

use std::fs;
use std::path::Path;

use kiln_cache::{CacheError, Stats};

use crate::artifact::OUT_DIR;
use crate::exec::sandbox::remove_tree;

/// Remove the workspace's `kiln-out/`.
pub fn clean_outputs(root: &Path) {
    remove_tree(&root.join(OUT_DIR));
}

/// Errors of `kiln clean` and `kiln cache`.
#[derive(Debug, thiserror::Error)]
pub enum CleanError {
    /// `--cache-dir` names something that is not a kiln cache.
    #[error("`{0}` does not look like a kiln cache (no VERSION file); not removing it")]
    NotACache(std::path::PathBuf),
    /// A size that does not parse.
    #[error("Invalid size `{0}`: expected a number with an optional K, M, G or T suffix")]
    Size(String),
}

/// Remove the local cache at `dir`, refusing a directory that is not one.
pub fn clean_cache(dir: &Path) -> Result<(), CleanError> {
    if !dir.exists() {
        return Ok(());
    }
    let version = fs::read_to_string(dir.join("VERSION")).unwrap_or_default();
    if !version.starts_with("kiln-cache ") {
        return Err(CleanError::NotACache(dir.to_path_buf()));
    }
    remove_tree(dir);
    Ok(())
}

/// Cache totals.
pub fn stats(dir: &Path) -> Result<Stats, CacheError> {
    crate::ops::build::open_cache(dir)?.stats()
}

/// Parse `10G`, `512M`, `64K`, `1000` (bytes; powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, CleanError> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                'B' => 1,
                _ => return Err(CleanError::Size(s.to_owned())),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| CleanError::Size(s.to_owned()))?;
    if n.is_nan() || n < 0.0 {
        return Err(CleanError::Size(s.to_owned()));
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10").unwrap(), 10);
        assert_eq!(parse_size("2K").unwrap(), 2048);
        assert_eq!(parse_size("1.5M").unwrap(), 1572864);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert!(parse_size("x").is_err());
        assert!(parse_size("5Q").is_err());
    }
}
