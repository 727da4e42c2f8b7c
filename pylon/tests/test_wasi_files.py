"""File system calls that the WASI libc gets wrong are corrected in pylon
(third_party/cpython/wasi_shims.c)."""
import errno
import os
import pathlib
import time

# A file name that is not UTF-8 cannot exist under WASI preview 2: every
# call fails with EILSEQ instead of trapping the interpreter.
for name in (b"bad\xff", "bad\udcff", b"surrogate\xed\xa0\x80", b"overlong\xc0\xaf"):
    for call in (os.stat, os.lstat, os.mkdir, os.rmdir, os.unlink, os.listdir, open):
        try:
            call(name)
        except OSError as e:
            assert e.errno == errno.EILSEQ, (call, name, e)
        else:
            raise AssertionError("%s(%r) succeeded" % (call.__name__, name))
    for call in (os.rename, os.replace, os.link, os.symlink):
        try:
            call("ok-name", name)
        except OSError as e:
            assert e.errno == errno.EILSEQ, (call, name, e)
        else:
            raise AssertionError("%s(ok-name, %r) succeeded" % (call.__name__, name))
    assert not os.path.exists(name)

# Valid non-ASCII names still work.
with open("naïve_文件_🐍.txt", "w") as f:
    f.write("x")
assert "naïve_文件_🐍.txt" in os.listdir(".")
os.unlink("naïve_文件_🐍.txt")

# os.utime(path) and Path.touch() set the current time (this libc set 0).
p = pathlib.Path("touched")
p.write_text("x")
os.utime(p, ns=(10**9, 10**9))
assert os.stat(p).st_mtime_ns == 10**9
before = time.time_ns()
p.touch()
assert os.stat(p).st_mtime_ns >= before - 10**9, os.stat(p)
os.utime(p, ns=(10**9, 10**9))
fd = os.open(p, os.O_RDONLY)
os.utime(fd)
os.close(fd)
assert os.stat(p).st_mtime_ns >= before - 10**9, os.stat(p)
p.unlink()
print("wasi files: ok")
