//! Configurations: the values build settings take in one build, and
//! choosing `select()` branches with them.
//!
//! A [`ConfigRequest`] is what the command line asked for (`--config
//! NAME`, `--set LABEL=VALUE`). While the target graph is built
//! (`target.rs`) it becomes a [`Configuration`]: every setting it names is
//! checked to be a `bool_setting` or `string_setting` target and its value
//! allowed; values equal to the setting's default are dropped, so asking
//! for the defaults is the default configuration. Each loaded package is
//! then configured: selects take the branch whose `config_setting`
//! matches (the most specialized one when several do) and settings learn
//! their value.
//!
//! Outputs of a configuration other than the default land in
//! `kiln-out/<dir>/` ([`Configuration::out_dir`]); execution paths inside
//! actions stay `kiln-out/<package>/...` in every configuration, so an
//! action that does not depend on a setting has the same key in all of
//! them.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::error::Location;
use crate::label::Label;
use crate::load::attr::AttrValue;
use crate::load::loader::Package;
use crate::load::rule::TargetDecl;
use crate::load::select::{Part, Select};
use crate::workspace::Workspace;

/// What the command line asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigRequest {
    /// `--config NAME`, in order (later ones win).
    pub names: Vec<String>,
    /// `--set LABEL=VALUE`, in order (win over named configurations).
    pub sets: Vec<(String, String)>,
    /// `kiln test --test-filter`: what test rules run (`ctx.test_filter`).
    pub test_filter: Option<String>,
    /// `kiln test --runs-per-test` (`ctx.runs_per_test`; 0 counts as 1).
    pub runs_per_test: u32,
}

