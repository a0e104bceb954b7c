//! LoRA adapters: a PEFT folder (`adapter_config.json` + `adapter_model.safetensors`) or a
//! MiniMind-style `torch.save` state dict (`…q_proj.lora.A.weight`), checked against the
//! base model so a mismatch is reported before anything runs.
//!
//! A `.pth` is read with the project's own restricted unpickler ([`crate::checkpoint::pickle`]),
//! which executes no pickle code and refuses any global that is not a tensor or container.

use std::path::{Path, PathBuf};

use crate::arch::ModelFolder;
use crate::checkpoint::{CheckpointError, Shard};

#[derive(Clone, Debug)]
pub struct LoraModule {
    /// The base module it adapts, e.g. `model.layers.0.self_attn.q_proj`.
    pub module: String,
    /// A: [r, in], row-major.
    pub a: Vec<f32>,
    /// B: [out, r], row-major.
    pub b: Vec<f32>,
    pub rank: usize,
    pub in_features: usize,
    pub out_features: usize,
}

#[derive(Clone, Debug)]
pub struct LoraAdapter {
    pub source: PathBuf,
    pub rank: usize,
    pub alpha: f64,
    /// α / r, or α / √r with rsLoRA: what ΔW = scaling · B·A uses.
    pub scaling: f64,
    pub use_rslora: bool,
    pub target_modules: Vec<String>,
    pub dropout: f64,
    pub base_model_name: Option<String>,
    pub modules: Vec<LoraModule>,
    /// PEFT's format (tree shows `lora.Linear`) or MiniMind's hand-written one.
    pub peft: bool,
}

impl LoraAdapter {
    pub fn trainable_params(&self) -> u64 {
        self.modules.iter().map(|m| (m.a.len() + m.b.len()) as u64).sum()
    }

    pub fn module(&self, name: &str) -> Option<&LoraModule> {
        self.modules.iter().find(|m| m.module == name)
    }

    /// Opens a PEFT folder or a `.pth` file and checks it against `base`.
    /// `alpha` overrides the adapter's α (MiniMind files store none: α = r by default).
    pub fn open(path: &Path, base: &ModelFolder, alpha: Option<f64>) -> Result<Self, String> {
        let adapter = if path.is_dir() {
            Self::open_peft(path)?
        } else if path.extension().is_some_and(|e| e == "pth" || e == "pt" || e == "bin") {
            Self::open_pth(path, alpha)?
        } else {
            return Err(format!(
                "{}: expected a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) or a .pth state dict",
                path.display()
            ));
        };
        let adapter = match alpha {
            Some(a) if adapter.peft => {
                Self { alpha: a, scaling: scaling(a, adapter.rank, adapter.use_rslora), ..adapter }
            }
            _ => adapter,
        };
        adapter.check_against(base)?;
        Ok(adapter)
    }

