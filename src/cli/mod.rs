//! Headless subcommands: the same code as the panels, printed as text or JSON for scripts,
//! handouts and tests. The JSON shapes are a contract (see README); keep their keys.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use serde_json::json;

use crate::analysis::Control;
use crate::analysis::cast::cast_report;
use crate::analysis::floatbits::{self, Format};
use crate::analysis::stats::{DataView, compute_stats};
use crate::analysis::{lowrank, routing};
use crate::arch::ModelFolder;
use crate::engine::Session;
use crate::lora::LoraAdapter;
use crate::sampling::SamplingParams;

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
    /// Select this tensor or module once the folder is open (e.g. `model.layers.0.mlp`).
    #[arg(long, requires = "path")]
    pub select: Option<String>,
    /// Open the token-probability panel and run this prompt once the model is loaded.
    #[arg(long, requires = "path")]
    pub prompt: Option<String>,
    /// Attach this LoRA adapter (PEFT folder or .pth) once the model is open.
    #[arg(long, requires = "path")]
    pub adapter: Option<PathBuf>,
    /// Which panel to show first: weights, tokens or routing.
    #[arg(long, value_parser = ["weights", "tokens", "routing"])]
    pub view: Option<String>,
    /// Interface language: en or zh (中文). Otherwise the remembered one, or the desktop's.
    #[arg(long, value_parser = ["en", "zh"])]
    pub lang: Option<String>,
    /// Save every export (PNG, CSV, JSON) straight into this folder, without asking.
    #[arg(long)]
    pub export_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the module tree exactly as `print(model)` does in transformers 4.57.
    Tree {
        path: PathBuf,
        /// Show the tree as PEFT wraps it with this LoRA adapter (folder or .pth).
        #[arg(long)]
        adapter: Option<PathBuf>,
        /// LoRA α for adapters that do not store it (MiniMind .pth: α = rank by default).
        #[arg(long)]
        alpha: Option<f64>,
    },
    /// What a LoRA adapter changes: ΔW = (α/r)·B·A per module, its norm against W, its singular values.
    Lora {
        path: PathBuf,
        adapter: PathBuf,
        #[arg(long)]
        alpha: Option<f64>,
        #[arg(long)]
        json: bool,
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
    /// One value as FP32, BF16, FP16, FP8 E4M3 and FP8 E5M2: sign, exponent, mantissa bits.
    #[command(allow_negative_numbers = true)]
    Bits {
        /// A number (`0.1`, `-2.5`, `1e-8`, `nan`, `inf`).
        #[arg(required_unless_present = "tensor")]
        value: Option<String>,
        /// Take the value from a stored tensor instead: `--tensor PATH TENSOR --index I`.
        #[arg(long, num_args = 2, value_names = ["PATH", "TENSOR"], requires = "index", conflicts_with = "value")]
        tensor: Option<Vec<String>>,
        /// Flat (row-major) element index into the tensor.
        #[arg(long)]
        index: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The next-token distribution after a prompt: top candidates after sampling warpers.
    Probs {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        /// Wrap the prompt in the tokenizer's chat template (as a user message).
        #[arg(long)]
        chat: bool,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        adapter: AdapterArgs,
        /// How many candidates to list.
        #[arg(long, default_value_t = 10)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
    /// Generate tokens after a prompt (greedy with --temperature 0), seeded so it replays.
    Generate {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        #[arg(long, default_value_t = 20)]
        max_new: usize,
        #[command(flatten)]
        sampling: SamplingArgs,
        #[command(flatten)]
        adapter: AdapterArgs,
        #[arg(long)]
        json: bool,
    },
    /// Which experts each token is routed to in every MoE layer, with the gate's probabilities.
    Routing {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        #[arg(long)]
        json: bool,
    },
    /// What casting a whole tensor to a smaller format does: errors, overflow, underflow.
    Cast {
        path: PathBuf,
        tensor: String,
        /// Target format: bf16, f16, f8e4m3 or f8e5m2.
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug, Clone)]
pub struct AdapterArgs {
    /// Run with this LoRA adapter (PEFT folder or MiniMind .pth).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Strength of the adapter: ΔW is multiplied by this (0 = off, 1 = as trained).
    #[arg(long, default_value_t = 1.0, requires = "adapter")]
    pub adapter_scale: f64,
    /// LoRA α for adapters that do not store it.
    #[arg(long, requires = "adapter")]
    pub alpha: Option<f64>,
}

impl AdapterArgs {
    fn attach(&self, model: &ModelFolder, session: &mut Session) -> Result<(), String> {
        if let Some(path) = &self.adapter {
            let adapter = LoraAdapter::open(path, model, self.alpha)?;
            session.set_adapter(Some((std::sync::Arc::new(adapter), self.adapter_scale)))?;
        }
        Ok(())
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct SamplingArgs {
    /// 0 = greedy.
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// 1.0 = off.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// 1.0 = off.
    #[arg(long, default_value_t = 1.0)]
    pub repetition_penalty: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SamplingArgs {
    pub fn params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
        }
    }
}

/// Runs a subcommand, writing its output to `out`. Errors are returned for the caller to
/// print on stderr with a non-zero exit.
pub fn run(command: Command, out: &mut dyn Write) -> Result<(), String> {
    let res: Result<(), Box<dyn std::error::Error>> = (|| {
        match command {
            Command::Tree { path, adapter, alpha } => {
                let model = ModelFolder::open(&path)?;
                for notice in &model.notices {
                    eprintln!("note: {notice}");
                }
                match adapter {
                    None => writeln!(out, "{}", model.repr())?,
                    Some(a) => {
                        let adapter = LoraAdapter::open(&a, &model, alpha)?;
                        writeln!(out, "{}", crate::arch::peft::wrap(&model.tree, &adapter).repr(crate::arch::ROOT))?;
                        eprintln!(
                            "{}",
                            crate::arch::peft::trainable_line(
                                &adapter,
                                model.tree.unique_param_count(crate::arch::ROOT)
                            )
                        );
                    }
                }
            }
            Command::Lora { path, adapter, alpha, json } => {
                let model = ModelFolder::open(&path)?;
                let adapter = LoraAdapter::open(&adapter, &model, alpha)?;
                let ckpt = &model.checkpoint;
                let summaries: Vec<_> = adapter
                    .modules
                    .iter()
                    .map(|m| {
                        let w = ckpt.require(&format!("{}.weight", m.module))?;
                        let values = w.dtype.decode_all_f32(ckpt.bytes(w));
                        Ok(lowrank::summarize(&m.module, &m.a, &m.b, m.rank, &values, adapter.scaling))
                    })
                    .collect::<Result<_, crate::checkpoint::CheckpointError>>()?;
                let top8 = |sv: &[f64]| -> Vec<f64> { (0..8).map(|i| sv.get(i).copied().unwrap_or(0.0)).collect() };
                if json {
                    let value = json!({
                        "rank": adapter.rank,
                        "alpha": adapter.alpha,
                        "scaling": adapter.scaling,
                        "use_rslora": adapter.use_rslora,
                        "target_modules": adapter.target_modules,
                        "trainable_params": adapter.trainable_params(),
                        "modules": summaries.iter().map(|s| json!({
                            "name": s.module, "w_norm": s.w_norm, "delta_norm": s.delta_norm, "ratio": s.ratio,
                            "singular_values": top8(&s.singular_values),
                        })).collect::<Vec<_>>(),
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    writeln!(
                        out,
                        "rank {}, alpha {}, scaling {} ({} modules)",
                        adapter.rank,
                        adapter.alpha,
                        adapter.scaling,
                        adapter.modules.len()
                    )?;
                    writeln!(
                        out,
                        "{}",
                        crate::arch::peft::trainable_line(&adapter, model.tree.unique_param_count(crate::arch::ROOT))
                    )?;
                    for s in &summaries {
                        writeln!(
                            out,
                            "{:<40} ||W|| {:>9.4}  ||dW|| {:>9.4}  ratio {:.4}  sv {:?}",
                            s.module,
                            s.w_norm,
                            s.delta_norm,
                            s.ratio,
                            top8(&s.singular_values).iter().map(|v| format!("{v:.3}")).collect::<Vec<_>>()
                        )?;
                    }
                }
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
                let info = ckpt
                    .require(&tensor)
                    .map_err(|e| format!("{e} in {} (see `llm-anatomy tensors {}`)", path.display(), path.display()))?;
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
                        writeln!(
                            out,
                            "[{:>+.4e}, {:>+.4e}) {:>10} {bar}",
                            stats.histogram.edges[i],
                            stats.histogram.edges[i + 1],
                            c
                        )?;
                    }
                }
            }
            Command::Bits { value, tensor, index, json } => {
                let (input, origin) = match (value, tensor) {
                    (Some(v), _) => (parse_number(&v)?, None),
                    (None, Some(t)) => {
                        let (path, name) = (PathBuf::from(&t[0]), &t[1]);
                        let index = index.ok_or("--tensor needs --index")?;
                        let model = ModelFolder::open(&path)?;
                        let ckpt = &model.checkpoint;
                        let info = ckpt.require(name)?;
                        let value = ckpt.element(info, index).ok_or_else(|| {
                            format!(
                                "index {index} is out of range: `{name}` has {} elements (shape {:?})",
                                info.numel(),
                                info.shape
                            )
                        })?;
                        (value, Some((name.clone(), info.dtype, index)))
                    }
                    (None, None) => return Err("give a VALUE or --tensor PATH TENSOR --index I".into()),
                };
                let b = floatbits::breakdown(input);
                if json {
                    let mut obj = serde_json::Map::new();
                    obj.insert("input".into(), json!(finite_or_null(input)));
                    if let Some((name, dtype, index)) = &origin {
                        obj.insert("tensor".into(), json!(name));
                        obj.insert("stored_dtype".into(), json!(dtype.as_str()));
                        obj.insert("index".into(), json!(index));
                    }
                    for d in &b.formats {
                        obj.insert(d.format.key().into(), decoded_json(d));
                    }
                    writeln!(out, "{}", serde_json::to_string_pretty(&serde_json::Value::Object(obj))?)?;
                } else {
                    if let Some((name, dtype, index)) = &origin {
                        writeln!(out, "{name}[{index}] stored as {dtype}: {input}")?;
                    } else {
                        writeln!(out, "input {input}")?;
                    }
                    for d in &b.formats {
                        let (down, up) = floatbits::neighbours(d);
                        writeln!(
                            out,
                            "\n{:<9} {}  sign {}  exponent {}  mantissa {}  ({})",
                            d.format.name(),
                            d.hex(),
                            d.sign,
                            d.exponent_bits_string(),
                            d.mantissa_bits_string(),
                            d.class.as_str()
                        )?;
                        writeln!(out, "          {}", d.formula())?;
                        writeln!(
                            out,
                            "          error vs f32 {:+e}; next down {}, next up {}",
                            d.value - b.as_f32 as f64,
                            down.map(|x| x.value.to_string()).unwrap_or_else(|| "—".into()),
                            up.map(|x| x.value.to_string()).unwrap_or_else(|| "—".into())
                        )?;
                    }
                }
            }
            Command::Probs { path, prompt, chat, sampling, adapter, top, json } => {
                let model = ModelFolder::open(&path)?;
                let mut session = Session::load(&model)?;
                adapter.attach(&model, &mut session)?;
                session.set_prompt(&prompt, chat)?;
                let d = session.distribution(&sampling.params()).ok_or("no logits")?;
                let candidates: Vec<_> = d
                    .order
                    .iter()
                    .take(top)
                    .map(|&id| {
                        let piece = session.codec.piece(id);
                        let i = id as usize;
                        (piece, d.probs[i], d.raw_probs[i], d.logits[i], d.removed[i])
                    })
                    .collect();
                if json {
                    let value = json!({
                        "input_ids": session.tokens,
                        "candidates": candidates.iter().map(|(p, prob, raw, logit, _)| json!({
                            "id": p.id, "token": p.token, "text": p.text, "prob": prob, "raw_prob": raw, "logit": logit,
                        })).collect::<Vec<_>>(),
                        "entropy_bits": d.entropy_bits,
                        "kept": d.kept,
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    writeln!(out, "input ids: {:?}", session.tokens)?;
                    writeln!(out, "{:>6}  {:<16} {:>9} {:>9} {:>9}", "id", "token", "prob", "raw", "logit")?;
                    for (p, prob, raw, logit, removed) in &candidates {
                        let why = removed.map(|r| format!("  ({})", r.label())).unwrap_or_default();
                        writeln!(
                            out,
                            "{:>6}  {:<16} {:>9.5} {:>9.5} {:>9.4}{why}",
                            p.id,
                            format!("{:?}", p.text),
                            prob,
                            raw,
                            logit
                        )?;
                    }
                    writeln!(out, "entropy {:.3} bits, {} tokens kept", d.entropy_bits, d.kept)?;
                }
            }
            Command::Generate { path, prompt, chat, max_new, sampling, adapter, json } => {
                let model = ModelFolder::open(&path)?;
                let mut session = Session::load(&model)?;
                adapter.attach(&model, &mut session)?;
                session.set_prompt(&prompt, chat)?;
                let input_ids = session.tokens.clone();
                let new_ids = session.generate(max_new, &sampling.params())?;
                let text = session.codec.decode(&new_ids);
                if json {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(
                            &json!({"input_ids": input_ids, "new_ids": new_ids, "text": text})
                        )?
                    )?;
                } else {
                    writeln!(out, "{}{}", session.codec.decode(&input_ids), text)?;
                }
            }
            Command::Routing { path, prompt, chat, json } => {
                let model = ModelFolder::open(&path)?;
                let cfg = model.config.as_ref().ok_or("this architecture is not supported for inference")?;
                let moe = cfg.moe.as_ref().ok_or_else(|| {
                    format!("{} is a dense model: every token goes through the same MLP, so there is no routing to show (MoE families: Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE)", cfg.architecture)
                })?;
                let mut session = Session::load(&model)?;
                session.set_prompt(&prompt, chat)?;
                let layers = routing::summarize(&session.routing, &session.shared_gate, moe.top_k, moe.norm_topk_prob);
                let pieces: Vec<_> = session.tokens.iter().map(|&id| session.codec.piece(id)).collect();
                if json {
                    let value = json!({
                        "tokens": pieces.iter().map(|p| json!({"id": p.id, "text": p.text, "token": p.token})).collect::<Vec<_>>(),
                        "num_experts": moe.num_experts,
                        "top_k": moe.top_k,
                        "layers": layers.iter().map(|l| json!({
                            "layer": l.layer,
                            "probs": l.probs,
                            "topk": l.topk,
                            "weights": l.weights,
                            "load": l.load,
                            "load_cv": l.load_cv,
                            "aux_loss": l.aux_loss,
                            "dormant": l.dormant,
                            "shared_gate": l.shared_gate,
                        })).collect::<Vec<_>>(),
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    for l in &layers {
                        writeln!(
                            out,
                            "layer {}  load {:?}  (cv {:.2}, aux loss {:.3}{})",
                            l.layer,
                            l.load,
                            l.load_cv,
                            l.aux_loss,
                            if l.dormant.is_empty() { String::new() } else { format!(", dormant {:?}", l.dormant) }
                        )?;
                        for (t, p) in pieces.iter().enumerate() {
                            let chosen: Vec<String> =
                                l.topk[t].iter().zip(&l.weights[t]).map(|(e, w)| format!("e{e}×{w:.2}")).collect();
                            writeln!(out, "  {:<14} {}", format!("{:?}", p.text), chosen.join(" + "))?;
                        }
                    }
                }
            }
            Command::Cast { path, tensor, to, json } => {
                let format = Format::parse(&to)
                    .filter(|f| *f != Format::F32)
                    .ok_or_else(|| format!("--to {to}: expected bf16, f16, f8e4m3 or f8e5m2"))?;
                let model = ModelFolder::open(&path)?;
                let ckpt = &model.checkpoint;
                let info = ckpt.require(&tensor)?;
                let r =
                    cast_report(&[DataView { dtype: info.dtype, bytes: ckpt.bytes(info) }], format, &Control::new())?;
                if json {
                    let value = json!({
                        "name": info.name,
                        "dtype": info.dtype.as_str(),
                        "to": format.key(),
                        "count": r.count,
                        "exact": r.exact,
                        "overflow": r.overflow,
                        "underflow": r.underflow,
                        "subnormal": r.subnormal,
                        "non_finite_input": r.non_finite_input,
                        "max_abs_error": r.max_abs_error,
                        "mean_abs_error": r.mean_abs_error,
                        "max_rel_error": r.max_rel_error,
                        "mean_rel_error": r.mean_rel_error,
                        "rel_error_histogram": {"log10_edges": r.rel_error_log10_edges, "counts": r.rel_error_log10_counts},
                        "exponent_histogram": {
                            "exponents": r.exponent_counts.iter().map(|(e, _)| *e).collect::<Vec<_>>(),
                            "counts": r.exponent_counts.iter().map(|(_, c)| *c).collect::<Vec<_>>(),
                        },
                    });
                    writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                } else {
                    writeln!(out, "{} ({}, {} values) → {}", info.name, info.dtype, r.count, format.name())?;
                    writeln!(out, "exact      {}", r.exact)?;
                    writeln!(
                        out,
                        "overflow   {}{}",
                        r.overflow,
                        if format.has_inf() { " (→ ±∞)" } else { " (clamped to ±448)" }
                    )?;
                    writeln!(out, "underflow  {} (→ 0)", r.underflow)?;
                    writeln!(out, "subnormal  {}", r.subnormal)?;
                    writeln!(out, "abs error  max {:e}, mean {:e}", r.max_abs_error, r.mean_abs_error)?;
                    writeln!(out, "rel error  max {:e}, mean {:e}", r.max_rel_error, r.mean_rel_error)?;
                }
            }
        }
        Ok(())
    })();
    res.map_err(|e| e.to_string())
}

/// Accepts what people type: `0.1`, `-2.5`, `1e-8`, `nan`, `inf`, `-inf`.
fn parse_number(s: &str) -> Result<f64, String> {
    s.trim().parse::<f64>().map_err(|_| format!("`{s}` is not a number"))
}

fn finite_or_null(x: f64) -> serde_json::Value {
    if x.is_nan() {
        serde_json::Value::Null
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

/// The `F` object of `bits --json`.
fn decoded_json(d: &floatbits::Decoded) -> serde_json::Value {
    json!({
        "value": finite_or_null(d.value),
        "hex": d.hex(),
        "sign": d.sign,
        "exponent_bits": d.exponent_bits_string(),
        "mantissa_bits": d.mantissa_bits_string(),
        "exponent": d.exponent,
        "class": d.class.as_str(),
    })
}
