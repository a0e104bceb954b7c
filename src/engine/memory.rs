//! Admission: before any weight is read for inference, what running the model will hold is
//! compared with the memory the machine has available, so an 8B or 405B checkpoint is
//! refused with a sentence instead of being killed by the OOM killer (or taking the desktop
//! with it). The tree, statistics, bits and LoRA views never come here.
//!
//! The estimate counts what the engine really keeps: weights in their compute form (F32,
//! BF16 and F16 as stored, since they are used in place; every other dtype widened to f32),
//! the KV cache for the longest context a session runs, the logits kept per generated step,
//! and the working buffers of the largest step (a prefill chunk).

use crate::analysis::cast::CastTarget;
use crate::arch::ArchConfig;
use crate::checkpoint::{Checkpoint, Dtype};

/// The longest context a session runs (positions past it are refused): 4,096 tokens is far
/// more than a lesson needs, and bounds the KV cache of a long-context model.
pub const CONTEXT_CAP: usize = 4096;

/// A long prompt runs through the model this many tokens at a time, which bounds the
/// attention scores and activations of a prefill.
pub const PREFILL_CHUNK: usize = 512;

/// Allocator, tokenizer, thread stacks and the rest of the program: measured ~40 MB here.
const FIXED_BYTES: u64 = 64 << 20;

/// What inference on a model will hold, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub weights: u64,
    pub kv_cache: u64,
    /// Logits kept for every step (stepping back and the generation table need them).
    pub logits: u64,
    /// The largest step's temporaries: a prefill chunk's activations and attention scores,
    /// widened weight tiles, the RoPE tables, and a fixed allowance for the program.
    pub buffers: u64,
    /// The context the KV cache is counted for (min(max_position_embeddings, CONTEXT_CAP)).
    pub context: usize,
}

impl Estimate {
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.logits + self.buffers
    }
}

/// The model does not fit: what it needs and what the machine has.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    pub needed: Estimate,
    pub available: u64,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = &self.needed;
        write!(
            f,
            "needs {}, {} available: this model can be inspected but not run here (weights {}, KV cache for {} tokens {}, logits {}, buffers {})",
            gb(n.total()),
            gb(self.available),
            gb(n.weights),
            n.context,
            gb(n.kv_cache),
            gb(n.logits),
            gb(n.buffers)
        )?;
        let fixed = n.weights + n.buffers;
        if fixed < self.available {
            let per_token = (n.kv_cache + n.logits) / n.context.max(1) as u64;
            let tokens = (self.available - fixed) / per_token.max(1);
            write!(f, "; a context of {tokens} tokens would fit")?;
        }
        Ok(())
    }
}

/// Decimal gigabytes with one decimal, as a laptop's memory is usually quoted.
pub fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// The context a session of this model runs: its own limit, capped.
pub fn context(cfg: &ArchConfig) -> usize {
    cfg.max_position_embeddings.clamp(1, CONTEXT_CAP)
}

/// What running `cfg` over `ckpt`'s tensors will hold. Reads the tensor table only.
pub fn estimate(cfg: &ArchConfig, ckpt: &Checkpoint) -> Estimate {
    let weights: u64 = ckpt
        .tensors
        .iter()
        .map(|t| match t.dtype {
            Dtype::F32 | Dtype::BF16 | Dtype::F16 => t.byte_len() as u64,
            _ => t.numel() as u64 * 4,
        })
        .sum();
    let ctx = context(cfg) as u64;
    let f = 4u64;
    let (heads, kv, hd) = (cfg.num_heads as u64, cfg.num_kv_heads as u64, cfg.head_dim as u64);
    let (kv_cache, logits) = (kv_cache_bytes(cfg), logits_bytes(cfg));
    let chunk = PREFILL_CHUNK.min(context(cfg)) as u64;
    let inter = match &cfg.moe {
        Some(m) => (m.expert_intermediate * m.top_k).max(cfg.intermediate_size) as u64,
        None => cfg.intermediate_size as u64,
    };
    let h = cfg.hidden_size as u64;
    // Per chunk: the residual stream and its norms (~6 × hidden), q/k/v, and gate/up/product.
    let activations = chunk * (6 * h + (heads + 2 * kv) * hd + 3 * inter) * f;
    // Scores and their softmax, and k/v repeated for grouped-query attention.
    let attention = 2 * heads * chunk * ctx * f + 2 * heads * ctx * hd * f;
    // One widened prefill tile and the one being built, and the cos/sin tables.
    let tiles = 2 * (16u64 << 20) + ctx * hd * f;
    let buffers = activations + attention + tiles + cfg.vocab_size as u64 * f + FIXED_BYTES;
    Estimate { weights, kv_cache, logits, buffers, context: ctx as usize }
}

/// K and V of every layer for the whole context, in f32.
fn kv_cache_bytes(cfg: &ArchConfig) -> u64 {
    2 * (cfg.num_layers * cfg.num_kv_heads * cfg.head_dim) as u64 * context(cfg) as u64 * 4
}

/// The logits kept for every position of the context, in f32.
fn logits_bytes(cfg: &ArchConfig) -> u64 {
    context(cfg) as u64 * cfg.vocab_size as u64 * 4
}

/// Admits the model when its estimate fits in `available` bytes; with no figure for the
/// machine (`None`, a platform without `/proc/meminfo`), it never refuses.
pub fn admission(cfg: &ArchConfig, ckpt: &Checkpoint, available: Option<u64>) -> Result<Estimate, Refusal> {
    let needed = estimate(cfg, ckpt);
    match available {
        Some(available) if needed.total() > available => Err(Refusal { needed, available }),
        _ => Ok(needed),
    }
}

/// What attaching a LoRA adapter adds to a running session: the base model's own KV cache
/// and logits (the side-by-side run keeps both), and the adapter's A and B as f32.
pub fn adapter_extra(cfg: &ArchConfig, adapter_floats: u64) -> u64 {
    kv_cache_bytes(cfg) + logits_bytes(cfg) + adapter_floats * 4
}

/// Admits an adapter on a loaded model when what it adds fits in `available` bytes.
pub fn admit_adapter(cfg: &ArchConfig, adapter_floats: u64, available: Option<u64>) -> Result<(), String> {
    let extra = adapter_extra(cfg, adapter_floats);
    match available {
        Some(available) if extra > available => Err(format!(
            "attaching the adapter needs {} more (the base model's own KV cache and logits for the side-by-side comparison, and the adapter), {} available: its weights can still be inspected",
            gb(extra),
            gb(available)
        )),
        _ => Ok(()),
    }
}

/// What holding a model's weight matrices round-tripped through `to` adds: each matrix at
/// the target's bits per weight, plus the widest one widened to f32 while it is converted.
pub fn round_trip_bytes(ckpt: &Checkpoint, to: CastTarget) -> u64 {
    let matrices = ckpt.tensors.iter().filter(|t| t.shape.len() >= 2);
    let kept: f64 = matrices.clone().map(|t| t.numel() as f64 * to.bits_per_weight() / 8.0).sum();
    let widest = matrices.map(|t| t.numel() as u64).max().unwrap_or(0);
    kept as u64 + widest * 4
}

/// Admits the round-tripped weights on top of the `admitted` bytes of the model itself.
pub fn admit_round_trip(
    ckpt: &Checkpoint,
    to: CastTarget,
    admitted: u64,
    available: Option<u64>,
) -> Result<(), String> {
    let extra = round_trip_bytes(ckpt, to);
    match available {
        Some(available) if admitted + extra > available => Err(format!(
            "holding the weights as {} needs {} more in memory on top of the model's {}, {} available",
            to.name(),
            gb(extra),
            gb(admitted),
            gb(available)
        )),
        _ => Ok(()),
    }
}

/// Hands heap memory freed after a big parse back to the system. glibc keeps freed blocks
/// mapped for reuse, so the transient memory of parsing `tokenizer.json` stays resident:
/// SmolLM2's tokenizer leaves RSS at 36 MB after loading, 15 MB after this call. Called after
/// a load and after a prefill; a no-op where the allocator is not glibc's.
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own heap to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `MemAvailable` from `/proc/meminfo`: what the kernel says can be allocated without
/// swapping (free memory plus reclaimable caches). None where there is no such file.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo(&text)
}

fn parse_meminfo(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available_in_bytes() {
        let text = "MemTotal:       24576000 kB\nMemFree:         1000 kB\nMemAvailable:    9800000 kB\n";
        assert_eq!(parse_meminfo(text), Some(9_800_000 * 1024));
        assert_eq!(parse_meminfo("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn an_adapter_counts_the_second_kv_cache_and_logits() {
        let cfg = ArchConfig::parse(&serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
            "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
            "num_key_value_heads": 3, "vocab_size": 49152, "max_position_embeddings": 8192
        }))
        .unwrap();
        // SmolLM2-135M's shapes: 4,096 positions × (30 layers × 2 × 192 floats + 49,152 logits).
        let want = 4096 * (30 * 2 * 192 + 49152) * 4 + 100 * 4;
        assert_eq!(adapter_extra(&cfg, 100), want);
        assert!(admit_adapter(&cfg, 100, Some(want)).is_ok());
        let refused = admit_adapter(&cfg, 100, Some(want - 1)).unwrap_err();
        assert!(refused.contains("needs 1.0 GB more") && refused.contains("1.0 GB available"), "{refused}");
        assert!(admit_adapter(&cfg, 100, None).is_ok());
    }

    #[test]
    fn gigabytes_are_decimal_with_one_decimal() {
        assert_eq!(gb(17_100_000_000), "17.1 GB");
        assert_eq!(gb(9_849_999_999), "9.8 GB");
    }
}
