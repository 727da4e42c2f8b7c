"""Differential checks of pylon's `bz2`, `lzma` and `sqlite3` against the
host's CPython (tests/stdlib_caps.rs runs them).

    python differential.py write SIDE   # write SIDE.* files in the working directory
    python differential.py check SIDE   # read the files OTHER side wrote

`write` compresses the same deterministic data in several formats, levels,
checks and filter chains, and writes tar archives; `check` decompresses the
other side's files and compares them with the data, and compares the
compressed bytes with what this side's library makes of the same input
(the host's libbz2 1.0.8 and liblzma 5.4.1 are the versions pylon's provider
is built from, so the bytes must be identical). Every case prints one line;
a mismatch exits 1. `sqlite3`: `write` makes a database file (types,
non-ASCII text, blobs, NULLs, extreme integers, an index, a view, a
trigger, a transaction rolled back); `check` opens the other side's,
runs SQLite's integrity check, reads every row back and compares
`iterdump()` with its own database's.
"""

import bz2
import hashlib
import io
import lzma
import os
import random
import sqlite3
import sys
import tarfile

TEXT = "".join(
    "%d: Grüße, 東京, São Paulo, Reykjavík ✓ %s\n" % (i, "x" * (i % 37)) for i in range(20000)
)


def data():
    r = random.Random(20261205)
    noise = r.randbytes(200_000)
    return TEXT.encode("utf-8") + noise + TEXT.encode("utf-8")[:300_000]


X86_CHAIN = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "preset": 6}]
DELTA_CHAIN = [{"id": lzma.FILTER_DELTA, "dist": 4}, {"id": lzma.FILTER_LZMA2, "preset": 1}]
LZMA1_CHAIN = [{"id": lzma.FILTER_LZMA1, "preset": 3, "dict_size": 1 << 20, "lc": 2, "lp": 1, "pb": 1}]


def cases(d):
    """name -> (compress, decompress), each over bytes."""
    return {
        "bz2-9": (lambda b: bz2.compress(b, 9), bz2.decompress),
        "bz2-1": (lambda b: bz2.compress(b, 1), bz2.decompress),
        "bz2-multi": (lambda b: bz2.compress(b[:1000], 5) + bz2.compress(b[1000:], 5), bz2.decompress),
        "xz-crc64": (lambda b: lzma.compress(b), lzma.decompress),
        "xz-crc32": (lambda b: lzma.compress(b, check=lzma.CHECK_CRC32), lzma.decompress),
        "xz-sha256": (lambda b: lzma.compress(b, check=lzma.CHECK_SHA256), lzma.decompress),
        "xz-none": (lambda b: lzma.compress(b, check=lzma.CHECK_NONE), lzma.decompress),
        "xz-extreme": (lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        "xz-x86": (lambda b: lzma.compress(b, filters=X86_CHAIN), lzma.decompress),
        "xz-multi": (lambda b: lzma.compress(b[:5000], preset=0) + lzma.compress(b[5000:]), lzma.decompress),
        "lzma-alone": (
            lambda b: lzma.compress(b, format=lzma.FORMAT_ALONE),
            lambda c: lzma.decompress(c, format=lzma.FORMAT_ALONE),
        ),
        "raw-delta": (
            lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=DELTA_CHAIN),
            lambda c: lzma.decompress(c, format=lzma.FORMAT_RAW, filters=DELTA_CHAIN),
        ),
        "raw-lzma1": (
            lambda b: lzma.compress(b, format=lzma.FORMAT_RAW, filters=LZMA1_CHAIN),
            lambda c: lzma.decompress(c, format=lzma.FORMAT_RAW, filters=LZMA1_CHAIN),
        ),
    }


MEMBERS = {"données/été.txt": TEXT.encode("utf-8"), "bin/noise.dat": data()[-50_000:], "empty": b""}


def write_tar(path, mode):
    with tarfile.open(path, mode) as t:
        for name, body in sorted(MEMBERS.items()):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            info.mtime = 1_700_000_000
            t.addfile(info, io.BytesIO(body))


def rows():
    r = random.Random(42)
    out = []
    for i in range(1000):
        out.append((
            i,
            [0, 1, -1, 2**63 - 1, -(2**63), r.randint(-(2**40), 2**40)][i % 6],
            r.random() * 1e6 - 5e5,
            None if i % 7 == 0 else "ligne %d — Grüße 東京 ✓ %s" % (i, "é" * (i % 5)),
            bytes(r.getrandbits(8) for _ in range(i % 50)),
        ))
    return out


