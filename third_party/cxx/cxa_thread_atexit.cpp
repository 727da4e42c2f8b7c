// `thread_local` objects with destructors register them here. libc++abi
// defines `__cxa_thread_atexit` only for Linux and Fuchsia; a wasm32-wasip1
// module has exactly one thread, whose end is the program's, so its
// destructors run where the program's static destructors do.

extern "C" int __cxa_atexit(void (*dtor)(void *), void *obj, void *dso);

extern "C" int __cxa_thread_atexit(void (*dtor)(void *), void *obj, void *dso) noexcept {
    return __cxa_atexit(dtor, obj, dso);
}
