//! `ctx.actions.run`: run a command in the action's sandbox (the kind is
//! called `Command`; "run" is kept for Bazel's name of the native).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::Value;
use starlark::values::dict::DictRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::{NoneOr, NoneType};

use super::{ActionKind, ExecContext, Execution, Kind, get_strs, put_strs};
use crate::action::key::KeyEncoder;
use crate::action::{Action, shell_quote};
use crate::analysis::ctx::{collect_args, collect_files, declare_action};
use crate::artifact::Artifact;

/// A command to run.
///
/// Invariant: `argv` is non-empty; `env` is sorted (a `BTreeMap`), so its
/// encoding is canonical.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommandAction {
    /// The command line; `argv[0]` is the program.
    pub argv: Vec<String>,
    /// Extra environment variables on top of the sandbox's scrubbed set.
    pub env: BTreeMap<String, String>,
    /// Absolute paths of toolchain files the command uses (sorted); their
    /// digests enter the key, like `argv[0]`'s when it is absolute.
    pub tools: Vec<String>,
    /// The command may use the network (Bazel's `requires-network`): for
    /// fetch steps whose outputs are pinned by their inputs (a lock file).
    pub network: bool,
    /// Platform properties sent to a remote executor (Bazel's
    /// `exec_properties`), sorted by name; part of the key when present.
    pub exec_properties: BTreeMap<String, String>,
    /// Never run on a remote executor (Bazel's `no-remote-exec`); not in
    /// the key (where an action runs does not change what it makes).
    pub no_remote_exec: bool,
    /// Seconds the command may run (locally and remotely); not in the key.
    pub timeout: Option<u64>,
    /// Its result is never cached, locally or remotely, nor looked up
    /// (Bazel's `no-cache`): it runs whenever its key changes, even to one
    /// an earlier build ran (outputs this key wrote are still up to date).
    /// Not in the key.
    pub no_cache: bool,
    /// What progress lines say it does (Bazel's `progress_message`, with
    /// `%{label}`, `%{input}` and `%{output}` already replaced); empty for
    /// none. Not in the key.
    pub progress_message: String,
}

impl Kind for CommandAction {
    const TAG: u8 = 0;

    fn key(&self, e: &mut KeyEncoder) {
        e.str("run");
        e.u64(self.argv.len() as u64);
        for x in &self.argv {
            e.str(x);
        }
        e.u64(self.env.len() as u64);
        for (k, v) in &self.env {
            e.str(k);
            e.str(v);
        }
        if self.network {
            e.str("network");
        }
        if !self.exec_properties.is_empty() {
            e.str("exec_properties");
            e.u64(self.exec_properties.len() as u64);
            for (k, v) in &self.exec_properties {
                e.str(k);
                e.str(v);
            }
        }
    }

    fn dump(&self, s: &mut String) {
        let argv: Vec<String> = self.argv.iter().map(|a| shell_quote(a)).collect();
        let _ = writeln!(s, "  run: {}", argv.join(" "));
        for (k, v) in &self.env {
            let _ = writeln!(s, "  env: {k}={}", shell_quote(v));
        }
        if !self.tools.is_empty() {
            let _ = writeln!(s, "  tools: {} files", self.tools.len());
        }
        if self.network {
            let _ = writeln!(s, "  network: yes");
        }
        for (k, v) in &self.exec_properties {
            let _ = writeln!(s, "  exec_property: {k}={}", shell_quote(v));
        }
        if self.no_remote_exec {
            let _ = writeln!(s, "  remote: no");
        }
        if self.no_cache {
            let _ = writeln!(s, "  cache: no");
        }
        if let Some(t) = self.timeout {
            let _ = writeln!(s, "  timeout: {t}s");
        }
        if !self.progress_message.is_empty() {
            let _ = writeln!(s, "  message: {}", self.progress_message);
        }
    }

    fn encode(&self, w: &mut Writer) {
        put_strs(w, self.argv.iter());
        w.u32(self.env.len() as u32);
        for (k, v) in &self.env {
            w.str(k);
            w.str(v);
        }
        put_strs(w, self.tools.iter());
        w.u8(self.network as u8);
        w.u32(self.exec_properties.len() as u32);
        for (k, v) in &self.exec_properties {
            w.str(k);
            w.str(v);
        }
        w.u8(self.no_remote_exec as u8);
        w.u64(self.timeout.map_or(0, |t| t + 1));
        w.str(&self.progress_message);
        w.u8(self.no_cache as u8);
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        let argv = get_strs(r)?;
        let m = r.u32()?;
        let mut env = BTreeMap::new();
        for _ in 0..m {
            let k = r.str()?.to_owned();
            env.insert(k, r.str()?.to_owned());
        }
        let tools = get_strs(r)?;
        let network = r.u8()? != 0;
        let m = r.u32()?;
        let mut exec_properties = BTreeMap::new();
        for _ in 0..m {
            let k = r.str()?.to_owned();
            exec_properties.insert(k, r.str()?.to_owned());
        }
        let no_remote_exec = r.u8()? != 0;
        let timeout = r.u64()?.checked_sub(1);
        let progress_message = r.str()?.to_owned();
        let no_cache = r.u8()? != 0;
        (!argv.is_empty()).then_some(CommandAction {
            argv,
            env,
            tools,
            network,
            exec_properties,
            no_remote_exec,
            timeout,
            progress_message,
            no_cache,
        })
    }

