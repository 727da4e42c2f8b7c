"""DB-API-shaped SQLite for pylon, over connection and prepared-statement
handles of the SQLite provider component (through the generated module
`_sqlite_cap`)."""

from _sqlite_cap import database as _db

Error = _db.Error
_Value = _db.Value

# Python value -> WIT `value`, by exact type (bool is an int to SQLite).
_TO_VALUE = {
    type(None): lambda v: _Value.Null(),
    bool: lambda v: _Value.Integer(int(v)),
    int: _Value.Integer,
    float: _Value.Real,
    str: _Value.Text,
    bytes: _Value.Blob,
    bytearray: lambda v: _Value.Blob(bytes(v)),
    memoryview: lambda v: _Value.Blob(v.tobytes()),
}


def _value(v):
    try:
        return _TO_VALUE[type(v)](v)
    except KeyError:
        raise TypeError(f"cannot bind a {type(v).__name__} to SQLite (None, int, float, str or bytes)") from None


class Cursor:
    """The rows of one executed statement."""

    def __init__(self, rows):
        self._rows = rows
        self._next = 0

    def fetchone(self):
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchall(self):
        rows = self._rows[self._next:]
        self._next = len(self._rows)
        return rows


class Connection:
    """An open database."""

    def __init__(self, handle):
        self._handle = handle
        self._statements = {}

    def execute(self, sql, params=()):
        """Prepare `sql` (once per connection), bind `params` to its `?`
        placeholders, run it."""
        stmt = self._statements.get(sql)
        if stmt is None:
            stmt = self._handle.prepare(sql)
            if len(self._statements) >= 128:
                self._statements.pop(next(iter(self._statements))).close()
            self._statements[sql] = stmt
        rows = stmt.query([_value(p) for p in params])
        return Cursor([tuple(v.value for v in row) for row in rows])

    def close(self):
        """Close the database; later calls raise Error."""
        for stmt in self._statements.values():
            stmt.close()
        self._statements.clear()
        self._handle.close_()


def connect(path):
    """Open `path` (":memory:" for a private in-memory database)."""
    return Connection(_db.Connection.open(path))
