//! The decoder: one forward pass for the eight supported families, written as a plain
//! sequence of named steps that mirrors transformers' modelling files.
//!
//! ```text
//! ids → embed_tokens → for each layer:
//!         h = x + self_attn(input_layernorm(x))          (RoPE, GQA, KV cache)
//!         x = h + mlp(post_attention_layernorm(h))       (SwiGLU, or a sparse MoE block)
//!       → norm → lm_head → logits
//! ```
//!
//! Family differences are data, not separate code paths: q/k/v biases (Qwen2, Qwen2-MoE),
//! per-head q/k norms (Qwen3, Qwen3-MoE), whole-projection q/k norms and clip_qkv (OLMoE),
//! routed experts with or without top-k renormalisation, and Qwen2-MoE's shared expert
//! with its sigmoid gate. All compute is f32; matrices stay at their stored width (F32 in
//! place, BF16/F16 16-bit, widened inside the kernels) and only norms, biases and the rarer
//! dtypes (F64, FP8) are widened on load.
//!
//! The model is built either from a checkpoint ([`LoadedModel::from_checkpoint`], weights used in
//! place) or from a `candle_nn::VarBuilder` ([`LoadedModel::load`]), so the same code runs under
//! autograd when built from a `VarMap` (`training = true` picks the differentiable RMSNorm
//! and RoPE).

use candle_core::{DType, Device, IndexOp, Result, Shape, Tensor};
use candle_nn::VarBuilder;

use super::matvec::{FastLinear, Weight, Width};
use super::quant_matvec::Arith;
use crate::analysis::cast::CastTarget;
use crate::checkpoint::{Checkpoint, Dtype};

use crate::arch::{ArchConfig, Family};

mod decode;
mod ggml_attention;

/// One MoE layer's choice: (layer index, the experts each token ran, their mixing weights).
pub type ExpertChoice = (usize, Vec<Vec<usize>>, Vec<Vec<f32>>);

/// What a forward pass records besides the logits, for the panels.
#[derive(Clone, Debug, Default)]
pub struct Probes {
    /// Per MoE layer (in layer order, dense layers skipped): `[layer index, router logits
    /// per token (n_tokens × n_experts)]`.
    pub router_logits: Vec<(usize, Vec<Vec<f32>>)>,
    /// Per MoE layer, Qwen2-MoE's shared-expert gate value sigmoid(g·x) per token.
    pub shared_gate: Vec<(usize, Vec<f32>)>,
    /// Per MoE layer, the experts the block actually ran for each token and the weights it
    /// mixed them with: what the forward did, not a recomputation from the router logits.
    pub expert_choice: Vec<ExpertChoice>,
    /// Attention weights and the residual stream, recorded only when this is Some (the
    /// Attention and Logit lens panels, `attention` and `lens` in the CLI).
    pub internals: Option<InternalsProbe>,
}

/// What the forward calls saw inside, one entry per call (a long prompt runs in chunks).
#[derive(Clone, Debug, Default)]
pub struct InternalsProbe {
    pub chunks: Vec<ChunkInternals>,
}

/// One forward call's new positions `offset .. offset + t`.
#[derive(Clone, Debug, Default)]
pub struct ChunkInternals {
    pub offset: usize,
    pub t: usize,
    /// Per layer: t × heads × (offset + t) softmax weights, queries then heads then keys
    /// (a query's weights on later keys are the mask's zeros). GQA heads are query heads.
    pub attention: Vec<Vec<f32>>,
    /// The embedding output, then each decoder layer's output: t × hidden each.
    pub residual: Vec<Vec<f32>>,
}

impl Probes {
    /// Appends a later chunk's rows to the same layers' entries.
    fn extend(&mut self, later: Probes) {
        if let (Some(mine), Some(theirs)) = (self.internals.as_mut(), later.internals) {
            mine.chunks.extend(theirs.chunks);
        }
        for (layer, rows) in later.router_logits {
            match self.router_logits.iter_mut().find(|(l, _)| *l == layer) {
                Some((_, mine)) => mine.extend(rows),
                None => self.router_logits.push((layer, rows)),
            }
        }
        for (layer, ids, weights) in later.expert_choice {
            match self.expert_choice.iter_mut().find(|(l, _, _)| *l == layer) {
                Some((_, my_ids, my_weights)) => {
                    my_ids.extend(ids);
                    my_weights.extend(weights);
                }
                None => self.expert_choice.push((layer, ids, weights)),
            }
        }
        for (layer, gates) in later.shared_gate {
            match self.shared_gate.iter_mut().find(|(l, _)| *l == layer) {
                Some((_, mine)) => mine.extend(gates),
                None => self.shared_gate.push((layer, gates)),
            }
        }
    }
}

struct Rotary {
    cos: Tensor,
    sin: Tensor,
    /// Built by [`Rotary::ggml`]: rotate as ggml does too, see [`rotate`].
    ggml: bool,
    /// MiniMindLM: pairs (2i, 2i+1) rotate, see [`rotate_pairs`].
    interleaved: bool,
}

/// Rotates one head (first half paired with second half, Hugging Face order) by the
/// position's cos/sin. ggml's build contracts each line into one fused multiply-add,
/// `fma(x0, cos, −x1·sin)` and `fma(x0, sin, x1·cos)`; with `ggml` that is what is done.
pub(super) fn rotate(head: &mut [f32], cos: &[f32], sin: &[f32], ggml: bool) {
    let half = head.len() / 2;
    let (a, b) = head.split_at_mut(half);
    for i in 0..half {
        let (x0, x1) = (a[i], b[i]);
        if ggml {
            a[i] = x0.mul_add(cos[i], -(x1 * sin[i]));
            b[i] = x0.mul_add(sin[i], x1 * cos[i]);
        } else {
            a[i] = x0 * cos[i] - x1 * sin[i];
            b[i] = x1 * cos[i] + x0 * sin[i];
        }
    }
}

/// Rotates one head as MiniMindLM's `apply_rotary_emb` does: (x[2i] + i·x[2i+1]) times
/// (cos + i·sin), the complex product written out.
pub(super) fn rotate_pairs(head: &mut [f32], cos: &[f32], sin: &[f32]) {
    for (i, pair) in head.chunks_exact_mut(2).enumerate() {
        let (x0, x1) = (pair[0], pair[1]);
        pair[0] = x0 * cos[i] - x1 * sin[i];
        pair[1] = x0 * sin[i] + x1 * cos[i];
    }
}

/// RoPE's inverse frequencies and the factor on cos/sin, per transformers 4.57's
/// `modeling_rope_utils` for each `rope_type`.
pub fn inv_freq(cfg: &ArchConfig) -> std::result::Result<(Vec<f32>, f64), String> {
    use crate::arch::config::RopeScaling;
    let dim = cfg.head_dim;
    let base = cfg.rope_theta as f32;
    // inv_freq = 1 / θ^(2i/d): the default, which the others reshape.
    let plain: Vec<f32> = (0..dim / 2).map(|i| 1.0 / base.powf(2.0 * i as f32 / dim as f32)).collect();
    Ok(match cfg.rope_scaling {
        RopeScaling::Default => (plain, 1.0),
        RopeScaling::Linear { factor } => (plain.iter().map(|f| f / factor as f32).collect(), 1.0),
        RopeScaling::Llama3 { factor, low_freq_factor, high_freq_factor, original_max } => {
            let (factor, low, high, old) =
                (factor as f32, low_freq_factor as f32, high_freq_factor as f32, original_max as f32);
            let (low_wavelen, high_wavelen) = (old / low, old / high);
            let scaled = plain
                .iter()
                .map(|&f| {
                    let wavelen = 2.0 * std::f32::consts::PI / f;
                    if wavelen < high_wavelen {
                        f
                    } else if wavelen > low_wavelen {
                        f / factor
                    } else {
                        let smooth = (old / wavelen - low) / (high - low);
                        (1.0 - smooth) * f / factor + smooth * f
                    }
                })
                .collect();
            (scaled, 1.0)
        }
        RopeScaling::Yarn { factor, attention_factor, beta_fast, beta_slow, original_max, truncate } => {
            let correction_dim = |rotations: f64| {
                (dim as f64 * (original_max / (rotations * 2.0 * std::f64::consts::PI)).ln())
                    / (2.0 * (cfg.rope_theta).ln())
            };
            let (mut low, mut high) = (correction_dim(beta_fast), correction_dim(beta_slow));
            if truncate {
                (low, high) = (low.floor(), high.ceil());
            }
            let (low, mut high) = (low.max(0.0), high.min(dim as f64 - 1.0));
            if low == high {
                high += 0.001;
            }
            let scaled = (0..dim / 2)
                .map(|i| {
                    let pos_freq = base.powf(2.0 * i as f32 / dim as f32);
                    let (extrapolation, interpolation) = (1.0 / pos_freq, 1.0 / (factor as f32 * pos_freq));
                    let ramp = ((i as f32 - low as f32) / (high as f32 - low as f32)).clamp(0.0, 1.0);
                    let keep = 1.0 - ramp;
                    interpolation * (1.0 - keep) + extrapolation * keep
                })
                .collect();
            (scaled, attention_factor)
        }
        RopeScaling::Unsupported(ref kind) => {
            return Err(format!(
                "rope_scaling type \"{kind}\" is not supported: the model's tree and weights can be inspected, but it cannot run"
            ));
        }
    })
}

impl Rotary {
    /// cos and sin of position × inv_freq for every position, with inv_freq as transformers
    /// computes it for the config's `rope_scaling` (in f32, as torch does).
    fn new(cfg: &ArchConfig, max_len: usize, dev: &Device) -> Result<Self> {
        let (inv_freq, attention_factor) = inv_freq(cfg).map_err(candle_core::Error::Msg)?;
        let d = inv_freq.len();
        let inv_freq = Tensor::from_vec(inv_freq, (1, d), dev)?;
        let positions = Tensor::arange(0u32, max_len as u32, dev)?.to_dtype(DType::F32)?.reshape((max_len, 1))?;
        let angles = positions.matmul(&inv_freq)?;
        let (cos, sin) = (angles.cos()?, angles.sin()?);
        let interleaved = cfg.rope_interleaved;
        if attention_factor == 1.0 {
            return Ok(Self { cos, sin, ggml: false, interleaved });
        }
        Ok(Self { cos: (cos * attention_factor)?, sin: (sin * attention_factor)?, ggml: false, interleaved })
    }

    /// The same tables as ggml computes them for llama.cpp arithmetic: `theta_scale =
    /// powf(base, −2/d)` and, per position, `theta` multiplied by it pair after pair, then
    /// `cosf`/`sinf` (one ulp from transformers' tables, which one F16 rounding of q or k
    /// can turn into a different code). Scalings other than none and linear keep
    /// transformers' tables (llama.cpp reads those from the file's own rope factors).
    fn ggml(cfg: &ArchConfig, max_len: usize, dev: &Device) -> Result<Self> {
        use crate::arch::config::RopeScaling;
        let freq_scale = match cfg.rope_scaling {
            RopeScaling::Default => 1.0f32,
            RopeScaling::Linear { factor } => 1.0 / factor as f32,
            _ => return Self::new(cfg, max_len, dev),
        };
        let half = cfg.head_dim / 2;
        let theta_scale = (cfg.rope_theta as f32).powf(-2.0 / cfg.head_dim as f32);
        let (mut cos, mut sin) = (Vec::with_capacity(max_len * half), Vec::with_capacity(max_len * half));
        for p in 0..max_len {
            let mut theta = p as f32;
            for _ in 0..half {
                let t = freq_scale * theta;
                cos.push(t.cos());
                sin.push(t.sin());
                theta *= theta_scale;
            }
        }
        let (cos, sin) = (Tensor::from_vec(cos, (max_len, half), dev)?, Tensor::from_vec(sin, (max_len, half), dev)?);
        Ok(Self { cos, sin, ggml: true, interleaved: cfg.rope_interleaved })
    }

    /// One head at one position, in this table's pairing and arithmetic.
    fn rotate_head(&self, head: &mut [f32], cos: &[f32], sin: &[f32]) {
        if self.interleaved { rotate_pairs(head, cos, sin) } else { rotate(head, cos, sin, self.ggml) }
    }

    fn apply(&self, x: &Tensor, offset: usize, training: bool) -> Result<Tensor> {
        let t = x.dim(2)?;
        let cos = self.cos.narrow(0, offset, t)?.contiguous()?;
        let sin = self.sin.narrow(0, offset, t)?.contiguous()?;
        if self.ggml && !training {
            let (cos, sin) = (cos.flatten_all()?.to_vec1::<f32>()?, sin.flatten_all()?.to_vec1::<f32>()?);
            let mut xs = x.flatten_all()?.to_vec1::<f32>()?;
            let (hd, half) = (x.dim(3)?, cos.len() / t);
            // (b, heads, t, hd): the position is the row index modulo t.
            for (r, head) in xs.chunks_exact_mut(hd).enumerate() {
                let p = r % t;
                self.rotate_head(head, &cos[p * half..(p + 1) * half], &sin[p * half..(p + 1) * half]);
            }
            return Tensor::from_vec(xs, x.shape(), x.device());
        }
        if self.interleaved {
            return if training {
                candle_nn::rotary_emb::rope_i_slow(x, &cos, &sin)
            } else {
                candle_nn::rotary_emb::rope_i(&x.contiguous()?, &cos, &sin)
            };
        }
        if training {
            candle_nn::rotary_emb::rope_slow(x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope(&x.contiguous()?, &cos, &sin)
        }
    }
}

/// Where the weights come from, and the dotted prefix reached so far (`model.layers.3`).
#[derive(Clone)]
struct Source<'a> {
    from: From<'a>,
    prefix: String,
    /// The checkpoint names tensors as MiniMindLM does (see `arch::minimind::stored_name`).
    minimind_names: bool,
}

