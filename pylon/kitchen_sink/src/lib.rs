//! The kitchen-sink provider: every function echoes its arguments back
//! unchanged (or checks them), and `counter` resources are counted while
//! they live, so tests can see the handles a generated cap drops.

use std::cell::Cell;

wit_bindgen::generate!({ path: "kitchen.wit", world: "provider" });

use exports::kiln::kitchen::types::{
    Color, Counter, CounterBorrow, Everything, Failure, Guest, GuestCounter, Many, Perms, Point,
    Shape,
};

thread_local! {
    static LIVE: Cell<u32> = const { Cell::new(0) };
}

/// A counter's state; creating one counts it, dropping it uncounts it.
struct MyCounter {
    value: Cell<i64>,
}

impl MyCounter {
    fn make(start: i64) -> MyCounter {
        LIVE.with(|l| l.set(l.get() + 1));
        MyCounter {
            value: Cell::new(start),
        }
    }
}

impl Drop for MyCounter {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get() - 1));
    }
}

impl GuestCounter for MyCounter {
    fn new(start: i64) -> Self {
        MyCounter::make(start)
    }

    fn get(&self) -> i64 {
        self.value.get()
    }

    fn add(&self, n: i64) -> i64 {
        self.value.set(self.value.get().wrapping_add(n));
        self.value.get()
    }

    fn sum_with(&self, other: CounterBorrow<'_>) -> i64 {
        self.value.get().wrapping_add(other.get::<MyCounter>().value.get())
    }

    fn merge(a: Counter, b: Counter) -> Counter {
        let a = a.into_inner::<MyCounter>();
        let b = b.into_inner::<MyCounter>();
        Counter::new(MyCounter::make(a.value.get().wrapping_add(b.value.get())))
    }

    fn try_new(start: i64) -> Result<Counter, Failure> {
        if start < 0 {
            return Err(Failure {
                code: 22,
                message: format!("a counter cannot start at {start} (négatif)"),
            });
        }
        Ok(Counter::new(MyCounter::make(start)))
    }

    fn close(&self) -> String {
        format!("counter at {}", self.value.get())
    }
}

struct Provider;

impl Guest for Provider {
    type Counter = MyCounter;

    fn live_counters() -> u32 {
        LIVE.with(Cell::get)
    }

    fn echo_bool(x: bool) -> bool {
        x
    }
    fn echo_u8(x: u8) -> u8 {
        x
    }
    fn echo_u16(x: u16) -> u16 {
        x
    }
    fn echo_u32(x: u32) -> u32 {
        x
    }
    fn echo_u64(x: u64) -> u64 {
        x
    }
    fn echo_s8(x: i8) -> i8 {
        x
    }
    fn echo_s16(x: i16) -> i16 {
        x
    }
    fn echo_s32(x: i32) -> i32 {
        x
    }
    fn echo_s64(x: i64) -> i64 {
        x
    }
    fn echo_f32(x: f32) -> f32 {
        x
    }
    fn echo_f64(x: f64) -> f64 {
        x
    }
    fn echo_char(x: char) -> char {
        x
    }
    fn echo_string(x: String) -> String {
        x
    }
    fn echo_bytes(x: Vec<u8>) -> Vec<u8> {
        x
    }
    fn echo_nested(x: Vec<Vec<String>>) -> Vec<Vec<String>> {
        x
    }
    fn echo_point(p: Point) -> Point {
        p
    }
    fn echo_everything(e: Everything) -> Everything {
        e
    }
    fn echo_tuple(t: (u8, String, f64, (bool, char))) -> (u8, String, f64, (bool, char)) {
        t
    }
    fn echo_shape(s: Shape) -> Shape {
        s
    }
    fn echo_shapes(s: Vec<Shape>) -> Vec<Shape> {
        s
    }
    fn echo_color(c: Color) -> Color {
        c
    }
    fn echo_perms(p: Perms) -> Perms {
        p
    }
    fn echo_many(m: Many) -> Many {
        m
    }
    fn echo_option(x: Option<String>) -> Option<String> {
        x
    }
    fn echo_option_option(x: Option<Option<u32>>) -> Option<Option<u32>> {
        x
    }
    fn echo_results(x: Vec<Result<String, u32>>) -> Vec<Result<String, u32>> {
        x
    }
    fn echo_empty_results(x: Vec<Result<(), ()>>) -> Vec<Result<(), ()>> {
        x
    }
    fn check(code: u32) -> Result<u32, Failure> {
        if code == 0 {
            Ok(0)
        } else {
            Err(Failure {
                code,
                message: format!("code {code} ✗"),
            })
        }
    }
    fn check_empty(fail: bool) -> Result<(), ()> {
        if fail {
            Err(())
        } else {
            Ok(())
        }
    }
    #[allow(clippy::too_many_arguments)]
    fn sum_many(
        a: u32,
        b: u32,
        c: u32,
        d: u32,
        e: u32,
        f: u32,
        g: u32,
        h: u32,
        i: u32,
        j: u32,
        k: u32,
        l: u32,
        m: u32,
        n: u32,
        o: u32,
        p: u32,
        q: String,
    ) -> u64 {
        [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]
            .iter()
            .map(|&x| u64::from(x))
            .sum::<u64>()
            + q.len() as u64
    }
    fn total_length(chunks: Vec<Vec<u8>>) -> u64 {
        chunks.iter().map(|c| c.len() as u64).sum()
    }
}

export!(Provider);
