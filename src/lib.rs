//! llm-anatomy: open a language model folder and see what is inside it.
//!
//! Layers, from disk to screen (see DESIGN.md): [`checkpoint`] knows files, [`arch`] knows
//! architectures, [`analysis`] is pure computation, [`jobs`] runs it off the UI thread,
//! [`cli`] prints it headless, [`report`] shapes what both the CLI and the
//! Export menu write out, and [`ui`] draws it.

pub mod analysis;
pub mod arch;
pub mod checkpoint;
pub mod cli;
pub mod demo;
pub mod engine;
pub mod fuzz;
pub mod jobs;
pub mod library;
pub mod lora;
pub mod report;
pub mod sampling;
pub mod ui;
pub mod workspace;
