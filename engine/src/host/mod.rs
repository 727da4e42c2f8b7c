//! The component host: a composed pylon under wasmtime (component model,
//! WASI preview 2), with the stdlib directory mounted at `/lib`, the
//! working directory at `/`, and `compose:dynlink/linker` served from the
//! pylon's dynlink plan (`dynlink.rs`). Compiled code is cached by the
//! component's digest (`compiled.rs`), so a second invocation does not
//! compile again. Used by `kiln run` (`ops/run.rs`) and by pylon test
//! actions (`action/kinds/pylon_test.rs`).

mod compiled;
mod dynlink;

use std::path::PathBuf;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// One invocation of a pylon's `wasi:cli/run`.
#[derive(Debug)]
pub struct Invocation {
    /// The component (`kiln-out/<pkg>/<name>.wasm`).
    pub component: PathBuf,
    /// Its dynlink plan, if it has one.
    pub dynlink_plan: Option<PathBuf>,
    /// The directory the dynlink plan's component paths are relative to (the
    /// workspace root).
    pub dynlink_root: PathBuf,
    /// The configuration's directory under `kiln-out/` where the plan's
    /// components are (`None` in a sandbox or the default configuration).
    pub dynlink_out_dir: Option<String>,
    /// Mounted read-only at `/lib` in the guest (the stdlib zip's dir).
    pub lib_dir: Option<PathBuf>,
    /// Mounted at `/` in the guest (read-write), so scripts and data files
    /// given by relative path are found.
    pub cwd: PathBuf,
    /// The guest's argv, program name first.
    pub args: Vec<String>,
    /// The guest's environment.
    pub env: Vec<(String, String)>,
    /// Where compiled code is cached (`<cache>/compiled`).
    pub compiled_dir: PathBuf,
    /// Capture stdout and stderr together, up to this many bytes (for
    /// tests), instead of passing them through.
    pub capture: Option<usize>,
    /// Stop the guest after this long (a test's timeout).
    pub timeout: Option<std::time::Duration>,
}

/// How an invocation ended.
#[derive(Debug)]
pub struct Outcome {
    /// The guest's exit status.
    pub status: i32,
    /// Its stdout and stderr, interleaved, when captured.
    pub output: Vec<u8>,
}

/// The store data of a pylon: WASI, and the dynlink host.
pub(crate) struct Host {
    wasi: WasiCtx,
    table: ResourceTable,
    dynlink: dynlink::Providers,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why an invocation could not run the guest to its end.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The engine, WASI or the linker could not be set up.
    #[error("Cannot set up the component host: {0}")]
    Setup(String),
    /// The component could not be read or compiled.
    #[error("{0}")]
    Load(String),
    /// The dynlink plan is unreadable or malformed.
    #[error("{0}")]
    Plan(String),
    /// A directory could not be mounted in the guest.
    #[error("Cannot mount `{path}` in the guest: {message}")]
    Mount {
        /// The host directory.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The component does not fit the WASI command world or its imports.
    #[error("Cannot instantiate `{path}`: {message}")]
    Instantiate {
        /// The component.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The guest trapped (a bug in it or in a provider, not an exit).
    #[error("The guest trapped: {0}")]
    Trap(String),
    /// The guest ran past its timeout and was stopped.
    #[error("Timed out after {0} s and was stopped")]
    Timeout(u64),
}

/// Native stack the guest's wasm code may use. wasmtime's default, 512 KiB,
/// is less than CPython's parser needs for the nesting it accepts (deeply
/// nested source trapped with "call stack exhausted" instead of raising
/// `SyntaxError`, CPython's `test_syntax`).
const MAX_WASM_STACK: usize = 8 << 20;

/// Stack of the thread a guest runs on: the wasm stack and room for the
/// host's own frames (wasmtime checks the wasm stack against its limit,
/// not against the thread's real size).
const GUEST_THREAD_STACK: usize = MAX_WASM_STACK + (8 << 20);

/// The engine kiln runs components with (Cranelift, component model).
pub(crate) fn engine() -> Result<Engine, String> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    // C++ code built with wasm exceptions (`try_table`/`throw`, as the
    // `cxx` toolchain emits them) needs the exceptions proposal; in
    // wasmtime 48 it rests on the GC heap (the `gc` and `gc-drc` features).
    // Components without exceptions are unaffected.
    config.wasm_exceptions(true);
    // (wasmtime refuses a wasm stack larger than its async stack size, even
    // with async off.)
    config.async_stack_size(GUEST_THREAD_STACK);
    config.max_wasm_stack(MAX_WASM_STACK);
    // Tests' timeouts stop a guest at its next epoch check.
    config.epoch_interruption(true);
    Engine::new(&config).map_err(|e| format!("cannot create the wasmtime engine: {e:#}"))
}

/// Load (from the compiled cache, else by compiling) a component.
pub(crate) fn load(
    engine: &Engine,
    path: &std::path::Path,
    cache: &std::path::Path,
) -> Result<Component, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    compiled::load(engine, &bytes, cache)
        .map_err(|e| format!("cannot load `{}`: {e}", path.display()))
}

