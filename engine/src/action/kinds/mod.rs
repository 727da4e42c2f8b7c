//! One file per action kind: its data, its dump form, its key material and,
//! for in-process kinds, its execution.
pub mod componentize;
pub mod compose;
pub mod dynlink_plan;
pub mod inspect;
pub mod pylon_test;
pub mod run;
pub mod wasm;
pub mod wit_bindgen_c;
pub mod wit_check;
pub mod write;
