"""pylon runs in Python's UTF-8 mode (PEP 540): non-ASCII text in source,
file names, file contents, the standard streams and through a cap."""
import io
import locale
import os
import shutil
import sys

import pylon_sqlite

# Latin, CJK and emoji (outside the BMP), in source as literals and names.
TEXTS = ["naïve café Ünïcödé", "漢字かなカナ한국어", "🐍🎉👩‍💻", "mixed: ü 世 😀"]
grüße = "grüße"
assert grüße == "gr\u00fc\u00dfe"

# The interpreter's configuration.
assert sys.flags.utf8_mode == 1, sys.flags
assert sys.getfilesystemencoding() == "utf-8", sys.getfilesystemencoding()
assert sys.getfilesystemencodeerrors() == "surrogateescape"
assert locale.getpreferredencoding(False).lower() in ("utf-8", "utf8")
for stream in (sys.stdout, sys.stderr):
    assert stream.encoding.lower() in ("utf-8", "utf8"), stream.encoding
assert sys.stdin is None or sys.stdin.encoding.lower() in ("utf-8", "utf8")
assert io.text_encoding(None) == "utf-8"

# Standard streams: printing non-ASCII text works (its output is the test's).
for t in TEXTS:
    print(t)
    print(t, file=sys.stderr)

# File names and contents in the working directory.
for i, t in enumerate(TEXTS):
    name = f"fichier-{i}-{t[:6]}.txt"
    with open(name, "w") as f:  # default encoding: UTF-8 in UTF-8 mode
        f.write(t + "\n")
    assert name in os.listdir("."), (name, os.listdir("."))
    with open(name, "rb") as f:
        assert f.read() == (t + "\n").encode("utf-8")
    with open(name) as f:
        assert f.read() == t + "\n"
    assert os.fsencode(name) == name.encode("utf-8")
    os.remove(name)
os.mkdir("répertoire-目录")
with open(os.path.join("répertoire-目录", "modülé_名前.py"), "w") as f:
    f.write("VALEUR = 'écrit 🐍'\n")
sys.path.insert(0, "répertoire-目录")
import modülé_名前  # a non-ASCII module name, found in a non-ASCII directory

assert modülé_名前.VALEUR == "écrit 🐍"
sys.path.pop(0)
shutil.rmtree("répertoire-目录")

# Text through the static SQLite cap, both ways.
db = pylon_sqlite.connect(":memory:")
db.execute("create table t (s text)")
for t in TEXTS:
    db.execute("insert into t values (?)", (t,))
assert [r[0] for r in db.execute("select s from t order by rowid").fetchall()] == TEXTS
assert db.execute("select length(?)", ("🐍é",)).fetchone() == (2,)
assert db.execute("select ? || 'ü'", ("世",)).fetchone() == ("世ü",)
db.close()