    fn open_peft(dir: &Path) -> Result<Self, String> {
        let cfg_path = dir.join("adapter_config.json");
        let text =
            crate::checkpoint::side_file::read_text(&cfg_path).map_err(|e| format!("{}: {e}", cfg_path.display()))?;
        let cfg: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", cfg_path.display()))?;
        let bad = |what: String| format!("{}: {what}", cfg_path.display());
        let peft_type = cfg.get("peft_type").and_then(|v| v.as_str()).unwrap_or("LORA");
        if peft_type != "LORA" {
            return Err(bad(format!("peft_type is {peft_type}; only LORA adapters are supported")));
        }
        if cfg.get("use_dora").and_then(|v| v.as_bool()).unwrap_or(false) {
            return Err(bad("use_dora is true: DoRA adapters are not supported".into()));
        }
        let rank =
            cfg.get("r").and_then(|v| v.as_u64()).ok_or_else(|| bad("no integer `r` (the LoRA rank)".into()))? as usize;
        let alpha =
            cfg.get("lora_alpha").and_then(|v| v.as_f64()).ok_or_else(|| bad("no number `lora_alpha`".into()))?;
        let use_rslora = cfg.get("use_rslora").and_then(|v| v.as_bool()).unwrap_or(false);
        // fan_in_fan_out only says the *base* weight is stored [in, out] (GPT-2's Conv1D);
        // lora_A / lora_B are Linear weights either way. No supported family stores it so.
        if cfg.get("fan_in_fan_out").and_then(|v| v.as_bool()).unwrap_or(false) {
            return Err(bad(
                "fan_in_fan_out is true: that is for Conv1D-style base weights, which no supported family has".into(),
            ));
        }
        if cfg.get("bias").and_then(|v| v.as_str()).is_some_and(|b| b != "none") {
            return Err(bad("bias is not \"none\": adapters that train biases are not supported".into()));
        }
        let target_modules = match cfg.get("target_modules") {
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let weights = dir.join("adapter_model.safetensors");
        if !weights.is_file() {
            return Err(format!("{}: no adapter_model.safetensors beside adapter_config.json", dir.display()));
        }
        let shard = Shard::open(&weights, 0).map_err(|e: CheckpointError| e.to_string())?;
        let mut pairs: std::collections::BTreeMap<String, Pair> = Default::default();
        for t in &shard.tensors {
            let values: Vec<f32> = t.dtype.decode_all_f32(shard.bytes(t));
            let name = t.name.strip_prefix("base_model.model.").unwrap_or(&t.name);
            let (module, which) = if let Some(m) = name.strip_suffix(".lora_A.weight") {
                (m, 'A')
            } else if let Some(m) = name.strip_suffix(".lora_B.weight") {
                (m, 'B')
            } else {
                return Err(format!(
                    "{}: tensor `{}` is not a lora_A/lora_B weight (embedding or DoRA adapters are not supported)",
                    weights.display(),
                    t.name
                ));
            };
            let entry = pairs.entry(module.to_string()).or_default();
            let v = (t.shape.clone(), values);
            if which == 'A' { entry.0 = Some(v) } else { entry.1 = Some(v) }
        }
        let modules = pairs_to_modules(pairs, &weights)?;
        if let Some(m) = modules.iter().find(|m| m.rank != rank) {
            return Err(format!(
                "{}: `{}` has rank {} but adapter_config.json says r = {rank}",
                weights.display(),
                m.module,
                m.rank
            ));
        }
        Ok(Self {
            source: dir.to_path_buf(),
            rank,
            alpha,
            scaling: scaling(alpha, rank, use_rslora),
            use_rslora,
            target_modules,
            dropout: cfg.get("lora_dropout").and_then(|v| v.as_f64()).unwrap_or(0.0),
            base_model_name: cfg.get("base_model_name_or_path").and_then(|v| v.as_str()).map(str::to_string),
            modules,
            peft: true,
        })
    }

    fn open_pth(path: &Path, alpha: Option<f64>) -> Result<Self, String> {
        let pth = crate::checkpoint::pickle::open(path).map_err(|e| e.to_string())?;
        let mut pairs: std::collections::BTreeMap<String, Pair> = Default::default();
        for t in &pth.tensors {
            let name = t.name.clone();
            let (module, which) = if let Some(m) = name.strip_suffix(".lora.A.weight") {
                (m.to_string(), 'A')
            } else if let Some(m) = name.strip_suffix(".lora.B.weight") {
                (m.to_string(), 'B')
            } else {
                return Err(format!(
                    "{}: key `{name}` is not `<module>.lora.A.weight` or `<module>.lora.B.weight`",
                    path.display()
                ));
            };
            if !t.dtype.is_float() {
                return Err(format!("{}: `{name}` is {}, not a float tensor", path.display(), t.dtype));
            }
            let shape = t.shape.clone();
            let values = t.dtype.decode_all_f32(pth.bytes(t));
            let entry = pairs.entry(module).or_default();
            if which == 'A' { entry.0 = Some((shape, values)) } else { entry.1 = Some((shape, values)) }
        }
        let modules = pairs_to_modules(pairs, path)?;
        let rank =
            modules.first().map(|m| m.rank).ok_or_else(|| format!("{}: holds no LoRA weights", path.display()))?;
        if let Some(m) = modules.iter().find(|m| m.rank != rank) {
            return Err(format!("{}: `{}` has rank {} but others have {rank}", path.display(), m.module, m.rank));
        }
        let alpha = alpha.unwrap_or(rank as f64);
        let mut targets: Vec<String> =
            modules.iter().filter_map(|m| m.module.rsplit('.').next().map(str::to_string)).collect();
        targets.sort();
        targets.dedup();
        Ok(Self {
            source: path.to_path_buf(),
            rank,
            alpha,
            scaling: alpha / rank as f64,
            use_rslora: false,
            target_modules: targets,
            dropout: 0.0,
            base_model_name: None,
            modules,
            peft: false,
        })
    }

    /// Every adapted module must be a Linear of the base with matching shapes.
    fn check_against(&self, base: &ModelFolder) -> Result<(), String> {
        for m in &self.modules {
            let Some(id) = base.tree.find(&m.module) else {
                return Err(format!(
                    "{}: adapts `{}`, which this model does not have",
                    self.source.display(),
                    m.module
                ));
            };
            let node = &base.tree.nodes[id];
            let Some(w) = node.params.iter().find(|p| p.local == "weight") else {
                return Err(format!(
                    "{}: `{}` is a {}, not a Linear layer",
                    self.source.display(),
                    m.module,
                    node.class_name
                ));
            };
            if w.shape != [m.out_features, m.in_features] {
                return Err(format!(
                    "{}: `{}` has B·A of shape [{}, {}] but the base weight is {:?}",
                    self.source.display(),
                    m.module,
                    m.out_features,
                    m.in_features,
                    w.shape
                ));
            }
        }
        if let (Some(name), Some(cfg)) = (&self.base_model_name, &base.config) {
            let _ = (name, cfg); // Names are paths or Hub ids; shapes decide compatibility.
        }
        Ok(())
    }
}

pub fn scaling(alpha: f64, rank: usize, rslora: bool) -> f64 {
    if rslora { alpha / (rank as f64).sqrt() } else { alpha / rank as f64 }
}

/// A module's A and B matrices as (shape, values), while a file is being read.
type Pair = (Option<(Vec<usize>, Vec<f32>)>, Option<(Vec<usize>, Vec<f32>)>);

fn pairs_to_modules(pairs: std::collections::BTreeMap<String, Pair>, file: &Path) -> Result<Vec<LoraModule>, String> {
    let mut out = Vec::new();
    for (module, (a, b)) in pairs {
        let (Some((sa, a)), Some((sb, b))) = (a, b) else {
            return Err(format!("{}: `{module}` has only one of its A and B matrices", file.display()));
        };
        let ([r_a, in_f], [out_f, r_b]) = (sa.as_slice(), sb.as_slice()) else {
            return Err(format!("{}: `{module}`: A {sa:?} and B {sb:?} must both be 2-D", file.display()));
        };
        if r_a != r_b {
            return Err(format!(
                "{}: `{module}`: A is {sa:?} and B is {sb:?}: their ranks ({r_a} vs {r_b}) differ",
                file.display()
            ));
        }
        out.push(LoraModule { module, a, b, rank: *r_a, in_features: *in_f, out_features: *out_f });
    }
    Ok(out)
}
