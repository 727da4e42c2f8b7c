"""Call one exported function of a component under wasmtime (PyPI's
wasmtime, component model, WASI preview 2 available to the component).

usage: call_export.py [--repeat N] COMPONENT INTERFACE FUNCTION [ARG...]
An ARG is a string, or `hex:...` for a list<u8>. Prints one line per call:
`ok: VALUE` or `error: MESSAGE` for a `result`, bytes as hex.
"""
import sys

import wasmtime
from wasmtime import component


def main():
    args = sys.argv[1:]
    repeat = 1
    if args[:1] == ["--repeat"]:
        repeat, args = int(args[1]), args[2:]
    path, iface, func, rest = args[0], args[1], args[2], args[3:]
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    store.set_wasi(wasmtime.WasiConfig())
    comp = component.Component.from_file(engine, path)
    linker = component.Linker(engine)
    linker.add_wasip2()
    inst = linker.instantiate(store, comp)
    f = inst.get_func(store, inst.get_export_index(store, func, inst.get_export_index(store, iface)))
    params = [bytes.fromhex(a[4:]) if a.startswith("hex:") else a for a in rest]
    # wasmtime-py returns a `result` as a Variant when its two cases have one
    # Python type, else as the bare value (bytes for list<u8>, str for string).
    result_type = f.type(store).result
    for _ in range(repeat):
        value = f(store, *params)
        tag = "ok"
        if getattr(value, "tag", None) in ("ok", "err"):
            tag, value = ("ok" if value.tag == "ok" else "error"), value.payload
        elif isinstance(result_type, component.ResultType) and isinstance(value, str):
            tag = "error"
        if isinstance(value, (bytes, bytearray, list)):
            value = bytes(value).hex()
        print(f"{tag}: {value}")


if __name__ == "__main__":
    main()
