//! Pure computation over tensor data: no UI, no threads of its own beyond rayon's pool.
//! Each function is data in, numbers out, and is checked against reference values.

pub mod control;
pub mod stats;

pub use control::{Cancelled, Control};
