"""Call a dynlink provider's `compose:dynlink/endpoint.handle` with wasmtime.

usage: call_endpoint.py COMPONENT METHOD PAYLOAD_HEX
Prints the answer as hex, or `error: MESSAGE`.
"""
import sys

import wasmtime
from wasmtime import component


def main():
    path, method, payload = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    comp = component.Component.from_file(engine, path)
    linker = component.Linker(engine)
    linker.add_wasip2()
    inst = linker.instantiate(store, comp)
    iface = inst.get_export_index(store, "compose:dynlink/endpoint@0.1.0")
    handle = inst.get_func(store, inst.get_export_index(store, "handle", iface))
    try:
        print(bytes(handle(store, method, payload)).hex())
    except Exception as e:  # a `result` error arrives as an exception
        print(f"error: {e}")


if __name__ == "__main__":
    main()
