//! The host side of `compose:dynlink/linker@0.1.0` for a running pylon.
//!
//! The plan (`<pylon>.dynlink.json`, written by the `compose` rule) maps
//! provider ids to component files and digests. `resolve-by-id` and
//! `resolve-by-digest` instantiate the named provider the first time it is
//! asked for (each provider in its own store, with WASI but no files) and
//! hand the guest an `instance` resource; `invoke` calls the provider's
//! `compose:dynlink/endpoint.handle`. Errors are `result::err` strings the
//! guest turns into exceptions, never traps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wasmtime::component::{
    Component, ComponentExportIndex, Instance, Linker, Resource, ResourceTable, ResourceType,
};
use wasmtime::{Engine, Store, StoreContextMut};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::Host;
use crate::action::kinds::dynlink_plan::DynlinkPlanFile;

const LINKER: &str = "compose:dynlink/linker@0.1.0";
const ENDPOINT: &str = "compose:dynlink/endpoint@0.1.0";

/// A provider named by the plan.
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
    instance: Instance,
    handle: ComponentExportIndex,
}

/// What a guest `instance` handle refers to: a provider id.
pub struct InstanceHandle(String);

/// The providers of a plan, instantiated on first use.
#[derive(Default)]
pub struct Providers {
    engine: Option<Engine>,
    cache: PathBuf,
    planned: BTreeMap<String, Planned>,
    live: BTreeMap<String, Live>,
}

impl Providers {
    /// Read the plan at `plan`; component paths are relative to `root`.
    pub fn from_plan(
        engine: &Engine,
        plan: &Path,
        root: &Path,
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
                    path: root.join(&p.component),
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
                "no dynlink provider with id `{id}` in the plan (ids: {})",
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
                "dynlink provider `{id}`: `{}` does not match the plan's digest; build the pylon again",
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
        let instance = linker
            .instantiate(&mut store, &component)
            .map_err(|e| format!("dynlink provider `{id}` cannot be instantiated: {e:#}"))?;
        let iface = instance
            .get_export_index(&mut store, None, ENDPOINT)
            .ok_or_else(|| format!("dynlink provider `{id}` does not export `{ENDPOINT}`"))?;
        let handle = instance
            .get_export_index(&mut store, Some(&iface), "handle")
            .ok_or_else(|| format!("dynlink provider `{id}` has no `{ENDPOINT}.handle`"))?;
        self.live.insert(
            id.to_owned(),
            Live {
                store,
                instance,
                handle,
            },
        );
        Ok(())
    }

    fn invoke(&mut self, id: &str, method: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.ensure(id)?;
        let live = self.live.get_mut(id).ok_or("provider vanished")?;
        let f = live
            .instance
            .get_typed_func::<(&str, &[u8]), (Result<Vec<u8>, String>,)>(
                &mut live.store,
                &live.handle,
            )
            .map_err(|e| format!("dynlink provider `{id}`: `handle` has the wrong type: {e:#}"))?;
        let (r,) = f
            .call(&mut live.store, (method, payload))
            .map_err(|e| format!("dynlink provider `{id}` trapped: {e:#}"))?;
        r
    }
}

fn new_handle(
    store: &mut StoreContextMut<'_, Host>,
    id: String,
) -> wasmtime::Result<Resource<InstanceHandle>> {
    Ok(store.data_mut().table.push(InstanceHandle(id))?)
}

/// Serve `compose:dynlink/linker` to pylons linked with `linker`.
pub fn add_to_linker(linker: &mut Linker<Host>) -> Result<(), String> {
    let err = |e: wasmtime::Error| format!("cannot define `{LINKER}`: {e:#}");
    let mut inst = linker.instance(LINKER).map_err(err)?;
    inst.resource(
        "instance",
        ResourceType::host::<InstanceHandle>(),
        |mut store, rep| {
            store
                .data_mut()
                .table
                .delete(Resource::<InstanceHandle>::new_own(rep))?;
            Ok(())
        },
    )
    .map_err(err)?;
    inst.func_wrap(
        "resolve-by-id",
        |mut store: StoreContextMut<'_, Host>, (id,): (String,)| {
            let r = store.data_mut().dynlink.ensure(&id);
            Ok((match r {
                Ok(()) => Ok(new_handle(&mut store, id)?),
                Err(e) => Err(e),
            },))
        },
    )
    .map_err(err)?;
    inst.func_wrap(
        "resolve-by-digest",
        |mut store: StoreContextMut<'_, Host>, (digest,): (String,)| {
            let id = store
                .data()
                .dynlink
                .planned
                .iter()
                .find(|(_, p)| p.digest == digest)
                .map(|(id, _)| id.clone());
            let r = match id {
                None => Err(format!(
                    "no dynlink provider with digest `{digest}` in the plan"
                )),
                Some(id) => store.data_mut().dynlink.ensure(&id).map(|()| id),
            };
            Ok((match r {
                Ok(id) => Ok(new_handle(&mut store, id)?),
                Err(e) => Err(e),
            },))
        },
    )
    .map_err(err)?;
    inst.func_wrap(
        "[method]instance.invoke",
        |mut store: StoreContextMut<'_, Host>,
         (this, method, payload): (Resource<InstanceHandle>, String, Vec<u8>)| {
            let id = store.data().table.get(&this)?.0.clone();
            Ok((store.data_mut().dynlink.invoke(&id, &method, &payload),))
        },
    )
    .map_err(err)?;
    Ok(())
}
