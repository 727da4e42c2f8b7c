//! SQLite (bundled, via rusqlite) as a WebAssembly component exporting
//! `pylon:sqlite/provider@0.1.0`.
//!
//! A `connection` resource owns the database; a `statement` resource keeps a
//! shared handle to that database plus its SQL. rusqlite's `Statement`
//! borrows the `Connection`, so a statement is validated with `prepare` when
//! it is created and run with `prepare_cached` (SQLite keeps it compiled in
//! the connection's statement cache). Closing the connection drops the
//! database; every later call on it or on its statements returns
//! `Err("connection is closed")`.

use std::cell::RefCell;
use std::rc::Rc;

use rusqlite::types::{Value as SqlValue, ValueRef};

wit_bindgen::generate!({ path: "sqlite.wit", world: "provider" });

use exports::pylon::sqlite::database::{
    Connection, Guest, GuestConnection, GuestStatement, Statement, Value,
};

const CLOSED: &str = "connection is closed";

/// The database shared by a connection and its statements; `None` once closed.
type Shared = Rc<RefCell<Option<rusqlite::Connection>>>;

/// Run `f` on the open database, or fail if it was closed.
fn with_db<T>(
    db: &Shared,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
) -> Result<T, String> {
    let guard = db.try_borrow().map_err(|_| "connection is busy".to_string())?;
    let conn = guard.as_ref().ok_or_else(|| CLOSED.to_string())?;
    f(conn).map_err(message)
}

/// SQLite's own message for an error (rusqlite's Display shows it).
fn message(err: rusqlite::Error) -> String {
    err.to_string()
}

fn to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Integer(i) => SqlValue::Integer(i),
        Value::Real(r) => SqlValue::Real(r),
        Value::Text(s) => SqlValue::Text(s),
        Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

struct Provider;

struct Conn {
    db: Shared,
}

struct Stmt {
    db: Shared,
    sql: String,
}

impl Guest for Provider {
    type Connection = Conn;
    type Statement = Stmt;
}

impl GuestConnection for Conn {
    fn open(path: String) -> Result<Connection, String> {
        let conn = rusqlite::Connection::open(&path).map_err(message)?;
        Ok(Connection::new(Conn {
            db: Rc::new(RefCell::new(Some(conn))),
        }))
    }

    fn prepare(&self, sql: String) -> Result<Statement, String> {
        // Compile now so errors surface here; the cache keeps it compiled.
        with_db(&self.db, |c| c.prepare_cached(&sql).map(|_| ()))?;
        Ok(Statement::new(Stmt {
            db: Rc::clone(&self.db),
            sql,
        }))
    }

    fn close(&self) {
        let taken = match self.db.try_borrow_mut() {
            Ok(mut slot) => slot.take(),
            Err(_) => None,
        };
        if let Some(conn) = taken {
            // Finalizes cached statements, then closes; on failure the
            // connection is dropped (sqlite3_close_v2) all the same.
            let _ = conn.close();
        }
    }
}

impl GuestStatement for Stmt {
    fn query(&self, params: Vec<Value>) -> Result<Vec<Vec<Value>>, String> {
        with_db(&self.db, |c| {
            let mut stmt = c.prepare_cached(&self.sql)?;
            let columns = stmt.column_count();
            let mut rows =
                stmt.query(rusqlite::params_from_iter(params.into_iter().map(to_sql)))?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    values.push(from_sql(row.get_ref(i)?));
                }
                out.push(values);
            }
            Ok(out)
        })
    }

    fn column_count(&self) -> Result<u32, String> {
        with_db(&self.db, |c| {
            let stmt = c.prepare_cached(&self.sql)?;
            Ok(u32::try_from(stmt.column_count()).unwrap_or(u32::MAX))
        })
    }
}

export!(Provider);