#[derive(Clone)]
enum From<'a> {
    Vars(VarBuilder<'a>),
    /// The checkpoint's weights, as stored or round-tripped through another precision.
    Stored(&'a Checkpoint, Option<CastTarget>),
}

impl<'a> Source<'a> {
    fn stored(cfg: &ArchConfig, ckpt: &'a Checkpoint, to: Option<CastTarget>) -> Self {
        Self { from: From::Stored(ckpt, to), prefix: String::new(), minimind_names: cfg.family == Family::MiniMindLm }
    }

    fn pp(&self, name: impl AsRef<str>) -> Self {
        let prefix = if self.prefix.is_empty() {
            name.as_ref().to_string()
        } else {
            format!("{}.{}", self.prefix, name.as_ref())
        };
        Self { from: self.from.clone(), prefix, minimind_names: self.minimind_names }
    }

    fn device(&self) -> Device {
        match &self.from {
            From::Vars(vb) => vb.device().clone(),
            From::Stored(..) => Device::Cpu,
        }
    }

    /// The stored tensor `prefix.leaf`, checked against the shape the config implies.
    fn info(&self, ckpt: &'a Checkpoint, shape: &Shape, leaf: &str) -> Result<&'a crate::checkpoint::TensorInfo> {
        let mut name = self.pp(leaf).prefix;
        if self.minimind_names {
            name = crate::arch::minimind::stored_name(&name);
        }
        let t = ckpt
            .tensor(&name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor `{name}` in the checkpoint")))?;
        if t.shape != shape.dims() {
            candle_core::bail!("tensor `{name}` is stored as {:?}; the config implies {:?}", t.shape, shape.dims());
        }
        Ok(t)
    }

    /// A small tensor (norm weight, bias), widened to f32.
    fn small(&self, shape: impl Into<Shape>, leaf: &str) -> Result<Tensor> {
        let shape = shape.into();
        match &self.from {
            From::Vars(vb) => vb.get(shape, &self.pp(leaf).prefix),
            From::Stored(ckpt, _) => {
                let t = self.info(ckpt, &shape, leaf)?;
                Tensor::from_vec(t.dtype.decode_all_f32(ckpt.bytes(t)), shape, &Device::Cpu)
            }
        }
    }

    /// A [rows, cols] matrix, kept at its stored width when the kernels read that width.
    fn matrix(&self, rows: usize, cols: usize, leaf: &str) -> Result<Weight> {
        let shape = Shape::from((rows, cols));
        match &self.from {
            From::Vars(vb) => Ok(Weight::Tensor(vb.get(shape, &self.pp(leaf).prefix)?)),
            From::Stored(ckpt, Some(to)) => {
                let t = self.info(ckpt, &shape, leaf)?;
                round_trip(&t.dtype.decode_all_f32(ckpt.bytes(t)), *to, rows, cols)
            }
            From::Stored(ckpt, None) => {
                let t = self.info(ckpt, &shape, leaf)?;
                let width = match t.dtype {
                    Dtype::F32 => Some(Width::F32),
                    Dtype::BF16 => Some(Width::BF16),
                    Dtype::F16 => Some(Width::F16),
                    _ => None,
                };
                if let (Some(width), Some(bytes)) = (width, ckpt.shared_bytes(t))
                    && let Some(w) = Weight::stored(bytes, width, rows, cols)
                {
                    return Ok(w);
                }
                if let (Dtype::Ggml(layout), Some(bytes)) = (t.dtype, ckpt.shared_bytes(t))
                    && let Some(w) = Weight::quantized(bytes, layout, rows, cols)
                {
                    return Ok(w);
                }
                // FP8, F64, or bytes not aligned to their width: widened once, here.
                Ok(Weight::Tensor(Tensor::from_vec(t.dtype.decode_all_f32(ckpt.bytes(t)), shape, &Device::Cpu)?))
            }
        }
    }
}

/// `values` ([rows, cols], Hugging Face order) rounded through `to` and kept at that
/// precision: BF16 and F16 as their own bits (the kernels read them), FP8 as BF16 (which
/// holds every FP8 value exactly), block formats as ggml blocks run in exact arithmetic.
fn round_trip(values: &[f32], to: CastTarget, rows: usize, cols: usize) -> Result<Weight> {
    use crate::analysis::floatbits::{Format, cast_bits, decode};
    let owned = |bytes: Vec<u8>| {
        crate::checkpoint::SharedBytes::owned(&bytes)
            .map_err(|e| candle_core::Error::Msg(format!("memory for the round-tripped weights: {e}")))
    };
    let halves = |bits: Vec<u16>| bits.iter().flat_map(|b| b.to_le_bytes()).collect::<Vec<u8>>();
    let weight = match to {
        CastTarget::Float(f @ (Format::BF16 | Format::F16)) => {
            let width = if f == Format::BF16 { Width::BF16 } else { Width::F16 };
            let bits = values.iter().map(|&x| cast_bits(x, f) as u16).collect();
            Weight::stored(owned(halves(bits))?, width, rows, cols)
        }
        CastTarget::Float(f) => {
            let bits = values
                .iter()
                .map(|&x| {
                    let v = decode(f, cast_bits(x, f)).value as f32;
                    cast_bits(v, Format::BF16) as u16
                })
                .collect();
            Weight::stored(owned(halves(bits))?, Width::BF16, rows, cols)
        }
        CastTarget::Block(ty) => {
            if !cols.is_multiple_of(ty.block_size().unwrap_or(32)) {
                candle_core::bail!("rows of {cols} values are not whole {ty} blocks");
            }
            let bytes = crate::checkpoint::quantize::quantize(ty, values)
                .ok_or_else(|| candle_core::Error::Msg(format!("no quantizer for {ty}")))?;
            let layout = crate::checkpoint::ggml_dtype::GgmlLayout::plain(ty, cols as u32);
            Weight::quantized(owned(bytes)?, layout, rows, cols)
        }
    };
    weight.ok_or_else(|| candle_core::Error::Msg("round-tripped weights of the wrong size".into()))
}

struct RmsNorm {
    weight: Tensor,
    eps: f32,
    /// Normalise as ggml does (llama.cpp arithmetic), see [`ggml_rms_norm`].
    ggml: bool,
}

/// ggml's RMS norm: the squares summed in double, `scale = 1/sqrtf(mean + eps)` in f32, and
/// `x·scale·w`. (Candle's sums in f32 and divides: the same to 1e-7, but in llama.cpp
/// arithmetic the next matvec rounds its input to 8 bits, where 1e-7 can flip a code.)
pub(super) fn ggml_rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let sum: f64 = x.iter().map(|v| (v * v) as f64).sum();
    let mean = (sum / x.len() as f64) as f32;
    let scale = 1.0 / (mean + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(weight) {
        *o = v * scale * w;
    }
}

impl RmsNorm {
    fn load(vb: Source, dim: usize, eps: f64) -> Result<Self> {
        Ok(Self { weight: vb.small(dim, "weight")?, eps: eps as f32, ggml: false })
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        if self.ggml && !training {
            let w = self.weight.to_vec1::<f32>()?;
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            let mut out = vec![0f32; xs.len()];
            for (o, row) in out.chunks_exact_mut(w.len()).zip(xs.chunks_exact(w.len())) {
                ggml_rms_norm(row, &w, self.eps, o);
            }
            return Tensor::from_vec(out, x.shape(), x.device());
        }
        if training {
            candle_nn::ops::rms_norm_slow(x, &self.weight, self.eps)
        } else {
            candle_nn::ops::rms_norm(&x.contiguous()?, &self.weight, self.eps)
        }
    }
}

fn linear(vb: Source, in_f: usize, out_f: usize, bias: bool) -> Result<FastLinear> {
    let w = vb.matrix(out_f, in_f, "weight")?;
    let b = if bias { Some(vb.small(out_f, "bias")?) } else { None };
    Ok(FastLinear::new(w, b))
}

/// gate_proj / up_proj / down_proj (Mixtral's w1 / w3 / w2) with SiLU.
struct SwiGlu {
    gate: FastLinear,
    up: FastLinear,
    down: FastLinear,
}

impl SwiGlu {
    fn by_name(&mut self, name: &str) -> Option<&mut FastLinear> {
        match name {
            "gate_proj" | "w1" => Some(&mut self.gate),
            "up_proj" | "w3" => Some(&mut self.up),
            "down_proj" | "w2" => Some(&mut self.down),
            _ => None,
        }
    }

    fn load(vb: Source, hidden: usize, inter: usize, bias: bool, mixtral_names: bool) -> Result<Self> {
        let (g, u, d) = if mixtral_names { ("w1", "w3", "w2") } else { ("gate_proj", "up_proj", "down_proj") };
        Ok(Self {
            gate: linear(vb.pp(g), hidden, inter, bias)?,
            up: linear(vb.pp(u), hidden, inter, bias)?,
            down: linear(vb.pp(d), inter, hidden, bias)?,
        })
    }

    fn forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let gate = candle_nn::ops::silu(&self.gate.forward_t(x, training)?)?;
        self.down.forward_t(&(gate * self.up.forward_t(x, training)?)?, training)
    }
}

struct SparseMoe {
    gate: FastLinear,
    experts: Vec<SwiGlu>,
    top_k: usize,
    norm_topk_prob: bool,
    /// Boxed: it would make every MoE layer's enum variant twice a dense one's size.
    /// The gate is None for MiniMind's shared experts, which are added with weight 1.
    shared: Option<Box<(SwiGlu, Option<FastLinear>)>>,
}

impl SparseMoe {
    /// Returns the block's output and the router logits (n_tokens × n_experts).
    fn forward(&self, x: &Tensor, probes: Option<(&mut Probes, usize)>, training: bool) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let xs = x.reshape((b * t, h))?;
        let router_logits = self.gate.forward_t(&xs, training)?;
        let probs = softmax(&router_logits, training)?;
        // The choice of experts is discrete (no gradient); the mixing weights are gathered
        // from the softmax tensor, so training reaches the gate through them.
        let chosen: Vec<Vec<usize>> = probs.to_vec2::<f32>()?.iter().map(|p| top_k_ids(p, self.top_k)).collect();
        let n = chosen.len();
        let k = self.top_k;
        let ids: Vec<u32> = chosen.iter().flatten().map(|&e| e as u32).collect();
        let mut weights = probs.gather(&Tensor::from_vec(ids, (n, k), xs.device())?, 1)?;
        if self.norm_topk_prob {
            weights = weights.broadcast_div(&weights.sum_keepdim(1)?)?;
        }
        let weights = weights.flatten_all()?;
        let n_experts = self.experts.len();
        // Per expert: which tokens it serves and which (token, slot) weight applies.
        let mut per_expert: Vec<(Vec<u32>, Vec<u32>)> = vec![(Vec::new(), Vec::new()); n_experts];
        for (tok, experts) in chosen.iter().enumerate() {
            for (slot, &e) in experts.iter().enumerate() {
                per_expert[e].0.push(tok as u32);
                per_expert[e].1.push((tok * k + slot) as u32);
            }
        }
        let mut out = xs.zeros_like()?;
        for (e, (tokens, slots)) in per_expert.iter().enumerate() {
            if tokens.is_empty() {
                continue;
            }
            let idx = Tensor::new(tokens.as_slice(), xs.device())?;
            let w = weights.index_select(&Tensor::new(slots.as_slice(), xs.device())?, 0)?.unsqueeze(1)?;
            let y = self.experts[e].forward(&xs.index_select(&idx, 0)?, training)?.broadcast_mul(&w)?;
            out = out.index_add(&idx, &y, 0)?;
        }
        let mut shared_gate_values = None;
        match self.shared.as_deref() {
            Some((expert, Some(gate))) => {
                let g = candle_nn::ops::sigmoid(&gate.forward_t(&xs, training)?)?;
                out = (out + expert.forward(&xs, training)?.broadcast_mul(&g)?)?;
                shared_gate_values = Some(g.flatten_all()?.to_vec1::<f32>()?);
            }
            Some((expert, None)) => out = (out + expert.forward(&xs, training)?)?,
            None => {}
        }
        if let Some((probes, layer)) = probes {
            probes.router_logits.push((layer, router_logits.to_vec2()?));
            let used: Vec<Vec<f32>> = weights.to_vec1::<f32>()?.chunks(k).map(<[f32]>::to_vec).collect();
            probes.expert_choice.push((layer, chosen.clone(), used));
            if let Some(g) = shared_gate_values {
                probes.shared_gate.push((layer, g));
            }
        }
        out.reshape((b, t, h))
    }
}

pub use crate::analysis::routing::top_k_ids;

enum Mlp {
    Dense(SwiGlu),
    Sparse(SparseMoe),
}

struct Attention {
    q: FastLinear,
    k: FastLinear,
    v: FastLinear,
    o: FastLinear,
    /// Qwen3: per head (over head_dim); OLMoE: over the whole projection.
    q_norm: Option<RmsNorm>,
    k_norm: Option<RmsNorm>,
    norm_whole_projection: bool,
    clip_qkv: Option<f64>,
    n_heads: usize,
    n_kv_heads: usize,
    head_dim: usize,
}

struct Layer {
    input_norm: RmsNorm,
    attn: Attention,
    post_norm: RmsNorm,
    mlp: Mlp,
}

impl Layer {
    fn linears_mut(&mut self) -> Vec<&mut FastLinear> {
        let mut v: Vec<&mut FastLinear> = vec![&mut self.attn.q, &mut self.attn.k, &mut self.attn.v, &mut self.attn.o];
        match &mut self.mlp {
            Mlp::Dense(m) => v.extend([&mut m.gate, &mut m.up, &mut m.down]),
            Mlp::Sparse(moe) => {
                v.push(&mut moe.gate);
                for e in moe.experts.iter_mut() {
                    v.extend([&mut e.gate, &mut e.up, &mut e.down]);
                }
                if let Some((e, g)) = moe.shared.as_deref_mut() {
                    v.extend([&mut e.gate, &mut e.up, &mut e.down]);
                    v.extend(g.as_mut());
                }
            }
        }
        v
    }
}

/// Keys and values of every position seen so far, per layer, position-major
/// (`len × kv_heads × head_dim`) in buffers that grow by doubling up to the context admission
/// counted. Appending a token writes one row; the old cache of candle tensors was rebuilt by
/// `cat` on every token, copying the whole cache each step.
#[derive(Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerKv>,
    len: usize,
    /// kv_heads × head_dim: the floats one position adds to K (and to V) of a layer.
    row: usize,
    /// Positions the buffers may grow to (the session's context).
    capacity: usize,
}

