//! `kiln query EXPR [--output label|label_kind|build|dot|graph|json]`.

use std::path::Path;

use clap::{Args, ValueEnum};

use super::{Failure, exit, out};
use crate::ops::query::{self, OutputFormat};
use crate::workspace::Workspace;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Label,
    #[value(name = "label_kind")]
    LabelKind,
    Build,
    Dot,
    Graph,
    Json,
}

/// Arguments of `kiln query`.
#[derive(Args, Debug)]
pub struct QueryArgs {
    /// The query, e.g. `deps(//p:t)`, `rdeps(//..., //p:t)`,
    /// `kind(genrule, //...)`, `actions(//p:t)`.
    expr: String,
    /// How to print the result.
    #[arg(long, value_enum, default_value = "label")]
    output: Output,
    /// Resolve select() in this configuration (`--config`, `--set`):
    /// without either, every branch counts and selects print as written.
    #[command(flatten)]
    configuration: super::build::ConfigFlags,
}

/// Run `kiln query`.
pub fn run(cwd: &Path, args: QueryArgs) -> Result<i32, Failure> {
    let ws = Workspace::discover(cwd).map_err(|e| Failure::new(e.class(), e))?;
    let format = match args.output {
        Output::Label => OutputFormat::Label,
        Output::LabelKind => OutputFormat::LabelKind,
        Output::Build => OutputFormat::Build,
        Output::Dot | Output::Graph => OutputFormat::Dot,
        Output::Json => OutputFormat::Json,
    };
    let config = args.configuration.request()?;
    let config = (!config.is_empty()).then_some(&config);
    let text =
        query::query_in(ws, &args.expr, format, config).map_err(|e| Failure::new(e.class(), e))?;
    out(&text);
    Ok(exit::OK)
}
