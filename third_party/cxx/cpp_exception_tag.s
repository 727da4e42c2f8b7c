# The tag C++ exceptions are thrown with in wasm. LLVM 22 no longer emits
# it, and libc++abi (`__cxa_throw`) and the code that catches refer to it.
.globl __cpp_exception
.tagtype __cpp_exception i32
__cpp_exception:
