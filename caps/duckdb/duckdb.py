"""DuckDB for pylon, shaped like PyPI's `duckdb` package where they overlap.

    import duckdb
    con = duckdb.connect()                      # database=":memory:"
    con.execute("CREATE TABLE t (i INTEGER, s VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
    con.execute("SELECT * FROM t WHERE i > ?", [1]).fetchall()
    app = con.appender("t")                     # bulk loads
    app.append_row(3, "c")
    app.close()

Queries run in the DuckDB provider component, reached through connection,
prepared-statement, result and appender handles of the generated module
`_duckdb_capability`. Values come back as the PyPI package returns them:
int, float, str, bytes, bool, decimal.Decimal, datetime.date,
datetime.datetime, datetime.time, datetime.timedelta, uuid.UUID and None;
other types (LIST, STRUCT, MAP, ENUM, ...) as DuckDB renders them as text.
"""

import datetime as _dt
import decimal as _decimal
import uuid as _uuid

from _duckdb_capability import database as _db

__all__ = ["connect", "DuckDBPyConnection", "Appender", "Error"]

__version__ = "2.0.0"
apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"


class Warning(Exception):
    pass


class Error(Exception):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


class BinderException(ProgrammingError):
    pass


class CatalogException(ProgrammingError):
    pass


class InvalidInputException(ProgrammingError):
    pass


class InvalidTypeException(ProgrammingError):
    pass


class ParserException(ProgrammingError):
    pass


class SyntaxException(ProgrammingError):
    pass


class ConnectionException(OperationalError):
    pass


class IOException(OperationalError):
    pass


class HTTPException(IOException):
    pass


class OutOfMemoryException(OperationalError):
    pass


class ResourceInUseException(OperationalError):
    pass


class SerializationException(OperationalError):
    pass


class TransactionException(OperationalError):
    pass


class ConstraintException(IntegrityError):
    pass


class ConversionException(DataError):
    pass


class OutOfRangeException(DataError):
    pass


class TypeMismatchException(DataError):
    pass


class InternalException(InternalError):
    pass


class NotImplementedException(NotSupportedError):
    pass


class DependencyException(DatabaseError):
    pass


class FatalException(DatabaseError):
    pass


class InterruptException(DatabaseError):
    pass


class PermissionException(DatabaseError):
    pass


class SequenceException(DatabaseError):
    pass


# DuckDB's error types (the start of its messages, "<type> Error: ...") and
# the exception the PyPI package raises for each.
_KINDS = {
    "Binder": BinderException,
    "Catalog": CatalogException,
    "Connection": ConnectionException,
    "Constraint": ConstraintException,
    "Conversion": ConversionException,
    "Dependency": DependencyException,
    "Fatal": FatalException,
    "HTTP": HTTPException,
    "INTERNAL": InternalException,
    "IO": IOException,
    "Interrupt": InterruptException,
    "Invalid Input": InvalidInputException,
    "Invalid type": InvalidTypeException,
    "Mismatch Type": TypeMismatchException,
    "Not implemented": NotImplementedException,
    "Out of Memory": OutOfMemoryException,
    "Out of Range": OutOfRangeException,
    "Parser": ParserException,
    "Permission": PermissionException,
    "Sequence": SequenceException,
    "Serialization": SerializationException,
    "Syntax": SyntaxException,
    "TransactionContext": TransactionException,
}


def _error(e):
    err = e.value
    return _KINDS.get(err.kind, Error)(err.message)


# -- values --------------------------------------------------------------

_V = _db.Value
_EPOCH = _dt.datetime(1970, 1, 1)
_EPOCH_DATE = _dt.date(1970, 1, 1)
_INT64 = (-(1 << 63), (1 << 63) - 1)


def _decimal_value(d):
    sign, digits, exp = d.as_tuple()
    if not isinstance(exp, int):
        raise ConversionException(f"Conversion Error: cannot bind the decimal {d} (NaN or infinity)")
    unscaled = int("".join(map(str, digits)) or "0")
    if exp > 0:
        unscaled *= 10**exp
        exp = 0
    scale = -exp
    width = max(len(str(unscaled)), scale + 1)
    if width > 38:
        raise ConversionException(f"Conversion Error: the decimal {d} has more than 38 digits")
    return _V.Decimal(_db.Decimal(unscaled=str(-unscaled if sign else unscaled), width=width, scale=scale))


def _micros(td):
    return (td.days * 86400 + td.seconds) * 1000000 + td.microseconds


def _datetime_value(v):
    if v.tzinfo is not None:
        v = v.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    return _V.Timestamp(_micros(v - _EPOCH))


def _int_value(v):
    if _INT64[0] <= v <= _INT64[1]:
        return _V.Bigint(v)
    return _V.Huge(str(v))


