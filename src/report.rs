//! The JSON (and CSV) shapes that leave the program, one function per shape.
//!
//! The CLI's `--json` output and the desktop Export menu both call these functions, so a file
//! exported from the window has the same keys and the same numbers as `llm-anatomy … --json`.
//! The JSON keys are a contract scripts and handouts rely on (see README and tests/cli.rs):
//! change a key here and you change it for both. Everything here is pure and egui-free.

use serde_json::{Map, Value, json};

use crate::analysis::cast::{CastReport, CastTarget};
use crate::analysis::floatbits::{self, Breakdown};
use crate::analysis::lowrank::DeltaSummary;
use crate::analysis::routing::LayerRouting;
use crate::analysis::stats::{Histogram, TensorStats};
use crate::arch::MoeConfig;
use crate::checkpoint::Checkpoint;
use crate::checkpoint::gguf::{GgufFile, Value as GgufValue};
use crate::checkpoint::quant_blocks::{Block, Field};
use crate::engine::Piece;
use crate::lora::LoraAdapter;
use crate::sampling::Distribution;

/// How many singular values `lora` reports per module: enough to see the rank, short enough to read.
pub const LORA_SINGULAR_VALUES: usize = 8;

/// `tensors --json`: one row per stored tensor, in the checkpoint's (name-sorted) order.
/// A tensor list exported from the window should come from here too, so it matches the CLI.
pub fn tensors_json(ckpt: &Checkpoint) -> Value {
    let rows: Vec<Value> = ckpt
        .tensors
        .iter()
        .map(|t| {
            let mut row = json!({
                "name": t.name,
                "dtype": t.dtype.as_str(),
                "shape": t.shape,
                "bytes": t.byte_len(),
                "file": ckpt.shard_name(t),
            });
            // GGUF tensors only: the GGML type as ggml names it, and its storage cost.
            if let Some(e) = ckpt.gguf_entry(&t.name) {
                row["ggml_type"] = json!(e.ggml_type.to_string());
                row["bits_per_weight"] = json!(e.ggml_type.bits_per_weight());
            }
            row
        })
        .collect();
    Value::Array(rows)
}

/// `stats --json`, and the histogram's JSON export in the window (same function, same numbers).
///
/// Takes plain strings rather than a `TensorInfo` so a module aggregate fits too: the window
/// passes the module path as `name`, its common dtype (or `"mixed"`), and an empty shape.
pub fn stats_json(name: &str, dtype: &str, shape: &[usize], stats: &TensorStats) -> Value {
    json!({
        "name": name,
        "dtype": dtype,
        "shape": shape,
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
    })
}

/// Where a `bits` value was read from, when it came from a stored tensor rather than typed in.
#[derive(Clone, Copy, Debug)]
pub struct BitsOrigin<'a> {
    pub tensor: &'a str,
    /// The stored dtype as `Dtype::as_str` spells it (`"BF16"`).
    pub stored_dtype: &'a str,
    /// Flat (row-major) element index.
    pub index: usize,
}

/// `bits --json`: the input, its origin if any, then one object per format keyed by
/// `Format::key` (see [`decoded_json`]). The bits panel's JSON export is to call this too.
/// The input is `b.input`: the breakdown already carries it, so the two cannot disagree.
pub fn bits_json(b: &Breakdown, origin: Option<BitsOrigin<'_>>) -> Value {
    let mut obj = Map::new();
    obj.insert("input".into(), finite_or_null(b.input));
    if let Some(o) = origin {
        obj.insert("tensor".into(), json!(o.tensor));
        obj.insert("stored_dtype".into(), json!(o.stored_dtype));
        obj.insert("index".into(), json!(o.index));
    }
    for d in &b.formats {
        obj.insert(d.format.key().into(), decoded_json(d));
    }
    Value::Object(obj)
}