    fn execute(&self, _cx: &ExecContext, _root: &Path, _action: &Action) -> Execution<'_> {
        Execution::Spawn(self)
    }

    fn tool_files(&self) -> Vec<&str> {
        self.argv
            .iter()
            .take(1)
            .filter(|p| p.starts_with('/'))
            .chain(&self.tools)
            .map(String::as_str)
            .collect()
    }

    fn command_line(&self) -> Option<String> {
        let argv: Vec<String> = self.argv.iter().map(|x| shell_quote(x)).collect();
        Some(argv.join(" "))
    }
}

/// `ctx.actions.run`.
///
/// ```python
/// out = ctx.actions.declare_output("lib.o")
/// ctx.actions.run(arguments = ["clang", "-c", src, "-o", out], outputs = [out])
/// ```
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Run a command: `arguments` is the whole argv (strings, ints, files,
    /// nested lists); files in it become inputs. `network = True` lets it
    /// reach the network (fetch steps pinned by a lock file); every other
    /// action runs without. `progress_message` is what progress lines say
    /// it does (`%{label}`, `%{input}`, `%{output}`: the target, the first
    /// input's and the first output's path).
    fn run<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] arguments: Value<'v>,
        #[starlark(require = named)] outputs: Value<'v>,
        #[starlark(require = named)] inputs: Option<Value<'v>>,
        #[starlark(require = named)] env: Option<Value<'v>>,
        #[starlark(require = named, default = "Run")] mnemonic: &str,
        #[starlark(require = named)] tools: Option<UnpackListOrTuple<String>>,
        #[starlark(require = named, default = false)] network: bool,
        #[starlark(require = named)] exec_properties: Option<Value<'v>>,
        #[starlark(require = named)] execution_requirements: Option<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] timeout: NoneOr<i32>,
        #[starlark(require = named, default = "")] progress_message: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let mut tools = tools.map(|t| t.items).unwrap_or_default();
        if let Some(t) = tools.iter().find(|t| !t.starts_with('/')) {
            anyhow::bail!(
                "`tools` holds absolute paths of toolchain files (see `ctx.toolchain`), got `{t}`"
            );
        }
        tools.sort();
        tools.dedup();
        let mut argv = Vec::new();
        let mut ins = Vec::new();
        collect_args(arguments, &mut argv, &mut ins)?;
        if argv.is_empty() {
            anyhow::bail!(
                "`ctx.actions.run(arguments = ...)` is empty; the first element is the program to run"
            );
        }
        if let Some(i) = inputs {
            collect_files(i, "inputs", &mut ins)?;
        }
        let mut outs = Vec::new();
        collect_files(outputs, "outputs", &mut outs)?;
        let outset: BTreeSet<&str> = outs.iter().map(Artifact::path).collect();
        ins.retain(|a| !outset.contains(a.path()));
        let mut envmap = BTreeMap::new();
        if let Some(e) = env {
            let d = DictRef::from_value(e).ok_or_else(|| {
                anyhow::anyhow!(
                    "`env` expects a dict of string to string, got `{}`",
                    e.get_type()
                )
            })?;
            for (k, v) in d.iter() {
                match (k.unpack_str(), v.unpack_str()) {
                    (Some(k), Some(v)) => {
                        envmap.insert(k.to_owned(), v.to_owned());
                    }
                    _ => anyhow::bail!("`env` expects a dict of string to string"),
                }
            }
        }
        // The target's `exec_properties`, then the action's own.
        let mut all_properties = crate::analysis::ctx::target_exec_properties(eval);
        if let Some(v) = exec_properties {
            all_properties.extend(str_dict(v, "exec_properties")?);
        }
        let exec_properties = all_properties;
        // As in Bazel, the target's tags are execution requirements of its
        // commands too. Bazel's others (no-sandbox, supports-workers, cpu:N
        // ...) change nothing here.
        let mut requirements = crate::analysis::ctx::target_tags(eval);
        if let Some(v) = execution_requirements {
            requirements.extend(str_dict(v, "execution_requirements")?.into_keys());
        }
        let required = |names: &[&str]| requirements.iter().any(|r| names.contains(&r.as_str()));
        let no_remote_exec = required(&["no-remote-exec", "no-remote", "local"]);
        let network = network || required(&["requires-network"]);
        let no_cache = required(&["no-cache"]);
        let timeout = match timeout.into_option() {
            None => None,
            Some(t) if t > 0 => Some(t as u64),
            Some(t) => anyhow::bail!("`timeout` is in seconds and must be positive, got {t}"),
        };
        let progress_message = progress_message
            .replace("%{label}", &crate::analysis::ctx::target_label(eval)?)
            .replace("%{input}", ins.first().map_or("", Artifact::path))
            .replace("%{output}", outs.first().map_or("", Artifact::path));
        let kind = ActionKind::Command(CommandAction {
            argv,
            env: envmap,
            tools,
            network,
            exec_properties,
            no_remote_exec,
            timeout,
            progress_message,
            no_cache,
        });
        declare_action(eval, mnemonic, kind, ins, outs)
    }
}

/// A dict of string to string, for the parameter `what`.
fn str_dict(v: Value, what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let d = DictRef::from_value(v).ok_or_else(|| {
        anyhow::anyhow!("`{what}` expects a dict of string to string, got `{}`", v.get_type())
    })?;
    let mut out = BTreeMap::new();
    for (k, v) in d.iter() {
        match (k.unpack_str(), v.unpack_str()) {
            (Some(k), Some(v)) => {
                out.insert(k.to_owned(), v.to_owned());
            }
            _ => anyhow::bail!("`{what}` expects a dict of string to string"),
        }
    }
    Ok(out)
}