/// Invoke the component; returns its exit status (and output, if
/// captured). The guest runs on a thread of its own, whose stack holds
/// `MAX_WASM_STACK` whatever thread calls this (the thread inherits the
/// caller's namespaces, so a sandboxed worker's isolation holds).
pub fn invoke(o: &Invocation) -> Result<Outcome, HostError> {
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("kiln-guest".to_owned())
            .stack_size(GUEST_THREAD_STACK)
            .spawn_scoped(scope, || invoke_here(o))
            .map_err(|e| HostError::Setup(format!("cannot start the guest's thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(HostError::Setup("the guest's thread panicked".to_owned())))
    })
}

fn invoke_here(o: &Invocation) -> Result<Outcome, HostError> {
    let engine = engine().map_err(HostError::Setup)?;
    let component = load(&engine, &o.component, &o.compiled_dir).map_err(HostError::Load)?;
    let providers = match &o.dynlink_plan {
        Some(p) => dynlink::Providers::from_plan(
            &engine,
            p,
            &o.dynlink_root,
            o.dynlink_out_dir.as_deref(),
            &o.compiled_dir,
        )
        .map_err(HostError::Plan)?,
        None => dynlink::Providers::default(),
    };
    let mut wasi = WasiCtxBuilder::new();
    wasi.args(&o.args);
    wasi.envs(&o.env);
    let pipe = wasmtime_wasi::p2::pipe::MemoryOutputPipe::new(o.capture.unwrap_or(0));
    if o.capture.is_some() {
        wasi.stdout(pipe.clone()).stderr(pipe.clone());
    } else {
        wasi.inherit_stdio();
    }
    let mount = |path: &PathBuf, e: wasmtime::Error| HostError::Mount {
        path: path.clone(),
        message: format!("{e:#}"),
    };
    wasi.preopened_dir(&o.cwd, "/", FsPerms::ReadWrite)
        .map_err(|e| mount(&o.cwd, e))?;
    if let Some(lib) = &o.lib_dir {
        wasi.preopened_dir(lib, "/lib", FsPerms::ReadOnly)
            .map_err(|e| mount(lib, e))?;
    }
    let host = Host {
        wasi: wasi.build(),
        table: ResourceTable::new(),
        dynlink: providers,
    };
    let mut store = Store::new(&engine, host);
    // One epoch tick, sent when the timeout expires, stops the guest;
    // without a timeout no tick is ever sent.
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let timer = o.timeout.map(|t| {
        let engine = engine.clone();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(t) {
                engine.increment_epoch();
            }
        })
    });
    let mut linker: Linker<Host> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| HostError::Setup(format!("cannot add WASI: {e:#}")))?;
    dynlink::add_to_linker(&mut linker).map_err(HostError::Setup)?;
    let command =
        wasmtime_wasi::p2::bindings::sync::Command::instantiate(&mut store, &component, &linker)
            .map_err(|e| HostError::Instantiate {
                path: o.component.clone(),
                message: format!("{e:#}"),
            })?;
    let ran = command.wasi_cli_run().call_run(&mut store);
    drop(done_tx);
    if let Some(t) = timer {
        let _ = t.join();
    }
    if let Err(e) = &ran
        && e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt)
        && let Some(t) = o.timeout
    {
        if o.capture.is_some() {
            let mut output = pipe.contents().to_vec();
            output.extend(format!("\ntimed out after {} s\n", t.as_secs()).as_bytes());
            return Ok(Outcome { status: 1, output });
        }
        return Err(HostError::Timeout(t.as_secs()));
    }
    let status = match ran {
        Ok(Ok(())) => 0,
        Ok(Err(())) => 1,
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None if o.capture.is_some() => {
                let mut output = pipe.contents().to_vec();
                output.extend(format!("\nthe guest trapped: {e:?}\n").as_bytes());
                return Ok(Outcome { status: 1, output });
            }
            None => return Err(HostError::Trap(format!("{e:?}"))),
        },
    };
    Ok(Outcome {
        status,
        output: pipe.contents().to_vec(),
    })
}