/// The per-format object of `bits --json`.
pub fn decoded_json(d: &floatbits::Decoded) -> Value {
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

/// JSON has no NaN or ∞: NaN becomes `null`, ±∞ the strings JavaScript's `Number()` reads back.
pub fn finite_or_null(x: f64) -> Value {
    if x.is_nan() {
        Value::Null
    } else if x.is_infinite() {
        json!(if x > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        json!(x)
    }
}

/// `cast --json`, and the cast report's JSON export in the window. `dtype` is the stored dtype
/// (`Dtype::as_str`); the target format is the report's own `to`.
pub fn cast_json(name: &str, dtype: &str, r: &CastReport) -> Value {
    json!({
        "name": name,
        "dtype": dtype,
        "to": r.to.key(),
        "bits_per_weight": r.to.bits_per_weight(),
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
    })
}

/// `compare --json`: `{"prompt", "prompt_ids", "a": {"precision", "greedy_ids",
/// "greedy_text", "pieces"}, "b": {…}, "steps": [{"token", "top1_b", "kl", "p_a", "p_b"}],
/// "top1_b_pieces": [B's top token's text per step], "summary": {"mean_kl", "max_kl",
/// "top1_agreement", "first_divergence"}}`. Step i: both models have read the prompt and
/// A's first i greedy tokens; KL(A‖B) is in nats.
pub fn precision_json(r: &crate::engine::precision::PrecisionReport) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

/// `probs --json`. `top` are the listed candidates' pieces, in `d.order` order (the caller
/// decides how many); their numbers are looked up in `d` by id, so a caller cannot pair a
/// token with another token's probability.
pub fn probs_json(input_ids: &[u32], d: &Distribution, top: &[Piece]) -> Value {
    let candidates: Vec<Value> = top
        .iter()
        .map(|p| {
            let i = p.id as usize;
            json!({
                "id": p.id, "token": p.token, "text": p.text,
                "prob": d.probs[i], "raw_prob": d.raw_probs[i], "logit": d.logits[i],
            })
        })
        .collect();
    json!({
        "input_ids": input_ids,
        "candidates": candidates,
        "entropy_bits": d.entropy_bits,
        "kept": d.kept,
    })
}

/// `generate --json`: the prompt's ids, the generated ids, and the generated text alone.
pub fn generate_json(input_ids: &[u32], new_ids: &[u32], text: &str) -> Value {
    json!({"input_ids": input_ids, "new_ids": new_ids, "text": text})
}

/// `routing --json`: the prompt's tokens, the MoE shape, and each MoE layer's routing.
/// A routing export from the window should call this, not build its own shape.
pub fn routing_json(pieces: &[Piece], moe: &MoeConfig, layers: &[LayerRouting]) -> Value {
    json!({
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
    })
}

/// `lora --json`: the adapter's settings and, per module, ‖W‖, ‖ΔW‖, their ratio and the
/// leading singular values. A LoRA export from the window should call this, not build its own.
pub fn lora_json(adapter: &LoraAdapter, summaries: &[DeltaSummary]) -> Value {
    json!({
        "rank": adapter.rank,
        "alpha": adapter.alpha,
        "scaling": adapter.scaling,
        "use_rslora": adapter.use_rslora,
        "target_modules": adapter.target_modules,
        "trainable_params": adapter.trainable_params(),
        "modules": summaries.iter().map(|s| json!({
            "name": s.module, "w_norm": s.w_norm, "delta_norm": s.delta_norm, "ratio": s.ratio,
            "singular_values": leading_singular_values(&s.singular_values),
        })).collect::<Vec<_>>(),
    })
}

/// Exactly [`LORA_SINGULAR_VALUES`] values, zero-padded: ranks below 8 still give a fixed-width
/// row, and the padding zeros are true (ΔW has at most r non-zero singular values).
pub fn leading_singular_values(sv: &[f64]) -> Vec<f64> {
    (0..LORA_SINGULAR_VALUES).map(|i| sv.get(i).copied().unwrap_or(0.0)).collect()
}

// ---- CSV: the numbers behind each plot, for a spreadsheet (full precision, `{}` formatting).

/// One row per histogram bin: `bin_start,bin_end,count`.
pub fn histogram_csv(h: &Histogram) -> String {
    let mut csv = String::from("bin_start,bin_end,count\n");
    push_bins(&mut csv, None, h);
    csv
}

/// Several histograms in one table, `series,bin_start,bin_end,count` (e.g. W and W + ΔW).
pub fn histograms_csv(series: &[(&str, &Histogram)]) -> String {
    let mut csv = String::from("series,bin_start,bin_end,count\n");
    for (name, h) in series {
        push_bins(&mut csv, Some(name), h);
    }
    csv
}

fn push_bins(csv: &mut String, series: Option<&str>, h: &Histogram) {
    let e = &h.edges;
    for (i, c) in h.counts.iter().enumerate() {
        if let Some(name) = series {
            csv.push_str(name);
            csv.push(',');
        }
        csv.push_str(&format!("{},{},{c}\n", e[i], e[i + 1]));
    }
}

/// `index,singular_value`, 1-based as the plot labels them.
pub fn singular_values_csv(sv: &[f64]) -> String {
    let mut csv = String::from("index,singular_value\n");
    for (i, v) in sv.iter().enumerate() {
        csv.push_str(&format!("{},{v}\n", i + 1));
    }
    csv
}

/// `child,parameters`: where a module's parameters live.
pub fn children_csv(names: &[String], counts: &[u64]) -> String {
    let mut csv = String::from("child,parameters\n");
    for (name, n) in names.iter().zip(counts) {
        csv.push_str(&format!("{name},{n}\n"));
    }
    csv
}

/// The cast report's relative-error histogram: `log10_rel_error_start,log10_rel_error_end,count`.
pub fn rel_error_csv(r: &CastReport) -> String {
    let edges = &r.rel_error_log10_edges;
    let mut csv = String::from("log10_rel_error_start,log10_rel_error_end,count\n");
    for (i, c) in r.rel_error_log10_counts.iter().enumerate() {
        csv.push_str(&format!("{},{},{c}\n", edges[i], edges[i + 1]));
    }
    csv
}

/// Where an f32 exponent lands in a target format. The exponent plot colours its bars by this
/// and the CSV names it, so the two cannot disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExponentRange {
    Normal,
    Subnormal,
    Overflow,
    Underflow,
}

impl ExponentRange {
    /// A block format has no range of its own per value: its scale follows the block's
    /// largest value, so every exponent counts as normal there.
    pub fn of(to: CastTarget, e: i32) -> Self {
        let CastTarget::Float(f) = to else { return Self::Normal };
        let max_normal = f.bias().max(if f.has_inf() { f.bias() } else { (1 << f.exponent_bits()) - 1 - f.bias() });
        let sub_low = f.emin() - f.mantissa_bits() as i32;
        if e >= f.emin() && e <= max_normal {
            Self::Normal
        } else if e >= sub_low && e < f.emin() {
            Self::Subnormal
        } else if e > max_normal {
            Self::Overflow
        } else {
            Self::Underflow
        }
    }

    /// The CSV's English name (not translated: scripts read it).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Subnormal => "subnormal",
            Self::Overflow => "overflow",
            Self::Underflow => "underflow",
        }
    }
}