#[derive(Clone, Default)]
struct LayerKv {
    k: Vec<f32>,
    v: Vec<f32>,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position from `len` on (step back).
    pub fn truncate(&mut self, len: usize) {
        if len < self.len {
            for layer in self.layers.iter_mut() {
                layer.k.truncate(len * self.row);
                layer.v.truncate(len * self.row);
            }
            self.len = len;
        }
    }

    /// Makes room for `t` more positions in every layer (zeros until written), so a forward
    /// pass writes into fixed buffers. Grows by doubling, never past the context.
    fn grow(&mut self, t: usize) {
        let want = (self.len + t) * self.row;
        for layer in self.layers.iter_mut() {
            for buf in [&mut layer.k, &mut layer.v] {
                if buf.capacity() < want {
                    let target = want.max(2 * buf.capacity()).min(self.capacity.max(self.len + t) * self.row);
                    buf.reserve_exact(target - buf.len());
                }
                buf.resize(want, 0.0);
            }
        }
    }

    /// Layer `layer`'s keys and values for positions `0..len` (what is stored so far).
    fn stored(&self, layer: usize, len: usize) -> (&[f32], &[f32]) {
        let l = &self.layers[layer];
        (&l.k[..len * self.row], &l.v[..len * self.row])
    }
}

pub struct LoadedModel {
    pub cfg: ArchConfig,
    /// [vocab, hidden]; with tied embeddings lm_head reads the same rows.
    embed: Weight,
    layers: Vec<Layer>,
    norm: RmsNorm,
    lm_head: FastLinear,
    rotary: Rotary,
    pub training: bool,
    pub device: Device,
    pub arith: Arith,
    /// Built on the first one-token step (see [`decode`]); None for a sparse model.
    fused: std::sync::OnceLock<Option<decode::Plan>>,
}

