//! `cast`: what casting a whole tensor to a smaller format does to it.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::Control;
use crate::analysis::cast::{CastTarget, cast_report};
use crate::analysis::stats::DataView;
use crate::arch::ModelFolder;
use crate::report;

pub fn run(path: &Path, tensor: &str, to: &str, json: bool, out: &mut dyn Write) -> Outcome {
    // F32 is every tensor's widened form: casting to it says nothing, so it is refused like a typo.
    let format = CastTarget::parse(to).ok_or_else(|| {
        let all: Vec<String> = CastTarget::all().into_iter().map(CastTarget::key).collect();
        format!("--to {to}: expected one of {}", all.join(", "))
    })?;
    let model = ModelFolder::open(path)?;
    let ckpt = &model.checkpoint;
    let info = ckpt.require(tensor)?;
    let r = cast_report(&[DataView { dtype: info.dtype, bytes: ckpt.bytes(info) }], format, &Control::new())?;
    if json {
        return print_json(out, &report::cast_json(&info.name, info.dtype.as_str(), &r));
    }
    writeln!(out, "{} ({}, {} values) → {}", info.name, info.dtype, r.count, format.name())?;
    writeln!(out, "exact      {}", r.exact)?;
    writeln!(out, "bits/weight {}", format.bits_per_weight())?;
    let overflow_to = if format.has_inf() { " (→ ±∞)" } else { " (clamped to ±448)" };
    writeln!(out, "overflow   {}{overflow_to}", r.overflow)?;
    writeln!(out, "underflow  {} (→ 0)", r.underflow)?;
    writeln!(out, "subnormal  {}", r.subnormal)?;
    writeln!(out, "abs error  max {:e}, mean {:e}", r.max_abs_error, r.mean_abs_error)?;
    writeln!(out, "rel error  max {:e}, mean {:e}", r.max_rel_error, r.mean_rel_error)?;
    Ok(())
}