/// The cast report's exponent histogram: `exponent,count,range` with the range in `r.to`.
pub fn exponents_csv(r: &CastReport) -> String {
    let mut csv = String::from("exponent,count,range\n");
    for &(e, c) in &r.exponent_counts {
        csv.push_str(&format!("{e},{c},{}\n", ExponentRange::of(r.to, e).as_str()));
    }
    csv
}

/// How many leading elements `metadata --json` shows of an array (token lists run to 150k).
pub const METADATA_ARRAY_HEAD: usize = 8;

/// `metadata --json`: the GGUF header and every key/value in file order. Arrays are
/// summarised as their element type, length and first items; strings (the chat template
/// included) are given whole.
pub fn metadata_json(file: &GgufFile) -> Value {
    let metadata: Map<String, Value> = file
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), json!({"type": v.type_name(), "value": gguf_value_json(v)})))
        .collect();
    json!({
        "file": file.file_name,
        "version": file.version,
        "alignment": file.alignment,
        "data_start": file.data_start,
        "tensor_count": file.tensors.len(),
        "metadata": metadata,
    })
}

fn gguf_value_json(v: &GgufValue) -> Value {
    match v {
        GgufValue::Array(a) => json!({
            "element_type": crate::checkpoint::gguf::type_name(a.element_type),
            "length": a.values.len(),
            "first": a.values.iter().take(METADATA_ARRAY_HEAD).map(gguf_value_json).collect::<Vec<_>>(),
        }),
        GgufValue::String(s) => json!(s),
        GgufValue::Bool(b) => json!(b),
        GgufValue::F32(x) => json!(*x as f64),
        GgufValue::F64(x) => json!(x),
        GgufValue::I64(x) => json!(x),
        GgufValue::U64(x) => json!(x),
        // Integers stay integers (i64 covers every signed width, u64 every unsigned one).
        other => other.as_u64().map(|n| json!(n)).unwrap_or_else(|| json!(other.as_f64().map(|x| x as i64))),
    }
}