impl LoadedModel {
    /// Builds the model over candle tensors: a `VarMap` for training, or any f32 tensors.
    pub fn load(cfg: &ArchConfig, vb: VarBuilder) -> Result<Self> {
        Self::build(cfg, Source { from: From::Vars(vb), prefix: String::new(), minimind_names: false })
    }

    /// Builds the model over a checkpoint's weights as stored: matrices are used in place
    /// from the read-only map (kept alive by the model), so loading copies nothing large.
    pub fn from_checkpoint(cfg: &ArchConfig, ckpt: &Checkpoint) -> Result<Self> {
        Self::build(cfg, Source::stored(cfg, ckpt, None))
    }

    /// The same model with every weight matrix (embedding, projections, experts, lm_head)
    /// rounded through `to` as it loads, held in memory at that precision; norms and biases
    /// stay as stored, as llama.cpp's converters keep them.
    pub fn from_checkpoint_round_trip(cfg: &ArchConfig, ckpt: &Checkpoint, to: CastTarget) -> Result<Self> {
        Self::build(cfg, Source::stored(cfg, ckpt, Some(to)))
    }

    fn build(cfg: &ArchConfig, vb: Source) -> Result<Self> {
        let h = cfg.hidden_size;
        let vm = vb.pp("model");
        let embed = vm.pp("embed_tokens").matrix(cfg.vocab_size, h, "weight")?;
        let mut layers = Vec::with_capacity(cfg.num_layers);
        for i in 0..cfg.num_layers {
            let vl = vm.pp(format!("layers.{i}"));
            let va = vl.pp("self_attn");
            let (q_out, kv_out) = (cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim);
            let whole = cfg.family == Family::Olmoe;
            let (qn, kn) = if whole { (q_out, kv_out) } else { (cfg.head_dim, cfg.head_dim) };
            let attn = Attention {
                q: linear(va.pp("q_proj"), h, q_out, cfg.attention_bias)?,
                k: linear(va.pp("k_proj"), h, kv_out, cfg.attention_bias)?,
                v: linear(va.pp("v_proj"), h, kv_out, cfg.attention_bias)?,
                o: linear(va.pp("o_proj"), q_out, h, cfg.o_proj_bias)?,
                q_norm: if cfg.qk_norm { Some(RmsNorm::load(va.pp("q_norm"), qn, cfg.rms_norm_eps)?) } else { None },
                k_norm: if cfg.qk_norm { Some(RmsNorm::load(va.pp("k_norm"), kn, cfg.rms_norm_eps)?) } else { None },
                norm_whole_projection: whole,
                clip_qkv: cfg.clip_qkv,
                n_heads: cfg.num_heads,
                n_kv_heads: cfg.num_kv_heads,
                head_dim: cfg.head_dim,
            };
            let mlp = if cfg.is_sparse_layer(i) {
                let moe = cfg.moe.as_ref().expect("sparse layer has a MoE config");
                let mixtral = cfg.family == Family::Mixtral;
                let vb_moe = if mixtral { vl.pp("block_sparse_moe") } else { vl.pp("mlp") };
                let experts = (0..moe.num_experts)
                    .map(|e| {
                        SwiGlu::load(vb_moe.pp(format!("experts.{e}")), h, moe.expert_intermediate, false, mixtral)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let shared = match moe.shared_expert_intermediate {
                    Some(si) => Some(Box::new((
                        SwiGlu::load(vb_moe.pp("shared_expert"), h, si, false, false)?,
                        match moe.shared_expert_gated {
                            true => Some(linear(vb_moe.pp("shared_expert_gate"), h, 1, false)?),
                            false => None,
                        },
                    ))),
                    None => None,
                };
                Mlp::Sparse(SparseMoe {
                    gate: linear(vb_moe.pp("gate"), h, moe.num_experts, false)?,
                    experts,
                    top_k: moe.top_k,
                    norm_topk_prob: moe.norm_topk_prob,
                    shared,
                })
            } else {
                Mlp::Dense(SwiGlu::load(vl.pp("mlp"), h, cfg.intermediate_size, cfg.mlp_bias, false)?)
            };
            layers.push(Layer {
                input_norm: RmsNorm::load(vl.pp("input_layernorm"), h, cfg.rms_norm_eps)?,
                attn,
                post_norm: RmsNorm::load(vl.pp("post_attention_layernorm"), h, cfg.rms_norm_eps)?,
                mlp,
            });
        }
        let norm = RmsNorm::load(vm.pp("norm"), h, cfg.rms_norm_eps)?;
        let lm_head = if cfg.tie_word_embeddings {
            FastLinear::new(embed.clone(), None)
        } else {
            linear(vb.pp("lm_head"), h, cfg.vocab_size, false)?
        };
        let device = vb.device();
        // As many positions as a session runs (admission counted the KV cache for these).
        let rotary = Rotary::new(cfg, super::memory::context(cfg), &device)?;
        Ok(Self {
            cfg: cfg.clone(),
            embed,
            layers,
            norm,
            lm_head,
            rotary,
            training: false,
            device,
            arith: Arith::Exact,
            fused: Default::default(),
        })
    }

    /// Attaches (or with `None` removes) a LoRA adapter, its ΔW scaled by `strength`
    /// (1 = as trained, 0 = off). Caches computed before are stale afterwards.
    pub fn set_adapter(&mut self, adapter: Option<&crate::lora::LoraAdapter>, strength: f64) -> Result<()> {
        for layer in self.layers.iter_mut() {
            for lin in layer.linears_mut() {
                lin.lora = None;
            }
        }
        self.lm_head.lora = None;
        let Some(adapter) = adapter else { return Ok(()) };
        let device = self.device.clone();
        for m in &adapter.modules {
            let a = Tensor::from_slice(&m.a, (m.rank, m.in_features), &device)?;
            let b = Tensor::from_slice(&m.b, (m.out_features, m.rank), &device)?;
            // A MiniMindLM adapter names v1 modules (`layers.0.attention.wq`).
            let module = match self.cfg.family {
                Family::MiniMindLm => crate::arch::minimind::engine_name(&m.module),
                _ => m.module.clone(),
            };
            self.attach_lora(&module, a, b, adapter.scaling * strength)?;
        }
        Ok(())
    }

    /// How quantized matrices are multiplied from now on (see [`super::quant_matvec`]);
    /// caches computed before are stale afterwards.
    pub fn set_arith(&mut self, arith: Arith) {
        self.embed.set_arith(arith);
        self.lm_head.set_arith(arith);
        for lin in self.layers.iter_mut().flat_map(|l| l.linears_mut()) {
            lin.set_arith(arith);
        }
        let ggml = arith == Arith::LlamaCpp;
        if ggml != (self.arith == Arith::LlamaCpp) {
            let len = self.rotary.cos.dim(0).unwrap_or(0);
            let rotary = if ggml {
                Rotary::ggml(&self.cfg, len, &self.device)
            } else {
                Rotary::new(&self.cfg, len, &self.device)
            };
            if let Ok(r) = rotary {
                self.rotary = r;
                // The one-token plan copied the old tables.
                self.fused = std::sync::OnceLock::new();
            }
        }
        self.norm.ggml = ggml;
        for l in self.layers.iter_mut() {
            l.input_norm.ggml = ggml;
            l.post_norm.ggml = ggml;
            for n in [&mut l.attn.q_norm, &mut l.attn.k_norm].into_iter().flatten() {
                n.ggml = ggml;
            }
        }
        self.arith = arith;
    }

    /// Runs `f` with every LoRA update set aside (the base model), then puts them back:
    /// no copies, so the with/without comparison costs only the forward itself.
    pub fn without_lora<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let mut saved: Vec<_> =
            self.layers.iter_mut().flat_map(|l| l.linears_mut()).map(|lin| lin.lora.take()).collect();
        saved.push(self.lm_head.lora.take());
        let result = f(self);
        let mut saved = saved.into_iter();
        for lin in self.layers.iter_mut().flat_map(|l| l.linears_mut()) {
            lin.lora = saved.next().flatten();
        }
        self.lm_head.lora = saved.next().flatten();
        result
    }

    /// Puts LoRA matrices A [r, in] and B [out, r] on one Linear. Given `Var`-backed
    /// tensors, training updates them through this same forward pass.
    pub fn attach_lora(&mut self, module: &str, a: Tensor, b: Tensor, scale: f64) -> Result<()> {
        let lin = self
            .linear_mut(module)
            .ok_or_else(|| candle_core::Error::Msg(format!("no Linear `{module}` in this model")))?;
        lin.lora = Some((a, b, scale));
        Ok(())
    }

    /// The Linear at a dotted module path (`model.layers.3.self_attn.q_proj`).
    fn linear_mut(&mut self, path: &str) -> Option<&mut FastLinear> {
        if path == "lm_head" {
            return Some(&mut self.lm_head);
        }
        let rest = path.strip_prefix("model.layers.")?;
        let (i, rest) = rest.split_once('.')?;
        let layer = self.layers.get_mut(i.parse::<usize>().ok()?)?;
        let parts: Vec<&str> = rest.split('.').collect();
        match parts.as_slice() {
            ["self_attn", p] => match *p {
                "q_proj" => Some(&mut layer.attn.q),
                "k_proj" => Some(&mut layer.attn.k),
                "v_proj" => Some(&mut layer.attn.v),
                "o_proj" => Some(&mut layer.attn.o),
                _ => None,
            },
            ["mlp", p] => match &mut layer.mlp {
                Mlp::Dense(m) => m.by_name(p),
                Mlp::Sparse(moe) => match *p {
                    "gate" => Some(&mut moe.gate),
                    "shared_expert_gate" => moe.shared.as_deref_mut().and_then(|(_, g)| g.as_mut()),
                    _ => None,
                },
            },
            ["mlp" | "block_sparse_moe", "experts", e, p] => match &mut layer.mlp {
                Mlp::Sparse(moe) => moe.experts.get_mut(e.parse::<usize>().ok()?)?.by_name(p),
                _ => None,
            },
            ["block_sparse_moe", "gate"] => match &mut layer.mlp {
                Mlp::Sparse(moe) => Some(&mut moe.gate),
                _ => None,
            },
            ["mlp", "shared_expert", p] => match &mut layer.mlp {
                Mlp::Sparse(moe) => moe.shared.as_deref_mut()?.0.by_name(p),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: vec![LayerKv::default(); self.layers.len()],
            len: 0,
            row: self.cfg.num_kv_heads * self.cfg.head_dim,
            capacity: self.rotary.cos.dim(0).unwrap_or(0),
        }
    }

    /// Runs `ids` (b × t) after the positions already in `cache`; returns logits for every
    /// new position (b × t × vocab) and appends to the cache.
    pub fn forward(&self, ids: &Tensor, cache: &mut KvCache, probes: Option<&mut Probes>) -> Result<Tensor> {
        let x = self.hidden(ids, cache, probes)?;
        self.lm_head.forward_t(&self.norm.forward(&x, self.training)?, self.training)
    }

    /// The residual stream after the last layer (before the final norm), b × t × hidden.
    fn hidden(&self, ids: &Tensor, cache: &mut KvCache, mut probes: Option<&mut Probes>) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let offset = cache.len();
        if b > 1 && offset > 0 {
            candle_core::bail!(
                "a batch of sequences runs from an empty cache (training), not after {offset} positions"
            );
        }
        if offset + t > self.rotary.cos.dim(0)? {
            candle_core::bail!(
                "sequence of {} tokens is longer than the {} positions this program runs the model with (its config allows {})",
                offset + t,
                self.rotary.cos.dim(0)?,
                self.cfg.max_position_embeddings
            );
        }
        let mask = if t > 1 { Some(causal_mask(t, offset, &self.device)?) } else { None };
        // A batch (training) is run once and not continued, so only one sequence is cached.
        if b == 1 {
            cache.grow(t);
        }
        let mut x = self.embed.lookup(ids)?;
        let record = probes.as_ref().is_some_and(|p| p.internals.is_some());
        let mut inside = ChunkInternals { offset, t, ..Default::default() };
        if record {
            inside.residual.push(x.flatten_all()?.to_vec1::<f32>()?);
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let weights = record.then_some(&mut inside.attention);
            let a = self.attention(
                &layer.attn,
                &layer.input_norm.forward(&x, self.training)?,
                cache,
                (i, offset),
                mask.as_ref(),
                weights,
            )?;
            let h = (x + a)?;
            let n = layer.post_norm.forward(&h, self.training)?;
            let m = match &layer.mlp {
                Mlp::Dense(mlp) => mlp.forward(&n, self.training)?,
                Mlp::Sparse(moe) => moe.forward(&n, probes.as_deref_mut().map(|p| (p, i)), self.training)?,
            };
            x = (h + m)?;
            if record {
                inside.residual.push(x.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        if let Some(internals) = probes.and_then(|p| p.internals.as_mut()) {
            internals.chunks.push(inside);
        }
        if b == 1 {
            cache.len += t;
        }
        Ok(x)
    }

    /// The logit lens of one residual-stream vector: lm_head(norm(h)), as the model's own
    /// output would be if the remaining layers were skipped.
    pub fn lens_logits(&self, h: &[f32]) -> Result<Vec<f32>> {
        let x = Tensor::from_slice(h, (1, 1, h.len()), &self.device)?;
        let logits = self.lm_head.forward_t(&self.norm.forward(&x, false)?, false)?;
        logits.flatten_all()?.to_vec1::<f32>()
    }

    /// Logits of the last position only (what the next token is drawn from), as a Vec.
    /// A long prompt runs in chunks of [`PREFILL_CHUNK`](super::memory::PREFILL_CHUNK)
    /// tokens, and only the last position goes through lm_head: the working memory stays
    /// what admission counted, not tokens × (vocab + positions).
    pub fn next_token_logits(
        &self,
        ids: &[u32],
        cache: &mut KvCache,
        mut probes: Option<&mut Probes>,
    ) -> Result<Vec<f32>> {
        let internals = probes.as_ref().is_some_and(|p| p.internals.is_some());
        if let [id] = ids
            && !internals
            && let Some(logits) = self.fused_step(*id, cache)?
        {
            return Ok(logits);
        }
        let mut last = None;
        for chunk in ids.chunks(super::memory::PREFILL_CHUNK) {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            let mut part = Probes {
                internals: probes.as_ref().and_then(|p| p.internals.as_ref()).map(|_| Default::default()),
                ..Default::default()
            };
            let x = self.hidden(&input, cache, probes.is_some().then_some(&mut part))?;
            last = Some(x.i((.., chunk.len() - 1.., ..))?);
            if let Some(p) = probes.as_deref_mut() {
                p.extend(part);
            }
        }
        let last = last.ok_or_else(|| candle_core::Error::Msg("no tokens to run".into()))?;
        let logits = self.lm_head.forward_t(&self.norm.forward(&last, self.training)?, self.training)?;
        logits.flatten_all()?.to_vec1::<f32>()
    }

    /// Writes this chunk's keys and values (1, kv_heads, t, hd) into the cache at `offset`,
    /// and returns them preceded by the cached ones: constants before, the chunk's own
    /// tensors after, so gradients still reach the chunk.
    fn cache_and_extend(
        &self,
        cache: &mut KvCache,
        layer: usize,
        offset: usize,
        k: Tensor,
        v: Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (_, nkv, t, hd) = k.dims4()?;
        let row = cache.row;
        for (new, stored) in [(&k, 0), (&v, 1)] {
            let rows = new.transpose(1, 2)?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
            let l = &mut cache.layers[layer];
            let buf = if stored == 0 { &mut l.k } else { &mut l.v };
            buf[offset * row..(offset + t) * row].copy_from_slice(&rows);
        }
        if offset == 0 {
            return Ok((k, v));
        }
        let (pk, pv) = cache.stored(layer, offset);
        let before =
            |p: &[f32]| Tensor::from_slice(p, (1, offset, nkv, hd), &self.device)?.transpose(1, 2)?.contiguous();
        Ok((Tensor::cat(&[&before(pk)?, &k], 2)?, Tensor::cat(&[&before(pv)?, &v], 2)?))
    }

    /// `weights`: where to append this layer's softmax weights (t × heads × keys), when the
    /// internals are recorded.
    fn attention(
        &self,
        a: &Attention,
        x: &Tensor,
        cache: &mut KvCache,
        (layer, offset): (usize, usize),
        mask: Option<&Tensor>,
        weights: Option<&mut Vec<Vec<f32>>>,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let (nh, nkv, hd) = (a.n_heads, a.n_kv_heads, a.head_dim);
        let mut q = a.q.forward_t(x, self.training)?;
        let mut k = a.k.forward_t(x, self.training)?;
        let mut v = a.v.forward_t(x, self.training)?;
        if a.norm_whole_projection
            && let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm)
        {
            q = qn.forward(&q, self.training)?;
            k = kn.forward(&k, self.training)?;
        }
        if let Some(c) = a.clip_qkv {
            q = q.clamp(-c, c)?;
            k = k.clamp(-c, c)?;
            v = v.clamp(-c, c)?;
        }
        let mut q = q.reshape((b, t, nh, hd))?;
        let mut k = k.reshape((b, t, nkv, hd))?;
        let v = v.reshape((b, t, nkv, hd))?.transpose(1, 2)?.contiguous()?;
        if !a.norm_whole_projection
            && let (Some(qn), Some(kn)) = (&a.q_norm, &a.k_norm)
        {
            q = qn.forward(&q, self.training)?;
            k = kn.forward(&k, self.training)?;
        }
        let q = self.rotary.apply(&q.transpose(1, 2)?.contiguous()?, offset, self.training)?;
        let k = self.rotary.apply(&k.transpose(1, 2)?.contiguous()?, offset, self.training)?;
        // llama.cpp keeps K and V in F16 and multiplies q and the softmax weights with them
        // in F16 too (its non-flash attention converts the other operand).
        let f16 = self.arith == Arith::LlamaCpp;
        let (q, k, v) = if f16 { (through_f16(&q)?, through_f16(&k)?, through_f16(&v)?) } else { (q, k, v) };
        let (k, v) = if b == 1 { self.cache_and_extend(cache, layer, offset, k, v)? } else { (k, v) };
        let scale = 1.0 / (hd as f64).sqrt();
        if f16 && b == 1 {
            // llama.cpp's order of operations, one query position at a time (one token too).
            let (q, k, v) = (
                q.flatten_all()?.to_vec1::<f32>()?,
                k.flatten_all()?.to_vec1::<f32>()?,
                v.flatten_all()?.to_vec1::<f32>()?,
            );
            let dims = ggml_attention::Dims { t, heads: nh, kv_heads: nkv, head_dim: hd };
            let (y, w) = ggml_attention::chunk(&q, &k, &v, dims, scale as f32, weights.is_some());
            if let (Some(out), Some(w)) = (weights, w) {
                out.push(w);
            }
            return a.o.forward_t(&Tensor::from_vec(y, (1, t, nh * hd), &Device::Cpu)?, false);
        }
        if !self.training && b == 1 && t == 1 {
            let (y, w) = decode_attention(&q, &k, &v, nh / nkv, scale as f32, weights.is_some())?;
            if let Some(out) = weights {
                out.push(w);
            }
            return a.o.forward_t(&y.reshape((1, 1, nh * hd))?, false);
        }
        // Grouped-query attention without copying k and v once per query head: the n_rep
        // query heads that share a KV head are consecutive, so they become n_rep × t rows
        // against that head's keys (the mask repeated to match).
        let n_rep = nh / nkv;
        let q = q.reshape((b, nkv, n_rep * t, hd))?;
        let mut scores = (q.matmul(&k.t()?)? * scale)?;
        if let Some(m) = mask {
            let m = if n_rep > 1 { m.repeat((n_rep, 1))? } else { m.clone() };
            scores = scores.broadcast_add(&m)?;
        }
        let probs = softmax(&scores, self.training)?;
        let probs = if f16 { through_f16(&probs)? } else { probs };
        if let Some(out) = weights {
            // (nkv, n_rep·t, keys) is (heads, t, keys): make it queries first.
            let keys = probs.dim(3)?;
            out.push(probs.reshape((nh, t, keys))?.transpose(0, 1)?.contiguous()?.flatten_all()?.to_vec1::<f32>()?);
        }
        let y = probs.matmul(&v)?.reshape((b, nh, t, hd))?.transpose(1, 2)?.reshape((b, t, nh * hd))?;
        a.o.forward_t(&y, self.training)
    }
}

/// Values rounded to F16 and back (to nearest even), as llama.cpp stores and converts them.
fn through_f16(t: &Tensor) -> Result<Tensor> {
    t.to_dtype(DType::F16)?.to_dtype(DType::F32)
}

/// One new token's attention over the cache, in plain loops: at this size (heads × positions
/// × head_dim, a few hundred thousand multiply-adds) each candle matmul costs more in set-up
/// than in arithmetic (it even re-reads /proc/cpuinfo to size its thread pool).
/// q: (1, heads, 1, hd); k, v: (1, kv_heads, len, hd). Returns (heads × hd) as (1, heads, hd).
/// With `keep`, also returns the softmax weights (heads × len) for the probes.
fn decode_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    n_rep: usize,
    scale: f32,
    keep: bool,
) -> Result<(Tensor, Vec<f32>)> {
    use rayon::prelude::*;
    let (_, nh, _, hd) = q.dims4()?;
    let (_, _, len, _) = k.dims4()?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let mut y = vec![0f32; nh * hd];
    let mut kept = vec![0f32; if keep { nh * len } else { 0 }];
    let kept_rows: Vec<&mut [f32]> = if keep { kept.chunks_mut(len).collect() } else { Vec::new() };
    let kept_rows = std::sync::Mutex::new(kept_rows.into_iter().map(Some).collect::<Vec<_>>());
    with_f32(k, |k| {
        with_f32(v, |v| {
            // One task per query head: the positions of a long context are the work.
            y.par_chunks_mut(hd).zip(q.par_chunks(hd)).enumerate().for_each(|(h, (yh, qh))| {
                let g = h / n_rep;
                let (kg, vg) = (&k[g * len * hd..(g + 1) * len * hd], &v[g * len * hd..(g + 1) * len * hd]);
                let mut p: Vec<f32> = kg.chunks_exact(hd).map(|kj| dot(qh, kj) * scale).collect();
                let max = p.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for pj in p.iter_mut() {
                    *pj = (*pj - max).exp();
                    sum += *pj;
                }
                for (pj, vj) in p.iter().zip(vg.chunks_exact(hd)) {
                    let w = pj / sum;
                    yh.iter_mut().zip(vj).for_each(|(o, x)| *o += w * x);
                }
                if keep && let Some(row) = kept_rows.lock().ok().and_then(|mut r| r[h].take()) {
                    row.iter_mut().zip(&p).for_each(|(o, pj)| *o = pj / sum);
                }
            });
        })
    })??;
    drop(kept_rows);
    Ok((Tensor::from_vec(y, (1, nh, hd), &Device::Cpu)?, kept))
}

/// Eight partial sums, so the compiler can keep them in one vector register.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ah, at) = a.split_at(a.len() - a.len() % 8);
    let (bh, bt) = b.split_at(ah.len());
    for (x, y) in ah.chunks_exact(8).zip(bh.chunks_exact(8)) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + at.iter().zip(bt).map(|(x, y)| x * y).sum::<f32>()
}

/// Runs `f` on a CPU f32 tensor's values in row-major order (copying only if it is strided).
fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { candle_core::bail!("attention runs on the CPU") };
    let values = &cpu.as_slice::<f32>()?[layout.start_offset()..layout.start_offset() + t.elem_count()];
    Ok(f(values))
}

