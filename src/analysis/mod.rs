//! Pure computation over tensor data: no UI, no threads of its own beyond rayon's pool.
//! Each function is data in, numbers out, and is checked against reference values.

pub mod attention;
pub mod blocks;
pub mod cast;
pub mod compare;
pub mod control;
pub mod floatbits;
pub mod lora_figures;
pub mod lowrank;
pub mod overlay;
pub mod precision;
pub mod routing;
pub mod stats;

pub use control::{Cancelled, Control};