_TO_VALUE = {
    type(None): lambda v: _V.Null(),
    bool: _V.Boolean,
    int: _int_value,
    float: _V.Double,
    str: _V.Text,
    bytes: _V.Blob,
    bytearray: lambda v: _V.Blob(bytes(v)),
    memoryview: lambda v: _V.Blob(v.tobytes()),
    _decimal.Decimal: _decimal_value,
    _dt.datetime: _datetime_value,
    _dt.date: lambda v: _V.Date((v - _EPOCH_DATE).days),
    _dt.time: lambda v: _V.Time(((v.hour * 60 + v.minute) * 60 + v.second) * 1000000 + v.microsecond),
    _dt.timedelta: lambda v: _V.Interval(_db.Interval(months=0, days=v.days, micros=v.seconds * 1000000 + v.microseconds)),
    _uuid.UUID: lambda v: _V.Other(str(v)),
}


def _value(v):
    f = _TO_VALUE.get(type(v))
    if f is None:
        for t, g in _TO_VALUE.items():
            if t is not type(None) and isinstance(v, t):
                f = g
                break
        else:
            raise InvalidInputException(f"Invalid Input Error: cannot bind a value of type {type(v).__name__}")
    return f(v)


def _values(params):
    if params is None:
        return []
    if isinstance(params, dict):
        raise InvalidInputException("Invalid Input Error: named parameters are not supported; use positional `?` parameters")
    return [_value(p) for p in params]


def _time(us):
    s, us = divmod(us, 1000000)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return _dt.time(h, m, s, us) if h < 24 else _dt.time(0, 0, 0)


def _from_decimal(d):
    u = d.unscaled
    sign = 1 if u.startswith("-") else 0
    return _decimal.Decimal((sign, tuple(int(c) for c in u.lstrip("-")), -d.scale))


_FROM_VALUE = {
    _V.Null: lambda v: None,
    _V.Boolean: lambda v: v.value,
    _V.Bigint: lambda v: v.value,
    _V.Huge: lambda v: int(v.value),
    _V.Double: lambda v: v.value,
    _V.Text: lambda v: v.value,
    _V.Blob: lambda v: v.value,
    _V.Decimal: lambda v: _from_decimal(v.value),
    _V.Date: lambda v: _EPOCH_DATE + _dt.timedelta(days=v.value),
    _V.Timestamp: lambda v: _EPOCH + _dt.timedelta(microseconds=v.value),
    _V.Time: lambda v: _time(v.value),
    _V.Interval: lambda v: _dt.timedelta(days=v.value.months * 30 + v.value.days, microseconds=v.value.micros),
    _V.Other: lambda v: v.value,
}


def _row_converter(columns):
    uuids = [i for i, c in enumerate(columns) if c.sql_type == "UUID"]
    conv = _FROM_VALUE

    def convert(row):
        out = [conv[type(v)](v) for v in row]
        for i in uuids:
            if out[i] is not None:
                out[i] = _uuid.UUID(out[i])
        return tuple(out)

    return convert


class _Result:
    """A finished query's rows, read from the provider in batches."""

    _BATCH = 2048

    def __init__(self, handle):
        self._handle = handle
        self.columns = handle.columns()
        self.rowcount = handle.rows_changed()
        self._convert = _row_converter(self.columns)
        self._buffer = []
        self._pos = 0
        self._done = False

    def _fill(self, want):
        while not self._done and len(self._buffer) - self._pos < want:
            try:
                rows = self._handle.fetch(max(self._BATCH, want))
            except _db.Error as e:
                raise _error(e) from None
            if not rows:
                self._done = True
                break
            if self._pos:
                self._buffer = self._buffer[self._pos:]
                self._pos = 0
            convert = self._convert
            self._buffer.extend(convert(r) for r in rows)

    def fetchone(self):
        self._fill(1)
        if self._pos >= len(self._buffer):
            return None
        row = self._buffer[self._pos]
        self._pos += 1
        return row

    def fetchmany(self, size):
        self._fill(size)
        rows = self._buffer[self._pos:self._pos + size]
        self._pos += len(rows)
        return rows

    def fetchall(self):
        while not self._done:
            self._fill(len(self._buffer) - self._pos + self._BATCH)
        rows = self._buffer[self._pos:]
        self._buffer, self._pos = [], 0
        return rows

    def close(self):
        self._handle.close()