/// Softmax over the last dimension: the fused kernel for inference, the differentiable
/// composition when training (the fused one has no backward pass).
fn softmax(x: &Tensor, training: bool) -> Result<Tensor> {
    if training { candle_nn::ops::softmax(x, candle_core::D::Minus1) } else { candle_nn::ops::softmax_last_dim(x) }
}

/// (t × (offset + t)) additive mask: −∞ above the diagonal, so position i sees only ≤ i.
fn causal_mask(t: usize, offset: usize, dev: &Device) -> Result<Tensor> {
    let total = offset + t;
    let mask: Vec<f32> =
        (0..t).flat_map(|i| (0..total).map(move |j| if j > i + offset { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(mask, (t, total), dev)
}

/// Builds a VarBuilder over f32 copies of the checkpoint's tensors, for training (the demo's
/// adapter), where candle tensors are needed; inference uses [`LoadedModel::from_checkpoint`] and
/// copies nothing. Every stored dtype goes through the same decoder as the statistics.
pub fn var_builder(folder: &crate::arch::ModelFolder, dev: &Device) -> Result<VarBuilder<'static>> {
    let ckpt = &folder.checkpoint;
    let mut map = std::collections::HashMap::new();
    for t in &ckpt.tensors {
        let values = t.dtype.decode_all_f32(ckpt.bytes(t));
        map.insert(t.name.clone(), Tensor::from_vec(values, t.shape.as_slice(), dev)?);
    }
    Ok(VarBuilder::from_tensors(map, DType::F32, dev))
}
