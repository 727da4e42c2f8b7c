//! The host side of `compose:dynlink/linker@0.1.0` for a running pylon.
//!
//! The dynlink plan (`<pylon>.dynlink.json`, written by the `compose` rule) maps
//! provider ids to component files and digests. `resolve-by-id` and
//! `resolve-by-digest` instantiate the named provider the first time it is
//! asked for (each provider in its own store, with WASI but no files) and
//! hand the guest an `instance` resource; `invoke` calls the provider's
//! `compose:dynlink/endpoint.handle`. Errors are `result::err` strings the
//! guest turns into exceptions, never traps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Host;
use crate::action::kinds::dynlink_plan::DynlinkPlanFile;

/// Bindings of the world a dynlink cap imports (`compose:dynlink/linker`),
/// generated from the WIT: the host implements them for pylons.
mod cap {
    wasmtime::component::bindgen!({
        path: "../providers/wit/compose-dynlink.wit",
        world: "compose:dynlink/cap",
        with: { "compose:dynlink/linker.instance": super::InstanceHandle },
        imports: { default: trappable },
    });
}

/// Bindings of the world a dynlink provider exports
/// (`compose:dynlink/endpoint`): the host calls them.
mod provider {
    wasmtime::component::bindgen!({
        path: "../providers/wit/compose-dynlink.wit",
        world: "compose:dynlink/provider",
    });
}

use cap::compose::dynlink::linker;

/// A provider named by the dynlink plan.
struct Planned {
    path: PathBuf,
    digest: String,
}

/// The store data of a provider: WASI with nothing granted.
struct ProviderState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for ProviderState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// An instantiated provider.
struct Live {
    store: Store<ProviderState>,
    provider: provider::Provider,
}

/// What a guest `instance` handle refers to: a provider id.
pub struct InstanceHandle(String);

/// The providers of a dynlink plan, instantiated on first use.
#[derive(Default)]
pub struct Providers {
    engine: Option<Engine>,
    cache: PathBuf,
    planned: BTreeMap<String, Planned>,
    live: BTreeMap<String, Live>,
}

impl Providers {
    /// Read the dynlink plan at `plan`; component paths are relative to
    /// `root`.
    pub fn from_plan(
        engine: &Engine,
        plan: &Path,
        root: &Path,
        out_dir: Option<&str>,
        cache: &Path,
    ) -> Result<Providers, String> {
        let text = std::fs::read_to_string(plan)
            .map_err(|e| format!("cannot read the dynlink plan `{}`: {e}", plan.display()))?;
        let file: DynlinkPlanFile = serde_json::from_str(&text).map_err(|e| {
            format!(
                "the dynlink plan `{}` is malformed ({e}); build the pylon again",
                plan.display()
            )
        })?;
        if file.format != 1 {
            return Err(format!(
                "the dynlink plan `{}` has format {}, this kiln reads format 1; build the pylon again",
                plan.display(),
                file.format
            ));
        }
        let planned = file
            .providers
            .into_iter()
            .map(|(id, p)| {
                let planned = Planned {
                    path: root.join(&*crate::artifact::workspace_path(&p.component, out_dir)),
                    digest: p.digest,
                };
                (id, planned)
            })
            .collect();
        Ok(Providers {
            engine: Some(engine.clone()),
            cache: cache.to_owned(),
            planned,
            live: BTreeMap::new(),
        })
    }

    fn known(&self) -> String {
        if self.planned.is_empty() {
            "none".to_owned()
        } else {
            self.planned.keys().cloned().collect::<Vec<_>>().join(", ")
        }
    }

    /// Instantiate provider `id` unless it is already.
    fn ensure(&mut self, id: &str) -> Result<(), String> {
        if self.live.contains_key(id) {
            return Ok(());
        }
        let p = self.planned.get(id).ok_or_else(|| {
            format!(
                "no dynlink provider with id `{id}` in the dynlink plan (ids: {})",
                self.known()
            )
        })?;
        let engine = self.engine.as_ref().ok_or("no engine")?;
        let bytes = std::fs::read(&p.path).map_err(|e| {
            format!(
                "dynlink provider `{id}`: cannot read `{}`: {e}; build the pylon again",
                p.path.display()
            )
        })?;
        let digest = format!("blake3:{}", blake3::hash(&bytes).to_hex());
        if digest != p.digest {
            return Err(format!(
                "dynlink provider `{id}`: `{}` does not match the dynlink plan's digest; build the pylon again",
                p.path.display()
            ));
        }
        let component: Component = super::compiled::load(engine, &bytes, &self.cache)
            .map_err(|e| format!("dynlink provider `{id}`: {e}"))?;
        let mut linker: Linker<ProviderState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| format!("dynlink provider `{id}`: {e:#}"))?;
        let mut store = Store::new(
            engine,
            ProviderState {
                wasi: WasiCtxBuilder::new().inherit_stderr().build(),
                table: ResourceTable::new(),
            },
        );
        // The pylon's timeout tick stops its providers too.
        store.set_epoch_deadline(1);
        let provider = provider::Provider::instantiate(&mut store, &component, &linker)
            .map_err(|e| {
                format!("dynlink provider `{id}` cannot be instantiated (it must export `compose:dynlink/endpoint@0.1.0`): {e:#}")
            })?;
        self.live.insert(id.to_owned(), Live { store, provider });
        Ok(())
    }

    fn invoke(&mut self, id: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.ensure(id)?;
        let live = self.live.get_mut(id).ok_or("provider vanished")?;
        live.provider
            .compose_dynlink_endpoint()
            .call_handle(&mut live.store, method, payload)
            .map_err(|e| format!("dynlink provider `{id}` trapped: {e:#}"))?
    }

    /// The id of the planned provider whose component has `digest`.
    fn by_digest(&self, digest: &str) -> Result<String, String> {
        self.planned
            .iter()
            .find(|(_, p)| p.digest == digest)
            .map(|(id, _)| id.clone())
            .ok_or_else(|| {
                format!("no dynlink provider with digest `{digest}` in the dynlink plan")
            })
    }
}

impl Host {
    /// Resolve provider `id` to a new `instance` handle for the guest.
    fn resolve(
        &mut self,
        id: Result<String, String>,
    ) -> wasmtime::Result<Result<Resource<InstanceHandle>, String>> {
        let id = match id.and_then(|id| self.dynlink.ensure(&id).map(|()| id)) {
            Ok(id) => id,
            Err(e) => return Ok(Err(e)),
        };
        Ok(Ok(self.table.push(InstanceHandle(id))?))
    }
}

impl linker::Host for Host {
    fn resolve_by_id(
        &mut self,
        id: String,
    ) -> wasmtime::Result<Result<Resource<InstanceHandle>, String>> {
        self.resolve(Ok(id))
    }

    fn resolve_by_digest(
        &mut self,
        digest: String,
    ) -> wasmtime::Result<Result<Resource<InstanceHandle>, String>> {
        let id = self.dynlink.by_digest(&digest);
        self.resolve(id)
    }
}

impl linker::HostInstance for Host {
    fn invoke(
        &mut self,
        this: Resource<InstanceHandle>,
        method: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        let id = self.table.get(&this)?.0.clone();
        Ok(self.dynlink.invoke(&id, &method, &payload))
    }

    fn drop(&mut self, this: Resource<InstanceHandle>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

/// Serve `compose:dynlink/linker` to pylons linked with `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<(), String> {
    cap::Cap::add_to_linker::<Host, HasSelf<Host>>(linker, |h| h)
        .map_err(|e| format!("cannot define the dynlink linker: {e:#}"))
}
