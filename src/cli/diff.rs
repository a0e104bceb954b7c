//! `diff`: what changed between two checkpoints of the same architecture, tensor by tensor.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::Control;
use crate::analysis::compare;
use crate::arch::ModelFolder;

pub fn run(a: &Path, b: &Path, json: bool, out: &mut dyn Write) -> Outcome {
    let (ma, mb) = (ModelFolder::open(a)?, ModelFolder::open(b)?);
    let d = compare::diff(&ma.checkpoint, &mb.checkpoint, &Control::new())?;
    if json {
        return print_json(out, &crate::report::diff_json(&d));
    }
    let mut rows = d.tensors.clone();
    rows.sort_by(|x, y| y.rel.total_cmp(&x.rel));
    writeln!(
        out,
        "{:<56} {:>11} {:>11} {:>10} {:>11} {:>9}",
        "tensor", "||B-A||", "||A||", "relative", "max |d|", "changed"
    )?;
    for t in &rows {
        writeln!(
            out,
            "{:<56} {:>11.4e} {:>11.4e} {:>10.3e} {:>11.4e} {:>9}",
            t.tensor, t.fro_diff, t.fro_a, t.rel, t.max_abs_diff, t.changed
        )?;
    }
    for (name, sa, sb) in &d.shape_mismatch {
        writeln!(out, "shape differs: {name} {sa:?} vs {sb:?}")?;
    }
    for name in &d.only_in_a {
        writeln!(out, "only in A: {name}")?;
    }
    for name in &d.only_in_b {
        writeln!(out, "only in B: {name}")?;
    }
    Ok(())
}
