//! `config.json` → one typed description per family, accepting both the transformers-4 keys
//! Hub folders carry (`rope_theta`, `torch_dtype`) and the transformers-5 ones
//! (`rope_parameters`, `dtype`). Defaults are the families' own config-class defaults, so a
//! sparse Hub config means what transformers would take it to mean.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Llama,
    Mistral,
    Qwen2,
    Qwen3,
    Mixtral,
    Qwen2Moe,
    Qwen3Moe,
    Olmoe,
    /// The current Hugging Face-style MiniMind (`MiniMindForCausalLM`, `model_type: "minimind"`).
    MiniMind,
    /// MiniMind's first generation (`MiniMindLM` + `LMConfig`), read from a `.pth` state dict:
    /// its config is inferred (see `arch::minimind`), under the made-up model_type
    /// `minimind_lm` that no Hub config uses.
    MiniMindLm,
}

impl Family {
    pub const ALL: [Family; 10] = [
        Family::Llama,
        Family::Mistral,
        Family::Qwen2,
        Family::Qwen3,
        Family::Mixtral,
        Family::Qwen2Moe,
        Family::Qwen3Moe,
        Family::Olmoe,
        Family::MiniMind,
        Family::MiniMindLm,
    ];

    /// Class-name prefix used by transformers (`Llama` → `LlamaDecoderLayer`).
    pub fn prefix(self) -> &'static str {
        match self {
            Family::Llama => "Llama",
            Family::Mistral => "Mistral",
            Family::Qwen2 => "Qwen2",
            Family::Qwen3 => "Qwen3",
            Family::Mixtral => "Mixtral",
            Family::Qwen2Moe => "Qwen2Moe",
            Family::Qwen3Moe => "Qwen3Moe",
            Family::Olmoe => "Olmoe",
            Family::MiniMind | Family::MiniMindLm => "MiniMind",
        }
    }

    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Qwen2 => "qwen2",
            Family::Qwen3 => "qwen3",
            Family::Mixtral => "mixtral",
            Family::Qwen2Moe => "qwen2_moe",
            Family::Qwen3Moe => "qwen3_moe",
            Family::Olmoe => "olmoe",
            Family::MiniMind => "minimind",
            Family::MiniMindLm => "minimind_lm",
        }
    }

    pub fn from_model_type(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.model_type() == s)
    }

    /// From an `architectures` entry such as `Qwen2ForCausalLM`.
    pub fn from_architecture(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| s == format!("{}ForCausalLM", f.prefix()))
    }

    pub fn is_moe(self) -> bool {
        matches!(self, Family::Mixtral | Family::Qwen2Moe | Family::Qwen3Moe | Family::Olmoe)
    }

    /// MiniMind's own module classes and `str(model)` (not a transformers family's).
    pub fn is_minimind(self) -> bool {
        matches!(self, Family::MiniMind | Family::MiniMindLm)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct MoeConfig {
    pub num_experts: usize,
    pub top_k: usize,
    /// Hidden size of each routed expert.
    pub expert_intermediate: usize,
    /// An always-on expert: Qwen2-MoE's, behind a sigmoid gate, or MiniMind's, added with
    /// weight 1 (`shared_expert_gated` false).
    pub shared_expert_intermediate: Option<usize>,
    pub shared_expert_gated: bool,
    /// Renormalise the top-k gate weights to sum to 1 (Mixtral always does).
    pub norm_topk_prob: bool,
    /// Qwen-MoE: layer i is sparse when `(i + 1) % decoder_sparse_step == 0` and not in `mlp_only_layers`.
    pub decoder_sparse_step: usize,
    pub mlp_only_layers: Vec<usize>,
}

/// The settings every supported decoder-only family shares, with family-specific extras.
#[derive(Clone, Debug, PartialEq)]
pub struct ArchConfig {
    pub family: Family,
    pub architecture: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    /// How the rotation frequencies are stretched for long contexts (`rope_scaling`).
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    pub tie_word_embeddings: bool,
    pub attention_bias: bool,
    /// Bias on o_proj (Llama's `attention_bias` covers it; Qwen2's q/k/v-only bias does not).
    pub o_proj_bias: bool,
    pub mlp_bias: bool,
    pub hidden_act: String,
    pub pad_token_id: Option<i64>,
    pub bos_token_id: Option<i64>,
    pub eos_token_ids: Vec<i64>,
    /// The dtype the config says the weights are in (`dtype` or `torch_dtype`).
    pub dtype: Option<String>,
    /// Per-head RMSNorm on queries and keys (Qwen3, Qwen3-MoE) or over the whole projection (OLMoE).
    pub qk_norm: bool,
    pub clip_qkv: Option<f64>,
    pub moe: Option<MoeConfig>,
    /// RoPE rotates interleaved pairs (2i, 2i+1) as complex numbers (MiniMindLM), not the
    /// first half of a head against the second (`rotate_half`).
    pub rope_interleaved: bool,
}

impl ArchConfig {
    /// Why this config opens but cannot be run as written, naming the key: values that would
    /// make every logit NaN, or an activation the forward pass does not compute (it would
    /// silently run as SiLU).
    pub fn inference_blocker(&self) -> Option<String> {
        let act = self.hidden_act.to_ascii_lowercase();
        if !matches!(act.as_str(), "silu" | "swish") {
            return Some(format!("hidden_act \"{}\": only SiLU (SwiGLU) MLPs are computed", self.hidden_act));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Some(format!("rms_norm_eps {}: expected a small positive number (e.g. 1e-5)", self.rms_norm_eps));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Some(format!("rope_theta {}: expected a positive number (e.g. 10000)", self.rope_theta));
        }
        let factor = match &self.rope_scaling {
            RopeScaling::Linear { factor } | RopeScaling::Llama3 { factor, .. } | RopeScaling::Yarn { factor, .. } => {
                Some(*factor)
            }
            _ => None,
        };
        if let Some(f) = factor.filter(|f| !(f.is_finite() && *f > 0.0)) {
            return Some(format!("rope scaling factor {f}: expected a positive number"));
        }
        if self.num_heads == 0 || self.num_kv_heads == 0 || !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Some(format!(
                "{} attention heads and {} key/value heads: the key/value heads must divide the heads",
                self.num_heads, self.num_kv_heads
            ));
        }
        None
    }

    /// Whether decoder layer `i` has a sparse MoE block (Qwen-MoE may interleave dense layers).
    pub fn is_sparse_layer(&self, i: usize) -> bool {
        match (&self.moe, self.family) {
            (None, _) => false,
            (Some(m), Family::Qwen2Moe | Family::Qwen3Moe) => {
                !m.mlp_only_layers.contains(&i)
                    && m.num_experts > 0
                    && m.decoder_sparse_step > 0
                    && (i + 1).is_multiple_of(m.decoder_sparse_step)
            }
            (Some(_), _) => true,
        }
    }

    /// Reads the keys in a fixed order, so a config with several bad keys always reports the same one.
    pub fn parse(config: &Value) -> Result<Self, ConfigError> {
        let family = detect_family(config)?;
        let r = Reader(config);
        let architecture =
            r.architectures().first().cloned().unwrap_or_else(|| format!("{}ForCausalLM", family.prefix()));
        let d = FamilyDefaults::of(family);
        let vocab_size = r.usize_or("vocab_size", d.vocab_size)?;
        let hidden_size = r.usize_or("hidden_size", d.hidden_size)?;
        let intermediate_size = r.usize_or("intermediate_size", d.intermediate_size)?;
        let num_layers = r.usize_or("num_hidden_layers", d.num_layers)?;
        let heads = Heads::read(&r, family, hidden_size, &d)?;
        let rms_norm_eps = r.f64_or("rms_norm_eps", d.rms_norm_eps)?;
        let (rope_theta, max_position_embeddings, rope_scaling) = read_rope(&r, family)?;
        let tie_word_embeddings = r.bool_or("tie_word_embeddings", family.is_minimind())?;
        let (attention_bias, o_proj_bias, mlp_bias) = read_biases(&r, family)?;
        let hidden_act = r.str_or("hidden_act", "silu")?;
        let tokens = read_token_ids(&r, family)?;
        let dtype = r.0.get("dtype").or_else(|| r.0.get("torch_dtype")).and_then(Value::as_str).map(str::to_string);
        let qk_norm = matches!(family, Family::Qwen3 | Family::Qwen3Moe | Family::Olmoe | Family::MiniMind);
        let clip_qkv = if family == Family::Olmoe { r.opt_f64("clip_qkv")? } else { None };
        let moe = read_moe(&r, family, intermediate_size)?;
        Ok(Self {
            family,
            architecture,
            vocab_size,
            hidden_size,
            intermediate_size,
            num_layers,
            num_heads: heads.num_heads,
            num_kv_heads: heads.num_kv_heads,
            head_dim: heads.head_dim,
            rms_norm_eps,
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            tie_word_embeddings,
            attention_bias,
            o_proj_bias,
            mlp_bias,
            hidden_act,
            pad_token_id: tokens.pad,
            bos_token_id: tokens.bos,
            eos_token_ids: tokens.eos,
            dtype,
            qk_norm,
            clip_qkv,
            moe,
            rope_interleaved: family == Family::MiniMindLm,
        })
    }
}