impl ConfigRequest {
    /// Whether it asks for nothing (the default configuration).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.sets.is_empty()
    }

    /// A canonical text of the request: what persisted plans are keyed by.
    pub fn key(&self) -> String {
        let mut s = String::new();
        for n in &self.names {
            s.push_str("--config=");
            s.push_str(n);
            s.push('\n');
        }
        for (l, v) in &self.sets {
            s.push_str("--set=");
            s.push_str(l);
            s.push('=');
            s.push_str(v);
            s.push('\n');
        }
        if let Some(f) = &self.test_filter {
            s.push_str("--test-filter=");
            s.push_str(f);
            s.push('\n');
        }
        if self.runs_per_test > 1 {
            s.push_str(&format!("--runs-per-test={}\n", self.runs_per_test));
        }
        s
    }

    /// The settings asked for, in the order they apply: label text, value,
    /// and where it was written (for messages).
    pub fn settings(&self, ws: &Workspace) -> Result<Vec<(String, String, String)>, String> {
        let mut out = Vec::new();
        for n in &self.names {
            let Some(list) = ws.config.configs.get(n) else {
                let known: Vec<&str> = ws.config.configs.keys().map(String::as_str).collect();
                return Err(format!(
                    "Unknown configuration `{n}` in `--config {n}`: kiln.toml has {}; add a `[config.{n}]` table to kiln.toml",
                    if known.is_empty() {
                        "no `[config.NAME]` tables".to_owned()
                    } else {
                        format!(
                            "only {}",
                            known
                                .iter()
                                .map(|k| format!("`{k}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    }
                ));
            };
            for (l, v, at) in list {
                out.push((l.clone(), v.clone(), format!("{at} (`[config.{n}]`)")));
            }
        }
        for (l, v) in &self.sets {
            out.push((l.clone(), v.clone(), format!("`--set {l}={v}`")));
        }
        Ok(out)
    }
}

/// Which built-in configuration rule a target is, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigKind {
    /// `bool_setting`.
    Bool,
    /// `string_setting`.
    String,
    /// `config_setting`.
    Condition,
}

impl ConfigKind {
    /// The kind of `d`, if it is one of the built-in rules of
    /// `rules/settings.star`.
    pub fn of(d: &TargetDecl) -> Option<ConfigKind> {
        if d.rule
            .file
            .strip_prefix(crate::load::loader::BUILTIN_PREFIX)
            != Some("settings.star")
        {
            return None;
        }
        match d.rule.kind() {
            "bool_setting" => Some(ConfigKind::Bool),
            "string_setting" => Some(ConfigKind::String),
            "config_setting" => Some(ConfigKind::Condition),
            _ => None,
        }
    }
}

/// `true`/`false` as a bool setting is written (`True`, `1`, ... accepted).
pub fn normalize_bool(v: &str) -> Option<&'static str> {
    match v {
        "true" | "True" | "1" => Some("true"),
        "false" | "False" | "0" => Some("false"),
        _ => None,
    }
}

/// A setting's default, as text.
fn default_text(d: &TargetDecl) -> String {
    match d.attr("build_setting_default") {
        Some(AttrValue::Bool(b)) => b.to_string(),
        Some(AttrValue::Str(s)) => s.clone(),
        _ => String::new(),
    }
}

/// Check `value` for setting `d` (`label`); returns it normalized.
fn check_value(d: &TargetDecl, label: &Label, value: &str) -> Result<String, String> {
    match ConfigKind::of(d) {
        Some(ConfigKind::Bool) => normalize_bool(value).map(str::to_owned).ok_or_else(|| {
            format!("`{label}` is a bool_setting: its value is `true` or `false`, not `{value}`")
        }),
        Some(ConfigKind::String) => {
            let allowed = match d.attr("values") {
                Some(AttrValue::StrList(v)) => v.clone(),
                _ => Vec::new(),
            };
            if allowed.is_empty() || allowed.iter().any(|a| a == value) {
                Ok(value.to_owned())
            } else {
                Err(format!(
                    "`{label}` may be {}, not `{value}`",
                    allowed
                        .iter()
                        .map(|a| format!("`{a}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            }
        }
        _ => Err(format!(
            "`{label}` is a `{}` target, not a build setting (`bool_setting` or `string_setting`)",
            d.rule.kind()
        )),
    }
}

/// A configuration in force while a graph is built.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Configuration {
    /// Settings whose value differs from their default, normalized.
    pub values: BTreeMap<Label, String>,
    /// The `--config` names, for the output directory's name.
    pub names: Vec<String>,
    /// Whether `--set` contributed.
    pub has_sets: bool,
    /// `--test-filter` (does not change the output directory).
    pub test_filter: Option<String>,
    /// `--runs-per-test`, at least 1.
    pub runs_per_test: u32,
}

impl Configuration {
    /// Check `req`'s settings: `find` gives the declaration of a label (the
    /// caller loads its package). Errors say which setting, where it was
    /// written and what to do.
    pub fn new(
        req: &ConfigRequest,
        ws: &Workspace,
        find: &mut dyn FnMut(&Label) -> Result<Option<TargetDecl>, String>,
    ) -> Result<Configuration, String> {
        let mut values = BTreeMap::new();
        for (text, value, origin) in req.settings(ws)? {
            let label =
                Label::parse_relative(&text, &crate::label::PackagePath::root()).map_err(|e| {
                    format!(
                        "{origin}: `{text}` is not a label: {}; write `//package:setting`",
                        e.reason
                    )
                })?;
            let Some(d) = find(&label)? else {
                return Err(format!(
                    "{origin}: no target `{label}`; declare it with bool_setting() or string_setting() in `{}`",
                    Workspace::build_file(&label.package)
                ));
            };
            let v = check_value(&d, &label, &value).map_err(|e| format!("{origin}: {e}"))?;
            if v == default_text(&d) {
                values.remove(&label);
            } else {
                values.insert(label, v);
            }
        }
        Ok(Configuration {
            values,
            names: req.names.clone(),
            has_sets: !req.sets.is_empty(),
            test_filter: req.test_filter.clone(),
            runs_per_test: req.runs_per_test.max(1),
        })
    }

    /// Whether it is the default configuration (every setting at its default).
    pub fn is_default(&self) -> bool {
        self.values.is_empty()
    }

    /// The directory under `kiln-out/` for its outputs: none for the
    /// default configuration; the `--config` names joined with `+`; with
    /// `--set` too, a digest of the values after them.
    pub fn out_dir(&self) -> Option<String> {
        if self.is_default() {
            return None;
        }
        let mut h = blake3::Hasher::new();
        for (l, v) in &self.values {
            h.update(l.to_string().as_bytes());
            h.update(b"=");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        let digest = h.finalize().to_hex();
        let short = &digest.as_str()[..8];
        Some(match (self.names.is_empty(), self.has_sets) {
            (false, false) => self.names.join("+"),
            (false, true) => format!("{}-{short}", self.names.join("+")),
            (true, _) => format!("cfg-{short}"),
        })
    }

    /// A description for messages: `configuration debug` or the settings.
    pub fn describe(&self) -> String {
        if self.is_default() {
            return "the default configuration".to_owned();
        }
        let vals: Vec<String> = self
            .values
            .iter()
            .map(|(l, v)| format!("{l}={v}"))
            .collect();
        if self.names.is_empty() {
            format!("the configuration {}", vals.join(" "))
        } else {
            format!(
                "configuration `{}` ({})",
                self.names.join("+"),
                vals.join(" ")
            )
        }
    }

    /// The value of setting `d` (label `l`) here.
    pub fn value_of(&self, l: &Label, d: &TargetDecl) -> String {
        self.values
            .get(l)
            .cloned()
            .unwrap_or_else(|| default_text(d))
    }
}

/// What a condition is: matched or not, and the settings it tests (for
/// choosing the most specialized of several matches).
#[derive(Clone, Debug)]
pub struct Condition {
    /// Whether every setting has the value it asks for.
    pub matches: bool,
    /// Its `flag_values`, normalized.
    pub flags: BTreeSet<(Label, String)>,
}

/// Evaluate the `config_setting` `d` (label `l`) in `config`; `find` gives
/// a setting's declaration.
pub fn condition(
    l: &Label,
    d: &TargetDecl,
    config: &Configuration,
    find: &mut dyn FnMut(&Label) -> Result<Option<TargetDecl>, String>,
) -> Result<Condition, String> {
    let Some(AttrValue::LabelStrDict(flags)) = d.attr("flag_values") else {
        return Err(format!("`{l}` has no `flag_values`"));
    };
    let mut out = Condition {
        matches: true,
        flags: BTreeSet::new(),
    };
    for (setting, want) in flags {
        let Some(sd) = find(setting)? else {
            return Err(format!(
                "{}: `flag_values` of `{l}` names `{setting}`, which does not exist; declare it with bool_setting() or string_setting()",
                d.location
            ));
        };
        let want = check_value(&sd, setting, want)
            .map_err(|e| format!("{}: `flag_values` of `{l}`: {e}", d.location))?;
        if config.value_of(setting, &sd) != want {
            out.matches = false;
        }
        out.flags.insert((setting.clone(), want));
    }
    Ok(out)
}

/// Choose the branch of `s` that applies, given each condition's state.
/// `attr` and `target` are for messages.
pub fn choose(
    s: &Select,
    conditions: &BTreeMap<Label, Condition>,
    config: &Configuration,
    attr: &str,
    target: &Label,
) -> Result<AttrValue, (Location, String)> {
    let matched: Vec<&(Label, AttrValue)> = s
        .branches
        .iter()
        .filter(|(l, _)| conditions.get(l).is_some_and(|c| c.matches))
        .collect();
    let winner = matched.iter().find(|(l, _)| {
        let mine = &conditions[l].flags;
        matched.iter().all(|(o, _)| {
            o == l || {
                let theirs = &conditions[o].flags;
                theirs.is_subset(mine) && theirs != mine
            }
        })
    });
    if let Some((_, v)) = winner {
        return Ok(v.clone());
    }
    if matched.len() > 1 {
        let names: Vec<String> = matched.iter().map(|(l, _)| format!("`{l}`")).collect();
        return Err((
            s.location.clone(),
            format!(
                "select() in attribute `{attr}` of `{target}` is ambiguous in {}: {} all match and none tests every setting the others test; make the conditions exclusive or add one that refines the others",
                config.describe(),
                names.join(", ")
            ),
        ));
    }
    if let Some(v) = &s.default {
        return Ok(v.clone());
    }
    let names: Vec<String> = s.branches.iter().map(|(l, _)| format!("`{l}`")).collect();
    let why = if s.no_match_error.is_empty() {
        String::new()
    } else {
        format!(": {}", s.no_match_error)
    };
    Err((
        s.location.clone(),
        format!(
            "No branch of select() in attribute `{attr}` of `{target}` matches {}{why}; the conditions are {}, none of which holds: add a `//conditions:default` branch or choose a configuration that matches one (`--config NAME`, `--set LABEL=VALUE`)",
            config.describe(),
            names.join(", ")
        ),
    ))
}

/// `pkg` configured: each select resolved with `conditions` (every
/// condition label its targets test, evaluated) and each setting given
/// its value. A target whose select cannot be resolved keeps its
/// unconfigured value and its error (located at the select) is returned
/// beside the package: only a build that needs that target fails, as in
/// Bazel.
pub fn configure_package(
    pkg: &Package,
    conditions: &BTreeMap<Label, Condition>,
    config: &Configuration,
) -> (Package, Vec<(Label, Location, String)>) {
    let mut declared = pkg.declared.clone();
    let mut errors = Vec::new();
    for d in &mut declared.targets {
        let label = Label {
            package: pkg.path.clone(),
            name: d.name.clone(),
        };
        if matches!(
            ConfigKind::of(d),
            Some(ConfigKind::Bool | ConfigKind::String)
        ) {
            let v = config.value_of(&label, d);
            d.setting_value = Some(match ConfigKind::of(d) {
                Some(ConfigKind::Bool) => AttrValue::Bool(v == "true"),
                _ => AttrValue::Str(v),
            });
        }
        let mut resolved = Vec::new();
        for (i, sel) in &d.selects {
            let attr = &d.rule.attrs[*i].0;
            let mut value: Option<AttrValue> = None;
            for p in &sel.parts {
                let v = match p {
                    Part::Plain(v) => Ok(v.clone()),
                    Part::Select(s) => choose(s, conditions, config, attr, &label),
                };
                let joined = v.and_then(|v| match value.take() {
                    None => Ok(v),
                    Some(acc) => acc.concat(v).map_err(|e| {
                        (
                            d.location.clone(),
                            format!("Attribute `{attr}` of `{label}` {e}"),
                        )
                    }),
                });
                match joined {
                    Ok(v) => value = Some(v),
                    Err((at, message)) => {
                        errors.push((label.clone(), at, message));
                        value = None;
                        break;
                    }
                }
            }
            resolved.push((*i, value));
        }
        if resolved.iter().all(|(_, v)| v.is_some()) {
            for (i, v) in resolved {
                if let Some(v) = v {
                    d.attrs[i] = v;
                }
            }
            d.selects.clear();
        }
    }
    let pkg = Package {
        path: pkg.path.clone(),
        build_file: pkg.build_file.clone(),
        declared,
        default_visibility: pkg.default_visibility.clone(),
        loads: pkg.loads.clone(),
    };
    (pkg, errors)
}

/// Shared form of packages kept unconfigured while a graph is built.
pub type RawPackages = BTreeMap<crate::label::PackagePath, Arc<Package>>;
