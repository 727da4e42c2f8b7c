//! Evaluating Starlark under a memory limit, with panics turned into
//! located errors.
//!
//! While a thread evaluates a BUILD file, a `.star` file or a rule's
//! implementation ([`guarded`]), every allocation it makes is charged to a
//! budget of [`MEMORY_LIMIT`] bytes. A statement hook records where
//! evaluation is and stops it with an error once Starlark's heap passes
//! the limit; a single allocation that would pass it (a string multiplied
//! to gigabytes) ends kiln at once with that location and exit 2, before
//! the kernel's OOM killer would. A panic inside starlark (an internal
//! overflow) becomes an error at the last statement reached.

// A global allocator is an `unsafe impl`; its methods only forward to the
// system allocator after the accounting below.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::io::Write;

use starlark::codemap::{FileSpan, FileSpanRef};
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator};

use crate::error::Location;

/// Bytes one evaluation may allocate (net of what it frees).
pub const MEMORY_LIMIT: u64 = 2 << 30;

thread_local! {
    static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
    static USED: Cell<i64> = const { Cell::new(0) };
    static WHERE: RefCell<Option<FileSpan>> = const { RefCell::new(None) };
    static FILE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The allocator: the system's, with Starlark evaluations charged.
pub struct Guard;

fn charge(n: usize) {
    let Ok(Some(limit)) = BUDGET.try_with(Cell::get) else {
        return;
    };
    let used = USED.with(|u| {
        let v = u.get().saturating_add(n as i64);
        u.set(v);
        v
    });
    if used > limit as i64 {
        over_limit(n);
    }
}

fn refund(n: usize) {
    if let Ok(Some(_)) = BUDGET.try_with(Cell::get) {
        USED.with(|u| u.set(u.get().saturating_sub(n as i64)));
    }
}

/// Report where evaluation was and exit 2 (a bad BUILD file), without
/// allocating.
fn over_limit(n: usize) -> ! {
    BUDGET.with(|b| b.set(None));
    let mut err = std::io::stderr().lock();
    let _ = write!(err, "ERROR: ");
    let _ = WHERE.try_with(|w| {
        if let Ok(w) = w.try_borrow()
            && let Some(span) = w.as_ref()
        {
            let r = span.resolve_span();
            let _ = write!(
                err,
                "{}:{}:{}: ",
                span.filename(),
                r.begin.line + 1,
                r.begin.column + 1
            );
        } else {
            // Before the first statement ran: a constant folded while
            // the file was compiled.
            let _ = FILE.try_with(|f| {
                if let Ok(f) = f.try_borrow() {
                    let _ = write!(err, "{}: while compiling: ", f);
                }
            });
        }
    });
    let _ = writeln!(
        err,
        "evaluation needs more than {} MiB of memory (this statement asked for {} MiB at once); make the value smaller",
        MEMORY_LIMIT >> 20,
        n >> 20
    );
    let _ = err.flush();
    std::process::exit(2)
}

// SAFETY: every method forwards to `System` with the same arguments; the
// accounting touches only thread-local cells.
unsafe impl GlobalAlloc for Guard {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        refund(layout.size());
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            charge(new_size - layout.size());
        } else {
            refund(layout.size() - new_size);
        }
        // SAFETY: the caller's contract, forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The statement hook: remembers the statement, stops at the limit.
struct Hook;

impl<'e> BeforeStmtFuncDyn<'e> for Hook {
    fn call<'v>(
        &mut self,
        span: FileSpanRef,
        _continued: bool,
        eval: &mut Evaluator<'v, '_, 'e>,
    ) -> starlark::Result<()> {
        let span = span.to_file_span();
        let _ = WHERE.try_with(|w| {
            if let Ok(mut w) = w.try_borrow_mut() {
                *w = Some(span);
            }
        });
        if eval.heap().allocated_bytes() as u64 > MEMORY_LIMIT {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "evaluation needs more than {} MiB of memory; make the values smaller",
                MEMORY_LIMIT >> 20
            )));
        }
        Ok(())
    }
}

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Whether a panic on this thread is being turned into an error (the
/// panic hook stays silent).
pub fn quiet_panics() -> bool {
    QUIET.try_with(Cell::get).unwrap_or(false)
}

/// Run `f` (which evaluates Starlark of `file` with `eval`) under the
/// memory budget, with the statement hook installed on `eval`; a panic
/// becomes `Err` with the last statement's location (or `file`).
pub fn guarded<'v, 'a, 'e, T>(
    file: &str,
    eval: &mut Evaluator<'v, 'a, 'e>,
    f: impl FnOnce(&mut Evaluator<'v, 'a, 'e>) -> T,
) -> Result<T, (Location, String)> {
    eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(Hook)));
    let outer = BUDGET.with(Cell::get);
    let outer_where = WHERE.with(|w| w.borrow_mut().take());
    let outer_file = FILE.with(|f| std::mem::replace(&mut *f.borrow_mut(), file.to_owned()));
    if outer.is_none() {
        USED.with(|u| u.set(0));
        BUDGET.with(|b| b.set(Some(MEMORY_LIMIT)));
    }
    let quiet = QUIET.with(|q| q.replace(true));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(eval)));
    QUIET.with(|q| q.set(quiet));
    if outer.is_none() {
        BUDGET.with(|b| b.set(None));
    }
    let inner_where = WHERE.with(|w| std::mem::replace(&mut *w.borrow_mut(), outer_where));
    FILE.with(|f| *f.borrow_mut() = outer_file);
    r.map_err(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".to_owned());
        let location = inner_where
            .as_ref()
            .map(Location::from_span)
            .unwrap_or(Location {
                file: file.to_owned(),
                line: 1,
                col: 1,
            });
        (
            location,
            // starlark's own size checks panic ("len overflow"); anything
            // else is kiln's bug, not the BUILD file's.
            if what.contains("overflow") || what.contains("capacity") || what.contains("alloc") {
                format!(
                    "evaluation failed inside Starlark ({what}); a value is probably too large: make it smaller"
                )
            } else {
                format!(
                    "evaluation failed inside kiln ({what}): this is a bug in kiln, not in the file; please report it with this file"
                )
            },
        )
    })
}
