"""Run a composed pylon under wasmtime (PyPI's wasmtime, component model)
as a WASI command, providing `compose:dynlink/linker` from its dynlink plan
the way pylon's host does: `resolve-by-id` instantiates the provider the
plan names (once per id), `invoke` calls its `endpoint.handle`.

usage: run_pylon.py WORKSPACE PYLON_WASM PLAN_JSON [ARG...]
Prints the guest's stdout/stderr; exits with its status. Also prints
`host: instantiated ID` to stderr each time a provider is instantiated.
"""
import json
import os
import sys

import wasmtime
from wasmtime import component

LINKER = "compose:dynlink/linker@0.1.0"
ENDPOINT = "compose:dynlink/endpoint@0.1.0"


def main():
    root, pylon, plan_path = sys.argv[1:4]
    guest_args = sys.argv[4:]
    with open(plan_path) as f:
        plan = json.load(f)["providers"]
    by_digest = {p["digest"]: pid for pid, p in plan.items()}

    engine = wasmtime.Engine()
    providers = {}  # id -> (store, handle func)
    handles = {}  # rep -> provider id
    next_rep = [1]
    instance_type = component.ResourceType.host(0)

    def provider(pid):
        if pid not in providers:
            store = wasmtime.Store(engine)
            store.set_wasi(wasmtime.WasiConfig())
            linker = component.Linker(engine)
            linker.add_wasip2()
            comp = component.Component.from_file(engine, os.path.join(root, plan[pid]["component"]))
            inst = linker.instantiate(store, comp)
            iface = inst.get_export_index(store, ENDPOINT)
            handle = inst.get_func(store, inst.get_export_index(store, "handle", iface))
            providers[pid] = (store, handle)
            print(f"host: instantiated {pid}", file=sys.stderr)
        rep = next_rep[0]
        next_rep[0] += 1
        handles[rep] = pid
        return component.ResourceHost.own(rep, 0)

    def resolve_by_id(_store, pid):
        if pid not in plan:
            known = ", ".join(sorted(plan)) or "none"
            return f"no dynlink provider with id `{pid}` in the plan (ids: {known})"
        return provider(pid)

    def resolve_by_digest(_store, digest):
        if digest not in by_digest:
            return f"no dynlink provider with digest `{digest}` in the plan"
        return provider(by_digest[digest])

    def invoke(store, this, method, payload):
        pid = handles[this.to_host(store).rep]
        pstore, handle = providers[pid]
        out = handle(pstore, method, bytes(payload))
        if getattr(out, "tag", None) in ("ok", "err"):
            out = out.payload
        return out

    def drop(_store, rep):
        handles.pop(rep, None)

    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["pylon"] + guest_args
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    linker = component.Linker(engine)
    linker.add_wasip2()
    with linker.root() as root_inst:
        with root_inst.add_instance(LINKER) as li:
            li.add_resource("instance", instance_type, drop)
            li.add_func("resolve-by-id", resolve_by_id)
            li.add_func("resolve-by-digest", resolve_by_digest)
            li.add_func("[method]instance.invoke", invoke)
    comp = component.Component.from_file(engine, pylon)
    inst = linker.instantiate(store, comp)
    run_iface = inst.get_export_index(store, "wasi:cli/run@0.2.12")
    run = inst.get_func(store, inst.get_export_index(store, "run", run_iface))
    try:
        result = run(store)
    except wasmtime.ExitTrap as e:
        sys.stdout.flush()
        sys.exit(e.code)
    sys.stdout.flush()
    ok = result is None or getattr(result, "tag", "ok") == "ok"
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
