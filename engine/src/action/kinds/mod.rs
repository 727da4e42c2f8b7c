//! One file per action kind: its data, its dump form and its checks.
pub mod run;
pub mod write;