/// What each family's transformers 4.57 config class assumes for a key the file leaves out.
struct FamilyDefaults {
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_layers: usize,
    num_heads: usize,
    rms_norm_eps: f64,
    /// None: as many KV heads as query heads (no grouped-query attention).
    num_kv_heads: Option<usize>,
}

impl FamilyDefaults {
    fn of(family: Family) -> Self {
        use Family::*;
        let (vocab_size, hidden_size, intermediate_size, num_layers, num_heads, rms_norm_eps, num_kv_heads) =
            match family {
                Llama => (32000, 4096, 11008, 32, 32, 1e-6, None),
                Mistral => (32000, 4096, 14336, 32, 32, 1e-6, Some(8)),
                Qwen2 => (151936, 4096, 22016, 32, 32, 1e-6, Some(32)),
                Qwen3 => (151936, 4096, 22016, 32, 32, 1e-6, Some(32)),
                Mixtral => (32000, 4096, 14336, 32, 32, 1e-5, Some(8)),
                Qwen2Moe => (151936, 2048, 5632, 24, 16, 1e-6, Some(16)),
                Qwen3Moe => (151936, 2048, 6144, 24, 32, 1e-6, Some(4)),
                Olmoe => (50304, 2048, 2048, 16, 16, 1e-5, None),
                // MiniMindConfig: intermediate = ceil(768·π / 64)·64.
                MiniMind => (6400, 768, 2432, 8, 8, 1e-6, Some(4)),
                // LMConfig (the .pth reader writes every key, these are never used).
                MiniMindLm => (6400, 512, 1408, 8, 8, 1e-5, Some(2)),
            };
        Self { vocab_size, hidden_size, intermediate_size, num_layers, num_heads, rms_norm_eps, num_kv_heads }
    }
}

