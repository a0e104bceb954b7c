//! `stats`: one tensor's statistics and histogram.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::Control;
use crate::analysis::stats::{DataView, TensorStats, compute_stats};
use crate::arch::ModelFolder;
use crate::report;

pub fn run(path: &Path, tensor: &str, bins: usize, json: bool, out: &mut dyn Write) -> Outcome {
    if bins == 0 || bins > crate::analysis::stats::MAX_BINS {
        return Err(format!("--bins {bins}: expected 1 to {}", crate::analysis::stats::MAX_BINS).into());
    }
    let model = ModelFolder::open(path)?;
    let ckpt = &model.checkpoint;
    let info = ckpt
        .require(tensor)
        .map_err(|e| format!("{e} in {} (see `llm-anatomy tensors {}`)", path.display(), path.display()))?;
    if let Some(e) = info.dtype.not_readable() {
        return Err(format!("{}: {e}", info.name).into());
    }
    let view = DataView { dtype: info.dtype, bytes: ckpt.bytes(info) };
    let stats = compute_stats(&[view], bins, &Control::new())?;
    if json {
        return print_json(out, &report::stats_json(&info.name, info.dtype.as_str(), &info.shape, &stats));
    }
    writeln!(out, "{}  {}  {:?}  ({})", info.name, info.dtype, info.shape, ckpt.shard_name(info))?;
    print_text(&stats, out)
}

fn print_text(stats: &TensorStats, out: &mut dyn Write) -> Outcome {
    writeln!(out, "count   {}", stats.count)?;
    writeln!(out, "mean    {:.6e}", stats.mean)?;
    writeln!(out, "std     {:.6e}", stats.std)?;
    writeln!(out, "min     {:.6e}", stats.min)?;
    writeln!(out, "max     {:.6e}", stats.max)?;
    writeln!(out, "abs max {:.6e}", stats.abs_max)?;
    writeln!(out, "zeros   {} ({:.3}% sparse)", stats.zeros, 100.0 * stats.sparsity())?;
    writeln!(out, "nan     {}", stats.nan)?;
    writeln!(out, "inf     {}", stats.inf)?;
    let h = &stats.histogram;
    let peak = h.counts.iter().copied().max().unwrap_or(1).max(1);
    for (i, c) in h.counts.iter().enumerate() {
        let bar = "█".repeat((40 * c / peak) as usize);
        writeln!(out, "[{:>+.4e}, {:>+.4e}) {:>10} {bar}", h.edges[i], h.edges[i + 1], c)?;
    }
    Ok(())
}
