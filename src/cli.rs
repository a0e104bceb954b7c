//! Headless subcommands: the same code as the panels, printed as text or JSON for scripts,
//! handouts and tests. The JSON shapes are a contract (see README); keep their keys.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::analysis::Control;
use crate::analysis::stats::{DataView, compute_stats};
use crate::arch::ModelFolder;

#[derive(Parser, Debug)]
#[command(
    name = "llm-anatomy",
    version,
    about = "Open a language model folder and see what is inside it.",
    long_about = "Open a language model folder and see what is inside it.\n\nWith no subcommand, opens the desktop window (on PATH if given).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// A Hugging Face model folder to open in the window.
    pub path: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the module tree exactly as `print(model)` does in transformers 4.57.
    Tree {
        path: PathBuf,
    },
    /// List every stored tensor: name, dtype, shape, bytes, file.
    Tensors {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Statistics and histogram of one tensor, read from the memory-mapped file.
    Stats {
        path: PathBuf,
        tensor: String,
        /// Histogram bins over [min, max] (numpy's rule).
        #[arg(long, default_value_t = 32)]
        bins: usize,
        #[arg(long)]
        json: bool,
    },
}

/// Runs a subcommand, writing its output to `out`. Errors are returned for the caller to
/// print on stderr with a non-zero exit.
pub fn run(command: Command, out: &mut dyn Write) -> Result<(), String> {
    let res: Result<(), Box<dyn std::error::Error>> = (|| {
        match command {
            Command::Tree { path } => {
                let model = ModelFolder::open(&path)?;
                for notice in &model.notices {
                    eprintln!("note: {notice}");
                }
                writeln!(out, "{}", model.repr())?;
            }
            Command::Tensors { path, json } => {
                let model = ModelFolder::open(&path)?;
                let ckpt = &model.checkpoint;
                if json {
                    let rows: Vec<_> = ckpt
                        .tensors
                        .iter()
                        .map(|t| {
                            json!({
                                "name": t.name,
                                "dtype": t.dtype.as_str(),
                                "shape": t.shape,
                                "bytes": t.byte_len(),
                                "file": ckpt.shard_name(t),
                            })
                        })
                        .collect();
                    writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
                } else {
                    let width = ckpt.tensors.iter().map(|t| t.name.len()).max().unwrap_or(4);
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
                }
            }
            Command::Stats { path, tensor, bins, json } => {
                if bins == 0 {
                    return Err("--bins must be at least 1".into());
                }
                let model = ModelFolder::open(&path)?;
                let ckpt = &model.checkpoint;
                let info = ckpt.require(&tensor).map_err(|e| {
                    format!("{e} in {} (see `llm-anatomy tensors {}`)", path.display(), path.display())
                })?;
                let view = DataView { dtype: info.dtype, bytes: ckpt.bytes(info) };
                let stats = compute_stats(&[view], bins, &Control::new())?;
                if json {
                    let value = json!({
                        "name": info.name,
                        "dtype": info.dtype.as_str(),
                        "shape": info.shape,
                        "count": stats.count,
                        "mean": stats.mean,
                        "std": stats.std,
                        "min": stats.min,
                        "max": stats.max,
                        "abs_max": stats.abs_max,
                        "zeros": stats.zeros,
                        "sparsity": stats.sparsity(),
                        "nan": stats.nan,
                        "inf": stats.inf,
                        "histogram": { "edges": stats.histogram.edges, "counts": stats.histogram.counts },
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    writeln!(out, "{}  {}  {:?}  ({})", info.name, info.dtype, info.shape, ckpt.shard_name(info))?;
                    writeln!(out, "count   {}", stats.count)?;
                    writeln!(out, "mean    {:.6e}", stats.mean)?;
                    writeln!(out, "std     {:.6e}", stats.std)?;
                    writeln!(out, "min     {:.6e}", stats.min)?;
                    writeln!(out, "max     {:.6e}", stats.max)?;
                    writeln!(out, "abs max {:.6e}", stats.abs_max)?;
                    writeln!(out, "zeros   {} ({:.3}% sparse)", stats.zeros, 100.0 * stats.sparsity())?;
                    writeln!(out, "nan     {}", stats.nan)?;
                    writeln!(out, "inf     {}", stats.inf)?;
                    let peak = stats.histogram.counts.iter().copied().max().unwrap_or(1).max(1);
                    for (i, c) in stats.histogram.counts.iter().enumerate() {
                        let bar = "█".repeat((40 * c / peak) as usize);
                        writeln!(out, "[{:>+.4e}, {:>+.4e}) {:>10} {bar}", stats.histogram.edges[i], stats.histogram.edges[i + 1], c)?;
                    }
                }
            }
        }
        Ok(())
    })();
    res.map_err(|e| e.to_string())
}