/// The attention head layout, checked here so the engine can split tensors without asking again.
struct Heads {
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
}

impl Heads {
    fn read(r: &Reader<'_>, family: Family, hidden_size: usize, d: &FamilyDefaults) -> Result<Self, ConfigError> {
        let num_heads = r.usize_or("num_attention_heads", d.num_heads)?;
        if num_heads == 0 {
            return Err(ConfigError::new("num_attention_heads", "must be at least 1"));
        }
        let num_kv_heads = match r.opt_usize("num_key_value_heads")? {
            Some(k) => k,
            None => d.num_kv_heads.unwrap_or(num_heads),
        };
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(ConfigError::new(
                "num_key_value_heads",
                &format!("{num_kv_heads} must divide num_attention_heads ({num_heads})"),
            ));
        }
        let default_head_dim = match family {
            Family::Qwen3 => 128,
            _ => hidden_size / num_heads,
        };
        // OLMoE's attention always splits hidden_size evenly and ignores a `head_dim` key.
        let head_dim = match family {
            Family::Olmoe => hidden_size / num_heads,
            _ => r.opt_usize("head_dim")?.unwrap_or(default_head_dim),
        };
        Ok(Self { num_heads, num_kv_heads, head_dim })
    }
}

/// (rope_theta, max_position_embeddings, rope_scaling): the scaling needs the context length.
fn read_rope(r: &Reader<'_>, family: Family) -> Result<(f64, usize, RopeScaling), ConfigError> {
    use Family::*;
    let rope_theta = match r.0.get("rope_parameters").and_then(|p| p.get("rope_theta")) {
        Some(v) => v.as_f64().ok_or_else(|| ConfigError::new("rope_parameters.rope_theta", "expected a number"))?,
        None => r.f64_or("rope_theta", if family.is_minimind() { 1e6 } else { 10000.0 })?,
    };
    let max_position_embeddings = r.usize_or(
        "max_position_embeddings",
        match family {
            Llama => 2048,
            Olmoe => 4096,
            Mistral | Mixtral => 4096 * 32,
            _ => 32768,
        },
    )?;
    let rope_scaling = RopeScaling::read(r, max_position_embeddings)?;
    Ok((rope_theta, max_position_embeddings, rope_scaling))
}

