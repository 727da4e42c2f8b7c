//! `ctx.actions.compose`: plug components' exports into a socket
//! component's imports, in-process (wac-graph), and encode the result.
//!
//! Unlike `wac plug`, a plug that satisfies none of the socket's imports is
//! an error, naming it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use wac_graph::types::Package;
use wac_graph::{CompositionGraph, EncodeOptions};

use super::wasm::write_output;
use crate::action::tool_versions::COMPONENT_TOOLS;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::none::NoneType;
use starlark::values::{Value, ValueLike};

use super::{ActionKind, ExecContext, Execution, Kind, get_strs, put_strs};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
use crate::artifact::Artifact;

/// Compose a socket with plugs.
#[derive(Clone, Debug, PartialEq)]
pub struct Compose {
    /// Execution path of the socket component (one of the inputs).
    pub socket: String,
    /// Execution paths of the plugs, in the order given (inputs too).
    pub plugs: Vec<String>,
}

impl Compose {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec!["compose", COMPONENT_TOOLS, &self.socket];
        v.extend(self.plugs.iter().map(String::as_str));
        v
    }

    /// Compose into the sandbox at `root`.
    fn run(&self, root: &Path, outputs: &[Artifact]) -> Result<(), String> {
        let mut graph = CompositionGraph::new();
        let mut register = |path: &str, name: &str| -> Result<_, String> {
            let bytes =
                std::fs::read(root.join(path)).map_err(|e| format!("cannot read `{path}`: {e}"))?;
            let pkg = Package::from_bytes(name, None, bytes, graph.types_mut())
                .map_err(|e| format!("`{path}` is not a valid component: {e:#}"))?;
            graph
                .register_package(pkg)
                .map_err(|e| format!("cannot register `{path}`: {e:#}"))
        };
        let socket = register(&self.socket, "kiln:socket")?;
        let mut plugs = Vec::new();
        for (i, p) in self.plugs.iter().enumerate() {
            plugs.push((p.clone(), register(p, &format!("kiln:plug{i}"))?));
        }
        let socket_inst = graph.instantiate(socket);
        let (imports, exports): (BTreeSet<String>, Vec<(String, Vec<String>)>) = {
            let types = graph.types();
            let imports = types[graph[socket].ty()].imports.keys().cloned().collect();
            let exports = plugs
                .iter()
                .map(|(path, plug)| {
                    let names = types[graph[*plug].ty()].exports.keys().cloned();
                    (path.clone(), names.collect())
                })
                .collect();
            (imports, exports)
        };
        for ((path, plug), (_, served)) in plugs.iter().zip(match_plugs(&imports, &exports)) {
            if served.is_empty() {
                return Err(format!(
                    "plug `{path}` satisfies none of the socket's imports; remove it or fix its exports"
                ));
            }
            let inst = graph.instantiate(*plug);
            for name in &served {
                let export = graph
                    .alias_instance_export(inst, name)
                    .map_err(|e| format!("{e:#}"))?;
                graph
                    .set_instantiation_argument(socket_inst, name, export)
                    .map_err(|e| format!("`{path}` cannot satisfy import `{name}`: {e:#}"))?;
            }
        }
        let exports: Vec<String> = graph.types()[graph[socket].ty()]
            .exports
            .keys()
            .cloned()
            .collect();
        for name in exports {
            let e = graph
                .alias_instance_export(socket_inst, &name)
                .map_err(|e| format!("{e:#}"))?;
            graph.export(e, &name).map_err(|e| format!("{e:#}"))?;
        }
        let bytes = graph
            .encode(EncodeOptions {
                define_components: true,
                validate: true,
                processor: None,
            })
            .map_err(|e| format!("cannot encode the composition: {e:#}"))?;
        write_output(root, outputs, &bytes)
    }
}

/// Which of the socket's `imports` each plug serves, in the order of
/// `plugs` (name, its exports): every import that is one of its exports,
/// by exact interface name (versions included). A plug serving none is
/// unused, which is an error. This is the one place that rule lives: the
/// kind applies it to component bytes, and `ctx.match_plugs` lets rules
/// (`compose`) apply it to WIT at analysis.
pub fn match_plugs<'a>(
    imports: &BTreeSet<String>,
    plugs: &'a [(String, Vec<String>)],
) -> Vec<(&'a str, Vec<String>)> {
    plugs
        .iter()
        .map(|(name, exports)| {
            let served = exports.iter().filter(|e| imports.contains(*e)).cloned();
            (name.as_str(), served.collect())
        })
        .collect()
}

impl Kind for Compose {
    const TAG: u8 = 4;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  compose: socket {}, plugs {} ({COMPONENT_TOOLS})",
            self.socket,
            self.plugs.join(" ")
        );
    }

    fn encode(&self, w: &mut Writer) {
        w.str(&self.socket);
        put_strs(w, self.plugs.iter());
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        Some(Compose {
            socket: r.str()?.to_owned(),
            plugs: get_strs(r)?,
        })
    }

    fn execute(&self, _cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(root, &action.outputs))
    }
}

/// `ctx.actions.compose`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Plug the exports of `plugs` into the imports of `socket`.
    fn compose<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] socket: Value<'v>,
        #[starlark(require = named)] plugs: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let socket = socket
            .downcast_ref::<Artifact>()
            .ok_or_else(|| anyhow::anyhow!("`socket` must be a file, got `{}`", socket.get_type()))?
            .clone();
        let mut plug_files = Vec::new();
        collect_files(plugs, "plugs", &mut plug_files)?;
        let mut seen = BTreeSet::new();
        seen.insert(socket.path().to_owned());
        for p in &plug_files {
            if !seen.insert(p.path().to_owned()) {
                anyhow::bail!(
                    "`{}` is given twice to `compose` (as the socket or as a plug)",
                    p.path()
                );
            }
        }
        let plug_paths = plug_files.iter().map(|p| p.path().to_owned()).collect();
        let mut ins = vec![socket.clone()];
        ins.extend(plug_files);
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let kind = ActionKind::Compose(Compose {
            socket: socket.path().to_owned(),
            plugs: plug_paths,
        });
        declare_action(eval, "Compose", kind, ins, outs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plug_serves_the_imports_it_exports() {
        let imports: BTreeSet<String> = ["a:b/c@1.0.0", "a:b/d@1.0.0"]
            .into_iter()
            .map(String::from)
            .collect();
        let plugs = vec![
            (
                "p".to_owned(),
                vec!["a:b/c@1.0.0".to_owned(), "x:y/z".to_owned()],
            ),
            ("unused".to_owned(), vec!["a:b/c@2.0.0".to_owned()]),
        ];
        let m = match_plugs(&imports, &plugs);
        assert_eq!(m[0], ("p", vec!["a:b/c@1.0.0".to_owned()]));
        assert_eq!(
            m[1],
            ("unused", Vec::<String>::new()),
            "versions must match"
        );
    }
}
