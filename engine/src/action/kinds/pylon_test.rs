//! `ctx.actions.pylon_test`: run one Python test file inside a built pylon
//! (in-process wasmtime, the component host of `kiln run`) and keep its
//! output.
//!
//! The action succeeds when the script exits with status 0; its output
//! (stdout and stderr, interleaved) is the action's one output, so a passing
//! test is cached by its key like any action and re-runs only when the
//! pylon, its dynlink plan or providers, the stdlib or the script change. A failing
//! test fails the action with the output in the message.
//!
//! A test may also get arguments after the script and a tree of files: a
//! ustar archive among its inputs, unpacked into the sandbox (natively,
//! before the guest starts) so the guest sees it as a directory (CPython's
//! `Lib/test` for `cpython_test`).

use std::fmt::Write as _;
use std::path::Path;

use super::wasm::write_output;
use crate::action::tool_versions::WASMTIME;
use kiln_cache::codec::{Reader, Writer};
use starlark::environment::MethodsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::{Value, ValueLike};

use super::{ActionKind, ExecContext, Execution, Kind};
use crate::action::Action;
use crate::action::key::KeyEncoder;
use crate::analysis::ctx::{collect_files, declare_action};
use crate::artifact::Artifact;
use crate::host::{Invocation, invoke};

/// Run a test script in a pylon.
#[derive(Clone, Debug, PartialEq)]
pub struct PylonTest {
    /// Execution path of the pylon component.
    pub component: String,
    /// Execution path of its dynlink plan.
    pub dynlink_plan: String,
    /// Execution path of the directory mounted at `/lib` (the stdlib zip's),
    /// empty for none.
    pub lib: String,
    /// Execution path of the test script.
    pub script: String,
    /// Arguments after the script.
    pub args: Vec<String>,
    /// Execution path of a ustar archive to unpack before the run, empty for
    /// none.
    pub tree: String,
    /// Where in the sandbox (and so in the guest, under `/`) it is unpacked.
    pub tree_dir: String,
    /// Which run of the test this is (`kiln test --runs-per-test`): runs
    /// after the first have keys of their own.
    pub run: u32,
    /// Seconds the script may run before it is stopped and fails (0: no
    /// limit). Not in the key: it does not change what a passing run
    /// wrote.
    pub timeout: u64,
}

/// Most of a failing test's output shown in the error.
const SHOWN: usize = 8 << 10;

impl PylonTest {
    /// What enters the key besides inputs and outputs.
    pub fn key_material(&self) -> Vec<&str> {
        let mut v = vec![
            "pylon-test",
            WASMTIME,
            &self.component,
            &self.dynlink_plan,
            &self.lib,
            &self.script,
        ];
        if !self.args.is_empty() || !self.tree.is_empty() {
            v.extend(["tree", &self.tree, &self.tree_dir, "args"]);
            v.extend(self.args.iter().map(String::as_str));
        }
        v
    }

    /// The key material that is not a string slice: the run number, after
    /// the first run.
    fn run_key(&self) -> Option<String> {
        (self.run > 0).then(|| format!("run {}", self.run))
    }

    /// Run the script in the sandbox at `root`.
    fn run(&self, cx: &ExecContext, root: &Path, outputs: &[Artifact]) -> Result<(), String> {
        if !self.tree.is_empty() {
            unpack(&root.join(&self.tree), &root.join(&self.tree_dir))
                .map_err(|e| format!("cannot unpack `{}`: {e}", self.tree))?;
        }
        let mut args = vec!["pylon".to_owned(), format!("/{}", self.script)];
        args.extend(self.args.iter().cloned());
        let o = Invocation {
            component: root.join(&self.component),
            dynlink_plan: Some(root.join(&self.dynlink_plan)),
            dynlink_root: root.to_owned(),
            dynlink_out_dir: None,
            lib_dir: (!self.lib.is_empty()).then(|| root.join(&self.lib)),
            cwd: root.to_owned(),
            // The script is absolute in the guest, whose `/` is the
            // sandbox root.
            args,
            // Hermetic: no variable of the host reaches a test.
            env: Vec::new(),
            compiled_dir: cx.compiled_dir(),
            capture: Some(cx.capture_limit),
            timeout: (self.timeout > 0).then(|| std::time::Duration::from_secs(self.timeout)),
        };
        let r = invoke(&o).map_err(|e| e.to_string())?;
        write_output(root, outputs, &r.output)?;
        if r.status != 0 {
            let text = String::from_utf8_lossy(&r.output);
            let start = text.len().saturating_sub(SHOWN);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            return Err(format!(
                "{} exited with status {}; its output:\n{}",
                self.script,
                r.status,
                &text[start..]
            ));
        }
        Ok(())
    }
}

impl Kind for PylonTest {
    const TAG: u8 = 8;

    fn key(&self, e: &mut KeyEncoder) {
        self.key_material().iter().for_each(|x| e.str(x));
        if let Some(r) = self.run_key() {
            e.str(&r);
        }
    }