/// (attention_bias, o_proj_bias, mlp_bias): which families let the config choose, and which fix them.
fn read_biases(r: &Reader<'_>, family: Family) -> Result<(bool, bool, bool), ConfigError> {
    use Family::*;
    let (attention_bias, o_proj_bias) = match family {
        Llama | Qwen3 | Qwen3Moe | Olmoe => {
            let b = r.bool_or("attention_bias", false)?;
            (b, b)
        }
        Mistral | Mixtral | MiniMind | MiniMindLm => (false, false),
        Qwen2 => (true, false),
        Qwen2Moe => (r.bool_or("qkv_bias", true)?, false),
    };
    let mlp_bias = match family {
        Llama => r.bool_or("mlp_bias", false)?,
        _ => false,
    };
    Ok((attention_bias, o_proj_bias, mlp_bias))
}

/// The special token ids. `eos_token_id` may be one id or a list; OLMoE's class defaults pad to 1.
struct TokenIds {
    pad: Option<i64>,
    bos: Option<i64>,
    eos: Vec<i64>,
}

fn read_token_ids(r: &Reader<'_>, family: Family) -> Result<TokenIds, ConfigError> {
    let pad_token_id =
        r.opt_i64("pad_token_id")?.or(if family == Family::Olmoe && !r.has("pad_token_id") { Some(1) } else { None });
    let bos_token_id = r.opt_i64("bos_token_id")?;
    let eos_token_ids = match r.0.get("eos_token_id") {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_i64).collect(),
        Some(v) => v.as_i64().into_iter().collect(),
        None => Vec::new(),
    };
    Ok(TokenIds { pad: pad_token_id, bos: bos_token_id, eos: eos_token_ids })
}

/// The MoE block of the sparse families (None for dense ones), with top-k checked against the
/// expert count: routing to more experts than exist cannot be run or drawn.
fn read_moe(r: &Reader<'_>, family: Family, intermediate_size: usize) -> Result<Option<MoeConfig>, ConfigError> {
    use Family::*;
    let moe = match family {
        Mixtral => Some(MoeConfig {
            num_experts: r.usize_or("num_local_experts", 8)?,
            top_k: r.usize_or("num_experts_per_tok", 2)?,
            expert_intermediate: intermediate_size,
            shared_expert_intermediate: None,
            shared_expert_gated: false,
            norm_topk_prob: true,
            decoder_sparse_step: 1,
            mlp_only_layers: Vec::new(),
        }),
        Qwen2Moe | Qwen3Moe => Some(MoeConfig {
            num_experts: r.usize_or("num_experts", if family == Qwen2Moe { 60 } else { 128 })?,
            top_k: r.usize_or("num_experts_per_tok", if family == Qwen2Moe { 4 } else { 8 })?,
            expert_intermediate: r.usize_or("moe_intermediate_size", if family == Qwen2Moe { 1408 } else { 768 })?,
            shared_expert_intermediate: if family == Qwen2Moe {
                Some(r.usize_or("shared_expert_intermediate_size", 5632)?)
            } else {
                None
            },
            shared_expert_gated: true,
            norm_topk_prob: r.bool_or("norm_topk_prob", false)?,
            decoder_sparse_step: r.usize_or("decoder_sparse_step", 1)?,
            mlp_only_layers: r.usize_list("mlp_only_layers")?,
        }),
        Olmoe => Some(MoeConfig {
            num_experts: r.usize_or("num_experts", 64)?,
            top_k: r.usize_or("num_experts_per_tok", 8)?,
            expert_intermediate: intermediate_size,
            shared_expert_intermediate: None,
            shared_expert_gated: false,
            norm_topk_prob: r.bool_or("norm_topk_prob", false)?,
            decoder_sparse_step: 1,
            mlp_only_layers: Vec::new(),
        }),
        // MiniMindConfig: `use_moe` switches every FeedForward to MOEFeedForward.
        MiniMind if r.bool_or("use_moe", false)? => Some(MoeConfig {
            num_experts: r.usize_or("num_experts", 4)?,
            top_k: r.usize_or("num_experts_per_tok", 1)?,
            expert_intermediate: r.usize_or("moe_intermediate_size", intermediate_size)?,
            shared_expert_intermediate: None,
            shared_expert_gated: false,
            norm_topk_prob: r.bool_or("norm_topk_prob", true)?,
            decoder_sparse_step: 1,
            mlp_only_layers: Vec::new(),
        }),
        // LMConfig (keys as `arch::minimind` writes them): MoEGate renormalises only when
        // top_k > 1, and `n_shared_experts` (a bool in LMConfig) adds one FeedForward.
        MiniMindLm if r.bool_or("use_moe", false)? => {
            let top_k = r.usize_or("num_experts_per_tok", 2)?;
            Some(MoeConfig {
                num_experts: r.usize_or("num_experts", 4)?,
                top_k,
                expert_intermediate: intermediate_size,
                shared_expert_intermediate: r.bool_or("shared_experts", true)?.then_some(intermediate_size),
                shared_expert_gated: false,
                norm_topk_prob: top_k > 1 && r.bool_or("norm_topk_prob", true)?,
                decoder_sparse_step: 1,
                mlp_only_layers: Vec::new(),
            })
        }
        _ => None,
    };
    if let Some(m) = &moe
        && (m.top_k == 0 || m.top_k > m.num_experts)
    {
        return Err(ConfigError::new(
            "num_experts_per_tok",
            &format!("{} must be between 1 and the number of experts ({})", m.top_k, m.num_experts),
        ));
    }
    Ok(moe)
}