/// `blocks --json`: one quantization block's raw fields, codes and decoded weights. `place`
/// is where the block's weights sit in the tensor as shown (Hugging Face row, first column).
pub fn block_json(tensor: &str, block: &Block, place: (usize, usize)) -> Value {
    let fields: Map<String, Value> = block
        .fields
        .iter()
        .map(|(name, f)| {
            let v = match f {
                Field::Half { value, bits } => json!({"f16": *value as f64, "bits": format!("{bits:016b}")}),
                Field::Ints(v) => json!(v),
                Field::Bits(b) => json!(format!("{b:032b}")),
            };
            (name.to_string(), v)
        })
        .collect();
    json!({
        "tensor": tensor,
        "ggml_type": block.ggml_type.to_string(),
        "block": block.index,
        "row": place.0,
        "first_column": place.1,
        "formula": block.formula,
        "fields": fields,
        "codes": block.codes,
        "values": block.values.iter().map(|&v| v as f64).collect::<Vec<_>>(),
    })
}

/// `sweep --json`: `{"roles": {ROLE: [{layer, tensor, mean, std, abs_max, kurtosis, outlier_frac}, …]}}`.
/// The Compare panel's export uses the same function.
pub fn sweep_json(roles: &std::collections::BTreeMap<String, Vec<crate::analysis::compare::LayerFigure>>) -> Value {
    json!({ "roles": roles })
}

/// `diff --json`: `{"only_in_a", "only_in_b", "shape_mismatch", "tensors": [{tensor, fro_diff, fro_a, rel,
/// max_abs_diff, changed, numel}, …]}` in name order. The Compare panel's export uses it too.
pub fn diff_json(d: &crate::analysis::compare::Diff) -> Value {
    json!({
        "only_in_a": d.only_in_a,
        "only_in_b": d.only_in_b,
        "shape_mismatch": d.shape_mismatch.iter().map(|(t, a, b)| json!({"tensor": t, "shape_a": a, "shape_b": b})).collect::<Vec<_>>(),
        "tensors": d.tensors,
    })
}

/// `attention --json`: `{"input_ids", "layers": [{"layer", "heads": [[[w_ij …] …] …]}]}`, full
/// T × T matrices per head (rows are queries, zeros above the diagonal), all layers and heads
/// unless narrowed. The Attention panel's export uses it too.
pub fn attention_json(
    input_ids: &[u32],
    internals: &crate::engine::internals::Internals,
    layer: Option<usize>,
    head: Option<usize>,
) -> Value {
    let t = internals.len();
    let layers = internals.attention.first().map(|l| l.len()).unwrap_or(0);
    let heads: Vec<usize> = match head {
        Some(h) => vec![h],
        None => (0..internals.heads).collect(),
    };
    let matrix = |l: usize, h: usize| -> Vec<Vec<f32>> {
        internals
            .head_rows(l, h)
            .iter()
            .map(|row| {
                let mut full = row.to_vec();
                full.resize(t, 0.0);
                full
            })
            .collect()
    };
    json!({
        "input_ids": input_ids,
        "layers": (0..layers).filter(|l| layer.is_none_or(|x| x == *l)).map(|l| json!({
            "layer": l,
            "heads": heads.iter().map(|&h| matrix(l, h)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// `lens --json`: `{"input_ids", "layers": [{"layer": "embed" | 0 | 1 | …, "top": [{"id", "token",
/// "prob"}, …]}], "residual_norm": [[per token] per layer]}`, the lens at `lens.position`.
pub fn lens_json(
    input_ids: &[u32],
    lens: &crate::engine::internals::Lens,
    residual_norm: &[Vec<f32>],
    top: usize,
    piece: &dyn Fn(u32) -> Piece,
) -> Value {
    json!({
        "input_ids": input_ids,
        "layers": lens.probs.iter().enumerate().map(|(i, p)| json!({
            "layer": if i == 0 { json!("embed") } else { json!(i - 1) },
            "top": crate::analysis::attention::top_k(p, top).into_iter().map(|(id, prob)| {
                let piece = piece(id);
                json!({"id": id, "token": piece.token, "prob": prob})
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "residual_norm": residual_norm,
    })
}
