//! `kiln explain TARGET`: for each action the target needs, what happened
//! to it in the last build that needed it, and why.

use std::fmt::Write as _;

use super::build::{BuildError, make_plan};
use crate::exec::record::{Outcome, Record};
use crate::graph::config::ConfigRequest;
use crate::label::TargetPattern;
use crate::plan::Request;
use crate::workspace::Workspace;

/// The explanation text.
pub fn explain(
    ws: &Workspace,
    pattern: &TargetPattern,
    config: &ConfigRequest,
    cache_dir: &std::path::Path,
) -> Result<String, BuildError> {
    let req = Request {
        patterns: vec![pattern.clone()],
        config: config.clone(),
    };
    let plan = make_plan(ws, &req)?.plan;
    let cache = crate::ops::build::open_cache(cache_dir)?;
    let ws_key = crate::artifact::runs_key(&ws.root, plan.out_dir.as_deref());
    let mut out = String::new();
    for a in &plan.actions {
        let name = a.name().to_string();
        let rows = cache.run_records(&ws_key, &name)?;
        let row = rows.into_iter().find(|(n, _, _)| *n == name);
        let line = match row {
            None => "not built yet".to_owned(),
            Some((_, code, rec)) => {
                let rec = Record::decode(&rec);
                let why = rec
                    .as_ref()
                    .map(|r| r.reason.as_str())
                    .unwrap_or("(no record)");
                let key = rec
                    .as_ref()
                    .map(|r| format!(" [key {}]", &r.key.hex()[..12]))
                    .unwrap_or_default();
                match Outcome::from_code(code) {
                    Some(Outcome::UpToDate) => format!("cached: outputs were up to date{key}"),
                    Some(Outcome::Executed) => format!("executed: {why}{key}"),
                    Some(Outcome::Restored) => format!("cached: {why}{key}"),
                    Some(Outcome::Failed) => format!("failed: {why}{key}"),
                    None => "unknown record".to_owned(),
                }
            }
        };
        let _ = writeln!(out, "{name} {}: {line}", a.mnemonic);
    }
    Ok(out)
}