class Appender:
    """Bulk loading into one table: rows are buffered and sent to the
    provider in batches."""

    _BATCH = 1024

    def __init__(self, handle):
        self._handle = handle
        self._rows = []
        self._closed = False

    def _check(self):
        if self._closed:
            raise InvalidInputException("Invalid Input Error: the appender is closed")

    def append_row(self, *values):
        self._check()
        self._rows.append([_value(v) for v in values])
        if len(self._rows) >= self._BATCH:
            self._send()

    def append_rows(self, rows):
        """Buffer many rows (each a sequence of values)."""
        self._check()
        for row in rows:
            self._rows.append([_value(v) for v in row])
            if len(self._rows) >= self._BATCH:
                self._send()

    def _send(self):
        rows, self._rows = self._rows, []
        if rows:
            try:
                self._handle.append_rows(rows)
            except _db.Error as e:
                raise _error(e) from None

    def flush(self):
        self._check()
        self._send()
        try:
            self._handle.flush()
        except _db.Error as e:
            raise _error(e) from None

    def close(self):
        if self._closed:
            return
        try:
            self._send()
            self._handle.close_()
        except _db.Error as e:
            raise _error(e) from None
        finally:
            self._closed = True
            self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class DuckDBPyConnection:
    """A connection; like the PyPI package's, it is also its own cursor
    (`execute` keeps the result for the fetch methods)."""

    def __init__(self, database, handle):
        self._database = database
        self._handle = handle
        self._result = None
        self._statements = {}
        self._cursors = []

    def _live(self):
        if self._handle is None:
            raise ConnectionException("Connection Error: Connection already closed!")
        return self._handle

    def _statement(self, sql):
        stmt = self._statements.get(sql)
        if stmt is None:
            try:
                stmt = self._live().prepare(sql)
            except _db.Error as e:
                raise _error(e) from None
            if len(self._statements) >= 64:
                self._statements.pop(next(iter(self._statements))).close()
            self._statements[sql] = stmt
        return stmt

    def execute(self, query, parameters=None):
        """Run `query` (several statements when there are no parameters)
        with positional `?` parameters; returns the connection."""
        con = self._live()
        values = _values(parameters)
        if self._result is not None:
            self._result.close()
            self._result = None
        try:
            if values:
                handle = self._statement(query).execute(values)
            else:
                handle = con.execute(query, [])
        except _db.Error as e:
            raise _error(e) from None
        self._result = _Result(handle)
        return self

    def executemany(self, query, parameters=()):
        """Run `query` once per parameter sequence; returns the connection."""
        self._live()
        stmt = None
        for params in parameters:
            values = _values(params)
            if stmt is None:
                stmt = self._statement(query)
            try:
                stmt.execute(values).close()
            except _db.Error as e:
                raise _error(e) from None
        if self._result is not None:
            self._result.close()
        self._result = None
        return self

    def _open_result(self):
        self._live()
        if self._result is None:
            raise InvalidInputException("Invalid Input Error: No open result set")
        return self._result

    def fetchone(self):
        return self._open_result().fetchone()

    def fetchmany(self, size=1):
        return self._open_result().fetchmany(size)

    def fetchall(self):
        return self._open_result().fetchall()

    @property
    def description(self):
        self._live()
        if self._result is None:
            return None
        return [(c.name, c.sql_type, None, None, None, None, None) for c in self._result.columns]

    @property
    def rowcount(self):
        self._live()
        return -1 if self._result is None else self._result.rowcount

    def cursor(self):
        """A new connection to the same database (closed with this one)."""
        self._live()
        cur = self._database._connect()
        self._cursors.append(cur)
        return cur

    def commit(self):
        """Commit the open transaction, if any (like the PyPI package, a
        no-op without one)."""
        con = self._live()
        try:
            con.execute("COMMIT", []).close()
        except _db.Error as e:
            if "no transaction is active" not in e.value.message:
                raise _error(e) from None
        return self

    def rollback(self):
        self.execute("ROLLBACK")
        return self

    def begin(self):
        self.execute("BEGIN TRANSACTION")
        return self

    def appender(self, table, schema=None):
        """An `Appender` for `table` (in `schema`, default `main`)."""
        try:
            return Appender(self._live().appender(schema, table))
        except _db.Error as e:
            raise _error(e) from None

    def close(self):
        if self._handle is None:
            return
        for cur in self._cursors:
            cur.close()
        self._cursors.clear()
        if self._result is not None:
            self._result.close()
            self._result = None
        for stmt in self._statements.values():
            stmt.close()
        self._statements.clear()
        self._handle.close()
        self._handle = None
        self._database._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Database:
    """A database handle shared by a connection and its cursors; closed
    with the last of them."""

    def __init__(self, handle):
        self._handle = handle
        self._users = 0

    def _connect(self):
        try:
            con = self._handle.connect()
        except _db.Error as e:
            raise _error(e) from None
        self._users += 1
        return DuckDBPyConnection(self, con)

    def _release(self):
        self._users -= 1
        if self._users == 0:
            self._handle.close()


def connect(database=":memory:", read_only=False, config=None):
    """Open `database` (a file path, or `:memory:` for a new in-memory
    database; each such connection has its own) and connect to it."""
    if config:
        raise InvalidInputException("Invalid Input Error: `config` is not supported by pylon's duckdb")
    path = str(database)
    if path == "":
        path = ":memory:"
    try:
        handle = _db.Database.open(path, bool(read_only))
    except _db.Error as e:
        raise _error(e) from None
    return _Database(handle)._connect()
