"""DB-API-shaped SQLite for pylon, over connection and prepared-statement
handles of the SQLite provider component."""

import _sqlite_cap

Error = _sqlite_cap.Error


class Cursor:
    """The rows of one executed statement."""

    def __init__(self, rows):
        self._rows = list(rows)
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

    def execute(self, sql, params=()):
        """Prepare `sql`, bind `params` to its `?` placeholders, run it."""
        return Cursor(_sqlite_cap.execute(self._handle, sql, tuple(params)))

    def close(self):
        _sqlite_cap.close(self._handle)


def connect(path):
    """Open `path` (":memory:" for a private in-memory database)."""
    return Connection(_sqlite_cap.open(path))