    fn dump(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "  pylon-test: {} in {} (dynlink plan {}, lib {}; {WASMTIME})",
            self.script, self.component, self.dynlink_plan, self.lib
        );
        if !self.args.is_empty() {
            let _ = writeln!(s, "  arguments: {}", self.args.join(" "));
        }
        if !self.tree.is_empty() {
            let _ = writeln!(s, "  unpacks {} into {}", self.tree, self.tree_dir);
        }
    }

    fn encode(&self, w: &mut Writer) {
        for x in [
            &self.component,
            &self.dynlink_plan,
            &self.lib,
            &self.script,
            &self.tree,
            &self.tree_dir,
        ] {
            w.str(x);
        }
        w.u32(self.args.len() as u32);
        self.args.iter().for_each(|a| w.str(a));
        w.u32(self.run);
        w.u64(self.timeout);
    }

    fn decode(r: &mut Reader) -> Option<Self> {
        let mut t = PylonTest {
            component: r.str()?.to_owned(),
            dynlink_plan: r.str()?.to_owned(),
            lib: r.str()?.to_owned(),
            script: r.str()?.to_owned(),
            tree: r.str()?.to_owned(),
            tree_dir: r.str()?.to_owned(),
            args: Vec::new(),
            run: 0,
            timeout: 0,
        };
        for _ in 0..r.u32()? {
            t.args.push(r.str()?.to_owned());
        }
        t.run = r.u32()?;
        t.timeout = r.u64()?;
        Some(t)
    }

    fn execute(&self, cx: &ExecContext, root: &Path, action: &Action) -> Execution<'_> {
        Execution::Done(self.run(cx, root, &action.outputs))
    }
}

/// Whether `p` is relative and names nothing outside the directory it is
/// joined to (only normal components and `.`).
fn stays_inside(p: &Path) -> bool {
    p.components()
        .all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

/// Unpack the ustar archive `tar` into `dir`: regular files and directories
/// only, every name relative and inside `dir`.
fn unpack(tar: &Path, dir: &Path) -> Result<(), String> {
    let bytes = std::fs::read(tar).map_err(|e| e.to_string())?;
    let field = |h: &[u8], at: usize, len: usize| -> Vec<u8> {
        let f = &h[at..at + len];
        f[..f.iter().position(|b| *b == 0).unwrap_or(len)].to_vec()
    };
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let h = &bytes[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            return Ok(());
        }
        let mut name = field(h, 345, 155);
        if !name.is_empty() {
            name.push(b'/');
        }
        name.extend(field(h, 0, 100));
        let name = String::from_utf8(name)
            .map_err(|_| format!("an entry at byte {at} has a name that is not UTF-8"))?;
        let size_field = String::from_utf8_lossy(&field(h, 124, 12)).trim().to_owned();
        let size = usize::from_str_radix(if size_field.is_empty() { "0" } else { &size_field }, 8)
            .map_err(|_| format!("`{name}`: bad size field `{size_field}`"))?;
        let data_at = at + 512;
        let end = data_at
            .checked_add(size)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| format!("`{name}`: truncated archive"))?;
        let rel = Path::new(&name);
        if !stays_inside(rel) {
            return Err(format!("entry `{name}` is not a relative path inside the archive"));
        }
        let to = dir.join(rel);
        match h[156] {
            b'0' | 0 => {
                if let Some(p) = to.parent() {
                    std::fs::create_dir_all(p).map_err(|e| format!("{}: {e}", p.display()))?;
                }
                std::fs::write(&to, &bytes[data_at..end])
                    .map_err(|e| format!("{}: {e}", to.display()))?;
            }
            b'5' => std::fs::create_dir_all(&to).map_err(|e| format!("{}: {e}", to.display()))?,
            t => {
                return Err(format!(
                    "entry `{name}` has type `{}`: only regular files and directories are supported",
                    t as char
                ));
            }
        }
        at = data_at + size.div_ceil(512) * 512;
    }
    Err("truncated archive (no end-of-archive blocks)".to_owned())
}

