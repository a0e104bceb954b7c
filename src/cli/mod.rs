//! Headless subcommands: the same code as the panels, printed as text or JSON for scripts,
//! handouts and tests. The JSON shapes are a contract (see README); keep their keys.

//!
//! One file per subcommand; each prints what a [`crate::report`] function builds, so the
//! desktop Export menu writes the same JSON.

mod attention;
mod bits;
mod blocks;
mod cast;
mod compare;
mod diff;
mod generate;
mod lens;
mod library;
mod lora;
mod metadata;
mod probs;
mod routing;
mod stats;
mod sweep;
mod tensors;
mod tree;

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::arch::ModelFolder;
use crate::engine::Session;
use crate::lora::LoraAdapter;
use crate::sampling::SamplingParams;

#[derive(Parser, Debug)]
#[command(
    name = "llm-anatomy",
    version,
    about = "Open a language model folder and see what is inside it.",
    long_about = "Open a language model folder and see what is inside it.\n\nWith no subcommand, opens the desktop window (on PATH if given).\n\nPATH is a model folder, a file, or the name of a model already on this machine: ORG/NAME[@REV] from the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), ollama:NAME[:TAG] from Ollama's store. This program never makes a network call: `llm-anatomy library` lists what is there.",
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
    /// Which panel to show first (a tab id).
    #[arg(long, value_parser = ["weights", "tokens", "attention", "lens", "routing", "compare", "metadata"])]
    pub view: Option<String>,
    /// Interface language: en or zh (中文). Otherwise the remembered one, or the desktop's.
    #[arg(long, value_parser = ["en", "zh"])]
    pub lang: Option<String>,
    /// Save every export (PNG, CSV, JSON) straight into this folder, without asking.
    #[arg(long)]
    pub export_dir: Option<PathBuf>,
    /// Open a second model beside the first (Compare tab: diff, tree coloured by change;
    /// with --select, that tensor's histograms from both overlaid).
    #[arg(long, requires = "path")]
    pub compare_with: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the module tree exactly as `print(model)` does in transformers 4.57.
    /// Per-layer mean, std, |x|max, kurtosis and outlier share of every repeated tensor role.
    Sweep {
        path: PathBuf,
        /// One role, e.g. `model.layers.{L}.mlp.down_proj.weight`.
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// What changed from checkpoint A to checkpoint B, tensor by tensor (same architecture).
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Attention weights after softmax, per layer and head (rows are queries), for a prompt.
    Attention {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        /// Only this layer.
        #[arg(long)]
        layer: Option<usize>,
        /// Only this head (of every layer shown).
        #[arg(long)]
        head: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// The logit lens at the last position: each layer's residual stream read out through the
    /// final norm and lm_head, and the residual norms per layer and token.
    Lens {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        #[arg(long, default_value_t = 5)]
        top: usize,
        #[arg(long)]
        json: bool,
    },
    /// The models already on this machine (Hugging Face cache, Ollama, LM Studio), read from
    /// their folders only: no network.
    Library {
        #[arg(long)]
        json: bool,
    },
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
    /// Every key/value of a GGUF file's header (arrays: length and first items).
    Metadata {
        path: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// One quantization block of a GGUF tensor: its scales, codes and decoded weights.
    Blocks {
        path: PathBuf,
        /// Hugging Face or GGUF tensor name.
        tensor: String,
        #[arg(long, default_value_t = 0)]
        block: usize,
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
        /// A number (`0.1`, `-2.5`, `1e-8`, `nan`, `inf`, `-inf`).
        #[arg(required_unless_present = "tensor", allow_hyphen_values = true)]
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
        weights: WeightArgs,
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
        weights: WeightArgs,
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
    /// One prompt in two precisions of the same model, step by step: KL divergence, top-1
    /// agreement and both greedy continuations. A precision is `stored`, `exact` or
    /// `llamacpp` (a quantized file's two arithmetics), `bf16`, `f16`, `fp8`, `f8e5m2`,
    /// `q8_0`, `q4_0`, `q4_1` (the weights round-tripped on load), or another file of the
    /// same model.
    Compare {
        path: PathBuf,
        #[arg(long)]
        prompt: String,
        #[arg(long)]
        chat: bool,
        /// Give it twice: A (the reference, which generates) and B (which reads A's tokens).
        #[arg(long, num_args = 1)]
        precision: Vec<String>,
        /// Greedy steps to compare.
        #[arg(long, default_value_t = 20)]
        max_new: usize,
        #[arg(long)]
        json: bool,
    },
    /// What casting a whole tensor to a smaller format does: errors, overflow, underflow.
    Cast {
        path: PathBuf,
        tensor: String,
        /// Target format: bf16, f16, f8e4m3, f8e5m2, or a GGML block format: q8_0, q4_0, q4_1
        /// (ggml's reference quantizers, byte-identical to gguf-py's).
        #[arg(long)]
        to: String,
        #[arg(long)]
        json: bool,
    },
}

/// How the weights run: an adapter on top, and the arithmetic of quantized files.
#[derive(clap::Args, Debug, Clone)]
pub struct WeightArgs {
    /// Quantized (GGUF) weights: `exact` multiplies the dequantized values with f32
    /// activations (what transformers computes); `llamacpp` quantizes the activations to Q8
    /// blocks and uses integer dot products, as llama.cpp's CPU backend does (the default for
    /// a quantized file). The two coincide for F32/F16/BF16 weights.
    #[arg(long, value_parser = ["exact", "llamacpp"])]
    pub arith: Option<String>,
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

impl WeightArgs {
    fn apply(&self, model: &ModelFolder, session: &mut Session) -> Result<(), String> {
        if let Some(arith) = self.arith.as_deref().and_then(crate::engine::quant_matvec::Arith::from_id) {
            session.set_arith(arith)?;
        }
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
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// 1.0 = off.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub min_p: f32,
    /// 1.0 = off.
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub repetition_penalty: f32,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The sampler settings, refused when out of range (a temperature of −1 silently ran as
    /// greedy, a top-p of NaN gave every token probability 0).
    pub fn params(&self) -> Result<SamplingParams, String> {
        let check = |name: &str, v: f32, ok: bool, range: &str| {
            if v.is_finite() && ok { Ok(()) } else { Err(format!("--{name} {v}: expected {range}")) }
        };
        check("temperature", self.temperature, self.temperature >= 0.0, "a number ≥ 0 (0 = greedy)")?;
        check("top-p", self.top_p, self.top_p > 0.0 && self.top_p <= 1.0, "a number in (0, 1] (1 = off)")?;
        check("min-p", self.min_p, (0.0..=1.0).contains(&self.min_p), "a number in [0, 1] (0 = off)")?;
        check("repetition-penalty", self.repetition_penalty, self.repetition_penalty > 0.0, "a number > 0 (1 = off)")?;
        Ok(SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
        })
    }
}

/// Runs a subcommand, writing its output to `out`. Errors are returned for the caller to
/// print on stderr with a non-zero exit.
pub fn run(command: Command, out: &mut dyn Write) -> Result<(), String> {
    let out = &mut TerminalSafe(out);
    let command = resolve_names(command).map_err(|e| escape_controls(&e))?;
    let res = match command {
        Command::Library { json } => library::run(json, out),
        Command::Attention { path, prompt, chat, layer, head, json } => {
            attention::run(&Prompt { path: &path, text: &prompt, chat }, layer, head, json, out)
        }
        Command::Lens { path, prompt, chat, top, json } => {
            lens::run(&Prompt { path: &path, text: &prompt, chat }, top, json, out)
        }
        Command::Sweep { path, role, json } => sweep::run(&path, role.as_deref(), json, out),
        Command::Diff { a, b, json } => diff::run(&a, &b, json, out),
        Command::Tree { path, adapter, alpha } => tree::run(&path, adapter.as_deref(), alpha, out),
        Command::Lora { path, adapter, alpha, json } => lora::run(&path, &adapter, alpha, json, out),
        Command::Tensors { path, json } => tensors::run(&path, json, out),
        Command::Metadata { path, json } => metadata::run(&path, json, out),
        Command::Blocks { path, tensor, block, json } => blocks::run(&path, &tensor, block, json, out),
        Command::Stats { path, tensor, bins, json } => stats::run(&path, &tensor, bins, json, out),
        Command::Bits { value, tensor, index, json } => {
            bits::run(value.as_deref(), tensor.as_deref(), index, json, out)
        }
        Command::Probs { path, prompt, chat, sampling, weights, top, json } => {
            probs::run(&Prompt { path: &path, text: &prompt, chat }, &sampling, &weights, top, json, out)
        }
        Command::Generate { path, prompt, chat, max_new, sampling, weights, json } => {
            generate::run(&Prompt { path: &path, text: &prompt, chat }, max_new, &sampling, &weights, json, out)
        }
        Command::Routing { path, prompt, chat, json } => {
            routing::run(&Prompt { path: &path, text: &prompt, chat }, json, out)
        }
        Command::Compare { path, prompt, chat, precision, max_new, json } => {
            compare::run(&Prompt { path: &path, text: &prompt, chat }, &precision, max_new, json, out)
        }
        Command::Cast { path, tensor, to, json } => cast::run(&path, &tensor, &to, json, out),
    };
    // Error messages quote names from the files too.
    res.map_err(|e| escape_controls(&e.to_string()))
}

/// Every PATH argument that names a cached model (`ORG/NAME`, `ollama:NAME`) becomes its
/// folder or file; existing paths stay as they are.
fn resolve_names(mut command: Command) -> Result<Command, String> {
    let resolve = |p: &mut PathBuf| -> Result<(), String> {
        *p = crate::library::resolve(p)?;
        Ok(())
    };
    match &mut command {
        Command::Library { .. } => {}
        Command::Diff { a, b, .. } => {
            resolve(a)?;
            resolve(b)?;
        }
        Command::Tree { path, .. }
        | Command::Lora { path, .. }
        | Command::Tensors { path, .. }
        | Command::Stats { path, .. }
        | Command::Probs { path, .. }
        | Command::Generate { path, .. }
        | Command::Routing { path, .. }
        | Command::Compare { path, .. }
        | Command::Cast { path, .. }
        | Command::Sweep { path, .. }
        | Command::Attention { path, .. }
        | Command::Lens { path, .. }
        | Command::Metadata { path, .. }
        | Command::Blocks { path, .. } => resolve(path)?,
        Command::Bits { tensor, .. } => {
            if let Some(first) = tensor.as_mut().and_then(|t| t.first_mut()) {
                let mut p = PathBuf::from(&*first);
                resolve(&mut p)?;
                *first = p.to_string_lossy().into_owned();
            }
        }
    }
    Ok(command)
}

/// Control characters from a file (a tensor named with ESC bytes) would drive the terminal:
/// they are written as `\u{1b}` instead. JSON output has none (serde escapes them), so the
/// whole output goes through this.
struct TerminalSafe<'a>(&'a mut dyn Write);

fn is_unsafe_control(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// Writes control characters other than newline and tab as `\u{..}` escapes.
pub fn escape_controls(s: &str) -> String {
    s.chars().map(|c| if is_unsafe_control(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect()
}

impl Write for TerminalSafe<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !buf.iter().any(|&b| b < 0x20 && b != b'\n' && b != b'\t' || b == 0x7f) {
            return self.0.write(buf);
        }
        self.0.write_all(escape_controls(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// What every subcommand returns: `?` works on the string, checkpoint and I/O errors alike.
type Outcome = Result<(), Box<dyn std::error::Error>>;

/// The `--json` outputs are pretty-printed, one value, with a trailing newline.
fn print_json(out: &mut dyn Write, value: &serde_json::Value) -> Outcome {
    // serde leaves DEL and the C1 controls raw (JSON allows them), and `TerminalSafe` would then write them
    // as `\u{7f}`, which is not JSON: escape them here the JSON way (they only occur inside strings).
    let text: String = serde_json::to_string_pretty(value)?
        .chars()
        .map(|c| if is_unsafe_control(c) { format!("\\u{:04x}", c as u32) } else { c.to_string() })
        .collect();
    writeln!(out, "{text}")?;
    Ok(())
}

/// The model folder and prompt the inference subcommands share.
struct Prompt<'a> {
    path: &'a Path,
    text: &'a str,
    /// Wrap `text` in the tokenizer's chat template.
    chat: bool,
}

impl Prompt<'_> {
    /// Loads the weights, attaches the adapter if one was given, and runs the prompt, in the
    /// order the errors should surface (a bad adapter before a bad prompt).
    fn session(
        &self,
        model: &ModelFolder,
        weights: Option<&WeightArgs>,
    ) -> Result<Session, Box<dyn std::error::Error>> {
        let mut session = Session::load(model)?;
        if let Some(weights) = weights {
            weights.apply(model, &mut session)?;
        }
        session.set_prompt(self.text, self.chat)?;
        Ok(session)
    }

    /// The prompt run with the attention weights and residual stream recorded.
    fn session_with_internals(&self, model: &ModelFolder) -> Result<Session, Box<dyn std::error::Error>> {
        let mut session = Session::load(model)?;
        session.set_internals(true)?;
        session.set_prompt(self.text, self.chat)?;
        Ok(session)
    }
}