/// Finds the family from `model_type`, falling back to `architectures`.
pub fn detect_family(config: &Value) -> Result<Family, ConfigError> {
    let model_type = config.get("model_type").and_then(Value::as_str);
    if let Some(f) = model_type.and_then(Family::from_model_type) {
        return Ok(f);
    }
    let archs = Reader(config).architectures();
    if let Some(f) = archs.iter().find_map(|a| Family::from_architecture(a)) {
        return Ok(f);
    }
    let named = model_type
        .map(|m| format!("model_type `{m}`"))
        .or_else(|| archs.first().map(|a| format!("architecture `{a}`")))
        .unwrap_or_else(|| "no model_type or architectures key".into());
    Err(ConfigError {
        key: "model_type".into(),
        what: format!(
            "{named} is not a supported family (supported: {})",
            Family::ALL.map(|f| f.model_type()).join(", ")
        ),
        unsupported: true,
    })
}

#[derive(Debug, Clone)]
pub struct ConfigError {
    pub key: String,
    pub what: String,
    /// The config is fine, the family is just not one this program models.
    pub unsupported: bool,
}

impl ConfigError {
    fn new(key: &str, what: &str) -> Self {
        Self { key: key.into(), what: what.into(), unsupported: false }
    }
}

impl std::error::Error for ConfigError {}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.unsupported { write!(f, "{}", self.what) } else { write!(f, "key `{}`: {}", self.key, self.what) }
    }
}

/// RoPE frequency scaling, as transformers' `modeling_rope_utils` computes it (4.57).
#[derive(Clone, Debug, PartialEq)]
pub enum RopeScaling {
    /// Plain RoPE. Also "dynamic" NTK scaling, which equals it until the sequence grows past
    /// `max_position_embeddings` (thousands of tokens).
    Default,
    /// Every frequency divided by `factor`.
    Linear { factor: f64 },
    /// Llama 3.1/3.2: long wavelengths divided by `factor`, short ones kept, a smooth blend
    /// between.
    Llama3 { factor: f64, low_freq_factor: f64, high_freq_factor: f64, original_max: f64 },
    /// YaRN (Qwen's long-context configs): a ramp from kept to divided frequencies across
    /// the dimensions, and cos/sin scaled by `attention_factor`.
    Yarn { factor: f64, attention_factor: f64, beta_fast: f64, beta_slow: f64, original_max: f64, truncate: bool },
    /// A type this program does not compute (e.g. "longrope"): the model opens, but does not run.
    Unsupported(String),
}