def write_db(path):
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, x REAL, s TEXT, b BLOB);
        CREATE INDEX t_s ON t (s);
        CREATE VIEW v AS SELECT id, length(s) AS len FROM t WHERE s IS NOT NULL;
        CREATE TABLE log (id INTEGER, what TEXT);
        CREATE TRIGGER t_ins AFTER INSERT ON t WHEN new.id % 100 = 0
          BEGIN INSERT INTO log VALUES (new.id, 'inserted'); END;
    """)
    with con:
        con.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?)", rows())
    try:
        with con:
            con.execute("INSERT INTO t VALUES (5000, 0, 0, 'rolled back', NULL)")
            raise KeyError("roll back")
    except KeyError:
        pass
    con.close()


def check_db(path, report):
    con = sqlite3.connect(path)
    report("sqlite integrity", con.execute("PRAGMA integrity_check").fetchone() == ("ok",))
    got = con.execute("SELECT id, n, x, s, b FROM t ORDER BY id").fetchall()
    report("sqlite rows", got == rows(), "(%d rows)" % len(got))
    report("sqlite view", con.execute("SELECT count(*), sum(len) FROM v").fetchone()
           == (len([r for r in rows() if r[3] is not None]), sum(len(r[3]) for r in rows() if r[3] is not None)))
    report("sqlite trigger", con.execute("SELECT count(*) FROM log").fetchone() == (10,))
    report("sqlite rollback", con.execute("SELECT count(*) FROM t WHERE id = 5000").fetchone() == (0,))
    theirs = list(con.iterdump())
    con.close()
    write_db("own.db")
    mine_con = sqlite3.connect("own.db")
    mine = list(mine_con.iterdump())
    mine_con.close()
    os.remove("own.db")
    report("sqlite iterdump", theirs == mine, "(%d statements)" % len(theirs))


def write(side):
    write_db(side + ".db")
    d = data()
    for name, (comp, _) in cases(d).items():
        with open("%s.%s" % (side, name), "wb") as f:
            f.write(comp(d))
    with bz2.open(side + ".text.bz2", "wt", encoding="utf-8") as f:
        f.write(TEXT)
    with lzma.open(side + ".text.xz", "wt", encoding="utf-8") as f:
        f.write(TEXT)
    write_tar(side + ".tar.bz2", "w:bz2")
    write_tar(side + ".tar.xz", "w:xz")
    print("wrote", side)


def check(side):
    other = "pylon" if side == "host" else "host"
    d = data()
    bad = 0

    def report(name, ok, detail=""):
        nonlocal bad
        print("%s %s %s" % ("ok" if ok else "MISMATCH", name, detail))
        bad += not ok

    for name, (comp, decomp) in cases(d).items():
        with open("%s.%s" % (other, name), "rb") as f:
            theirs = f.read()
        report(name + " decompresses", decomp(theirs) == d, "(%d bytes)" % len(theirs))
        mine = comp(d)
        report(name + " same bytes", mine == theirs, hashlib.sha256(theirs).hexdigest()[:16])
    with open(other + ".xz-sha256", "rb") as f:
        dec = lzma.LZMADecompressor()
        dec.decompress(f.read())
    report("xz-sha256 check id", dec.check == lzma.CHECK_SHA256 and dec.eof)
    with bz2.open(other + ".text.bz2", "rt", encoding="utf-8") as f:
        report("bz2.open text", f.read() == TEXT)
    with lzma.open(other + ".text.xz", "rt", encoding="utf-8") as f:
        report("lzma.open text", f.read() == TEXT)
    for ext, mode in (("tar.bz2", "r:bz2"), ("tar.xz", "r:xz"), ("tar.xz", "r:*")):
        with tarfile.open("%s.%s" % (other, ext), mode) as t:
            got = {m.name: t.extractfile(m).read() for m in t.getmembers()}
        report("tarfile %s %s" % (ext, mode), got == MEMBERS)
    check_db(other + ".db", report)
    if bad:
        print("%d mismatches" % bad)
        sys.exit(1)
    print("all ok")


if __name__ == "__main__":
    what, side = sys.argv[1], sys.argv[2]
    write(side) if what == "write" else check(side)