/// `ctx.actions.pylon_test`.
#[starlark_module]
pub fn natives(builder: &mut MethodsBuilder) {
    /// Run the Python test `script` in the pylon `component` (with its
    /// `dynlink_plan`, the `providers` it names, and `lib`, the stdlib
    /// zip whose directory is mounted at `/lib`); its output goes to
    /// `output`. The action fails when the script exits non-zero. `args`
    /// follow the script on its command line; `tree`, a ustar archive, is
    /// unpacked into the sandbox at `tree_dir` (a directory under the
    /// package's output directory) before the run. `run` numbers repeated
    /// runs (`ctx.runs_per_test`); `timeout` stops the script after that
    /// many seconds (0: never).
    fn pylon_test<'v>(
        #[starlark(this)] _this: Value<'v>,
        #[starlark(require = named)] component: Value<'v>,
        #[starlark(require = named)] dynlink_plan: Value<'v>,
        #[starlark(require = named)] script: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] lib: NoneOr<Value<'v>>,
        #[starlark(require = named)] providers: Option<Value<'v>>,
        #[starlark(require = named, default = UnpackListOrTuple::default())]
        args: UnpackListOrTuple<String>,
        #[starlark(require = named, default = NoneOr::None)] tree: NoneOr<Value<'v>>,
        #[starlark(require = named, default = "")] tree_dir: &str,
        #[starlark(require = named, default = 0)] run: i32,
        #[starlark(require = named, default = 0)] timeout: i32,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let one = |v: Value<'v>, what: &str| -> anyhow::Result<Artifact> {
            v.downcast_ref::<Artifact>()
                .cloned()
                .ok_or_else(|| anyhow::anyhow!("`{what}` must be a file, got `{}`", v.get_type()))
        };
        let component = one(component, "component")?;
        let dynlink_plan = one(dynlink_plan, "dynlink_plan")?;
        let script = one(script, "script")?;
        let mut ins = vec![component.clone(), dynlink_plan.clone(), script.clone()];
        let lib = match lib.into_option() {
            Some(v) => {
                let f = one(v, "lib")?;
                ins.push(f.clone());
                f.path()
                    .rsplit_once('/')
                    .map(|(d, _)| d.to_owned())
                    .unwrap_or_default()
            }
            None => String::new(),
        };
        if let Some(p) = providers {
            collect_files(p, "providers", &mut ins)?;
        }
        let tree = match tree.into_option() {
            Some(v) => {
                let f = one(v, "tree")?;
                ins.push(f.clone());
                f.path().to_owned()
            }
            None => String::new(),
        };
        let mut outs = Vec::new();
        collect_files(output, "output", &mut outs)?;
        let tree_dir = if tree.is_empty() {
            String::new()
        } else {
            let out_dir = outs
                .first()
                .and_then(|o| o.path().rsplit_once('/').map(|(d, _)| d.to_owned()))
                .unwrap_or_default();
            let rel = Path::new(tree_dir);
            if tree_dir.is_empty() || !stays_inside(rel) {
                anyhow::bail!("`tree_dir` must be a relative directory name without `..`, got `{tree_dir}`");
            }
            if out_dir.is_empty() {
                tree_dir.to_owned()
            } else {
                format!("{out_dir}/{tree_dir}")
            }
        };
        let kind = ActionKind::PylonTest(PylonTest {
            component: component.path().to_owned(),
            dynlink_plan: dynlink_plan.path().to_owned(),
            lib,
            script: script.path().to_owned(),
            args: args.items,
            tree,
            tree_dir,
            run: u32::try_from(run)
                .map_err(|_| anyhow::anyhow!("`run` must not be negative, got {run}"))?,
            timeout: u64::try_from(timeout)
                .map_err(|_| anyhow::anyhow!("`timeout` is in seconds, got {timeout}"))?,
        });
        declare_action(eval, "PylonTest", kind, ins, outs)
    }
}

#[cfg(test)]
mod tests {
    use super::unpack;

    /// One ustar entry: header (name, size, type) and data padded to 512.
    fn entry(name: &str, kind: u8, data: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}", data.len());
        h[124..135].copy_from_slice(size.as_bytes());
        h[156] = kind;
        h[257..262].copy_from_slice(b"ustar");
        h.extend_from_slice(data);
        h.resize(512 + data.len().div_ceil(512) * 512, 0);
        h
    }

    fn archive(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut a: Vec<u8> = entries.concat();
        a.extend_from_slice(&[0u8; 1024]);
        a
    }

    #[test]
    fn unpacks_files_and_directories_and_refuses_escapes() {
        let dir = std::env::temp_dir().join(format!("kiln-unpack-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tar = dir.join("t.tar");
        let body = vec![b'x'; 700];
        std::fs::write(
            &tar,
            archive(&[
                entry("test/", b'5', b""),
                entry("test/données_🐍.txt", b'0', "é".as_bytes()),
                entry("test/sub/big", b'0', &body),
            ]),
        )
        .unwrap();
        unpack(&tar, &dir.join("out")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("out/test/données_🐍.txt")).unwrap(),
            "é"
        );
        assert_eq!(std::fs::read(dir.join("out/test/sub/big")).unwrap(), body);

        for (name, kind, want) in [
            ("../escape", b'0', "not a relative path"),
            ("/abs", b'0', "not a relative path"),
            ("test/link", b'2', "only regular files and directories"),
        ] {
            std::fs::write(&tar, archive(&[entry(name, kind, b"x")])).unwrap();
            let e = unpack(&tar, &dir.join("bad")).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
        }
        assert!(!dir.join("escape").exists());
        // Truncated: data cut short, or no end-of-archive blocks.
        let mut cut = entry("f", b'0', &body);
        cut.truncate(600);
        std::fs::write(&tar, &cut).unwrap();
        assert!(unpack(&tar, &dir.join("cut")).unwrap_err().contains("truncated"));
        std::fs::write(&tar, entry("f", b'0', b"x")).unwrap();
        assert!(unpack(&tar, &dir.join("cut2")).unwrap_err().contains("truncated"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