impl RopeScaling {
    /// Reads transformers-4 `rope_scaling` or transformers-5 `rope_parameters` (whose
    /// `rope_type` is "default" for plain RoPE). The type key was "type" in older configs.
    fn read(r: &Reader<'_>, max_position_embeddings: usize) -> Result<Self, ConfigError> {
        let (key, params) = match (r.get("rope_scaling"), r.get("rope_parameters")) {
            (Some(p), _) => ("rope_scaling", p),
            (None, Some(p)) => ("rope_parameters", p),
            (None, None) => return Ok(RopeScaling::Default),
        };
        let p = Reader(params);
        let kind = match (p.get("rope_type"), p.get("type")) {
            (Some(t), _) | (None, Some(t)) => {
                t.as_str().ok_or_else(|| ConfigError::new(&format!("{key}.rope_type"), "expected a string"))?
            }
            (None, None) => "default",
        };
        let number = |name: &str| -> Result<f64, ConfigError> {
            p.opt_f64(name)?.ok_or_else(|| ConfigError::new(&format!("{key}.{name}"), "missing"))
        };
        Ok(match kind {
            "default" | "dynamic" => RopeScaling::Default,
            "linear" => RopeScaling::Linear { factor: number("factor")? },
            "llama3" => RopeScaling::Llama3 {
                factor: number("factor")?,
                low_freq_factor: number("low_freq_factor")?,
                high_freq_factor: number("high_freq_factor")?,
                original_max: number("original_max_position_embeddings")?,
            },
            "yarn" => {
                let factor = number("factor")?;
                let mscale = |scale: f64, m: f64| if scale <= 1.0 { 1.0 } else { 0.1 * m * scale.ln() + 1.0 };
                let attention_factor =
                    match (p.opt_f64("attention_factor")?, p.opt_f64("mscale")?, p.opt_f64("mscale_all_dim")?) {
                        (Some(a), _, _) => a,
                        (None, Some(m), Some(all)) if m != 0.0 && all != 0.0 => mscale(factor, m) / mscale(factor, all),
                        _ => mscale(factor, 1.0),
                    };
                RopeScaling::Yarn {
                    factor,
                    attention_factor,
                    // `or`, as transformers does: a 0 or null means the default.
                    beta_fast: p.opt_f64("beta_fast")?.filter(|&b| b != 0.0).unwrap_or(32.0),
                    beta_slow: p.opt_f64("beta_slow")?.filter(|&b| b != 0.0).unwrap_or(1.0),
                    original_max: p
                        .opt_f64("original_max_position_embeddings")?
                        .filter(|&m| m != 0.0)
                        .unwrap_or(max_position_embeddings as f64),
                    truncate: p.bool_or("truncate", true)?,
                }
            }
            other => RopeScaling::Unsupported(other.to_string()),
        })
    }
}

/// Typed access to config keys, where `null` means "use the default" as in transformers.
struct Reader<'a>(&'a Value);

impl Reader<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    fn has(&self, key: &str) -> bool {
        self.0.get(key).is_some()
    }
    fn architectures(&self) -> Vec<String> {
        self.get("architectures")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
    fn opt_usize(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| ConfigError::new(key, &format!("expected a non-negative integer, found {v}"))),
        }
    }
    fn usize_or(&self, key: &str, default: usize) -> Result<usize, ConfigError> {
        Ok(self.opt_usize(key)?.unwrap_or(default))
    }
    fn opt_i64(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                v.as_i64().map(Some).ok_or_else(|| ConfigError::new(key, &format!("expected an integer, found {v}")))
            }
        }
    }
    fn opt_f64(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => {
                v.as_f64().map(Some).ok_or_else(|| ConfigError::new(key, &format!("expected a number, found {v}")))
            }
        }
    }
    fn f64_or(&self, key: &str, default: f64) -> Result<f64, ConfigError> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }
    fn bool_or(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| ConfigError::new(key, &format!("expected true or false, found {v}"))),
        }
    }
    fn str_or(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(key) {
            None => Ok(default.into()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| ConfigError::new(key, &format!("expected a string, found {v}"))),
        }
    }
    fn usize_list(&self, key: &str) -> Result<Vec<usize>, ConfigError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_u64().map(|n| n as usize))
                .collect::<Option<_>>()
                .ok_or_else(|| ConfigError::new(key, "expected a list of layer indices")),
            Some(v) => Err(ConfigError::new(key, &format!("expected a list, found {v}"))),
        }
    }
}
