//! `tensors`: every stored tensor, as a table or as JSON rows.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::arch::ModelFolder;
use crate::report;

pub fn run(path: &Path, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(path)?;
    let ckpt = &model.checkpoint;
    if json {
        return print_json(out, &report::tensors_json(ckpt));
    }
    let width = ckpt.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4).min(80);
    writeln!(out, "{:<width$}  {:<7} {:<16} {:>12}  file", "name", "dtype", "shape", "bytes")?;
    for t in &ckpt.tensors {
        writeln!(
            out,
            "{:<width$}  {:<7} {:<16} {:>12}  {}",
            t.name,
            t.dtype.as_str(),
            format!("{:?}", t.shape),
            t.byte_len(),
            ckpt.shard_name(t)
        )?;
    }
    writeln!(
        out,
        "{} tensors, {} parameters, {} bytes in {} file(s)",
        ckpt.tensors.len(),
        ckpt.total_params(),
        ckpt.total_bytes(),
        ckpt.shards.len()
    )?;
    Ok(())
}
