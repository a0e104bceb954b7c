//! Across layers and across checkpoints: the figures that answer "which layer is odd?" and
//! "what did fine-tuning (or a conversion) change?".
//!
//! A *role* is a tensor name with its layer index abstracted (`model.layers.{L}.mlp.down_proj.weight`).
//! A sweep computes, per layer of a role, mean, std (ddof 0), largest |x|, excess kurtosis
//! (m4/m2² − 3) and the share of outliers (|x − mean| > 6·std), in f64 over the stored values.
//! A diff compares every tensor present in both checkpoints with the same shape. Both read the
//! memory-mapped bytes in chunks, so memory stays flat whatever the model's size.

use std::collections::BTreeMap;

use rayon::prelude::*;

use crate::analysis::{Cancelled, Control};
use crate::checkpoint::{Checkpoint, Dtype};

/// Elements decoded at a time: big enough to amortise the call, small enough to stay in cache.
const CHUNK: usize = 1 << 16;

/// `model.layers.7.mlp.down_proj.weight` → (`model.layers.{L}.mlp.down_proj.weight`, 7).
pub fn role_of(name: &str) -> Option<(String, usize)> {
    let marker = ".layers.";
    let at = name.find(marker)? + marker.len();
    let rest = &name[at..];
    let digits = rest.find('.').unwrap_or(rest.len());
    let layer: usize = rest[..digits].parse().ok()?;
    Some((format!("{}{{L}}{}", &name[..at], &rest[digits..]), layer))
}

/// Calls `f` on every stored value of a tensor as f64, chunk by chunk.
fn for_each_value(dtype: Dtype, bytes: &[u8], mut f: impl FnMut(f64)) {
    if let Dtype::Ggml(_) = dtype {
        // Blocks (and llama.cpp's q/k row order, undone on decode) need the whole tensor.
        dtype.decode_all_f32(bytes).into_iter().for_each(|v| f(v as f64));
        return;
    }
    let size = dtype.size_in_bytes().max(1);
    for chunk in bytes.chunks(CHUNK * size) {
        if dtype.is_float() && matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16) {
            for v in dtype.decode_all_f32(chunk) {
                f(v as f64);
            }
        } else {
            for e in chunk.chunks_exact(size) {
                f(dtype.decode(e));
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerFigure {
    pub layer: usize,
    pub tensor: String,
    pub mean: f64,
    pub std: f64,
    pub abs_max: f64,
    pub kurtosis: f64,
    pub outlier_frac: f64,
}

/// The sweep figures of one tensor (three passes: mean; central moments and |x|max; outliers).
pub fn figures(dtype: Dtype, bytes: &[u8]) -> (f64, f64, f64, f64, f64) {
    let (mut n, mut sum) = (0u64, 0f64);
    for_each_value(dtype, bytes, |x| {
        n += 1;
        sum += x;
    });
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = sum / n as f64;
    let (mut m2, mut m4, mut abs_max) = (0f64, 0f64, 0f64);
    for_each_value(dtype, bytes, |x| {
        let d = x - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        abs_max = if x.abs() > abs_max || x.is_nan() { x.abs() } else { abs_max };
    });
    let (m2, m4) = (m2 / n as f64, m4 / n as f64);
    let std = m2.sqrt();
    let kurtosis = m4 / (m2 * m2) - 3.0;
    let mut outliers = 0u64;
    for_each_value(dtype, bytes, |x| {
        if (x - mean).abs() > 6.0 * std {
            outliers += 1;
        }
    });
    (mean, std, abs_max, kurtosis, outliers as f64 / n as f64)
}

/// Every role of a checkpoint (or just `only`), its layers in order. Runs the tensors on
/// rayon's pool; `ctl` counts bytes and cancels.
pub fn sweep(
    ckpt: &Checkpoint,
    only: Option<&str>,
    ctl: &Control,
) -> Result<BTreeMap<String, Vec<LayerFigure>>, Cancelled> {
    let work: Vec<(String, usize, &crate::checkpoint::TensorInfo)> = ckpt
        .tensors
        .iter()
        .filter_map(|t| role_of(&t.name).map(|(role, layer)| (role, layer, t)))
        .filter(|(role, _, _)| only.is_none_or(|o| o == role))
        .collect();
    ctl.add_total(work.iter().map(|(_, _, t)| t.byte_len() as u64).sum());
    let rows: Vec<(String, LayerFigure)> = work
        .par_iter()
        .map(|(role, layer, t)| {
            ctl.check()?;
            let (mean, std, abs_max, kurtosis, outlier_frac) = figures(t.dtype, ckpt.bytes(t));
            ctl.advance(t.byte_len() as u64);
            Ok((
                role.clone(),
                LayerFigure { layer: *layer, tensor: t.name.clone(), mean, std, abs_max, kurtosis, outlier_frac },
            ))
        })
        .collect::<Result<_, Cancelled>>()?;
    let mut roles: BTreeMap<String, Vec<LayerFigure>> = BTreeMap::new();
    for (role, fig) in rows {
        roles.entry(role).or_default().push(fig);
    }
    // Roles repeated in a single layer say nothing about layers.
    roles.retain(|_, v| v.len() > 1);
    for v in roles.values_mut() {
        v.sort_by_key(|f| f.layer);
    }
    Ok(roles)
}

/// Layers whose figure stands out: robust z-score |x − median| / (1.4826·MAD) > 3.
pub fn outlying_layers(values: &[f64]) -> Vec<usize> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.len() < 3 {
        return Vec::new();
    }
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let mut dev: Vec<f64> = sorted.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    let mad = 1.4826 * dev[dev.len() / 2];
    if mad <= 0.0 {
        return Vec::new();
    }
    values.iter().enumerate().filter(|(_, v)| ((**v - median) / mad).abs() > 3.0).map(|(i, _)| i).collect()
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TensorDiff {
    pub tensor: String,
    pub fro_diff: f64,
    pub fro_a: f64,
    pub rel: f64,
    pub max_abs_diff: f64,
    pub changed: u64,
    pub numel: u64,
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Diff {
    pub only_in_a: Vec<String>,
    pub only_in_b: Vec<String>,
    /// Present in both with different shapes: (tensor, shape in A, shape in B). Listed, not compared.
    pub shape_mismatch: Vec<(String, Vec<usize>, Vec<usize>)>,
    pub tensors: Vec<TensorDiff>,
}

/// Calls `f(a, b)` for every element pair of two same-shaped tensors, reading both stored
/// tensors in step, chunk by chunk (block formats decode whole).
fn for_each_pair(da: Dtype, a: &[u8], db: Dtype, b: &[u8], numel: usize, mut f: impl FnMut(f64, f64)) {
    if matches!(da, Dtype::Ggml(_)) || matches!(db, Dtype::Ggml(_)) {
        let (va, vb) = (da.decode_all_f32(a), db.decode_all_f32(b));
        va.iter().zip(&vb).for_each(|(x, y)| f(*x as f64, *y as f64));
        return;
    }
    let (sa, sb) = (da.size_in_bytes().max(1), db.size_in_bytes().max(1));
    let mut start = 0;
    let mut va = Vec::with_capacity(CHUNK.min(numel));
    while start < numel {
        let end = (start + CHUNK).min(numel);
        va.clear();
        for_each_value(da, &a[start * sa..end * sa], |x| va.push(x));
        let mut i = 0;
        for_each_value(db, &b[start * sb..end * sb], |y| {
            f(va[i], y);
            i += 1;
        });
        start = end;
    }
}

/// ‖B − A‖, ‖A‖, max |Δ| and changed elements, reading both tensors' bytes in step.
fn diff_tensor(name: &str, da: Dtype, a: &[u8], db: Dtype, b: &[u8], numel: usize) -> TensorDiff {
    let (mut d2, mut a2, mut max_abs, mut changed) = (0f64, 0f64, 0f64, 0u64);
    for_each_pair(da, a, db, b, numel, |x, y| {
        let d = y - x;
        if x.to_bits() != y.to_bits() && !(x == y) {
            changed += 1;
        }
        d2 += d * d;
        a2 += x * x;
        max_abs = max_abs.max(d.abs());
    });
    let (fro_diff, fro_a) = (d2.sqrt(), a2.sqrt());
    TensorDiff {
        tensor: name.to_string(),
        fro_diff,
        fro_a,
        rel: if fro_a > 0.0 { fro_diff / fro_a } else { f64::NAN },
        max_abs_diff: max_abs,
        changed,
        numel: numel as u64,
    }
}

/// The histogram of Δ = B − A over one tensor present in both (numpy's bins over Δ's finite
/// range): two streaming passes, no copy of either tensor.
pub fn delta_histogram(
    a: &Checkpoint,
    b: &Checkpoint,
    name: &str,
    bins: usize,
) -> Result<crate::analysis::stats::Histogram, String> {
    use crate::analysis::stats::{Binner, Histogram, numpy_range};
    let (ta, tb) = (a.require(name).map_err(|e| e.to_string())?, b.require(name).map_err(|e| e.to_string())?);
    if ta.shape != tb.shape {
        return Err(format!("{name}: shapes differ ({:?} vs {:?})", ta.shape, tb.shape));
    }
    let (ba, bb, numel) = (a.bytes(ta), b.bytes(tb), ta.numel());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for_each_pair(ta.dtype, ba, tb.dtype, bb, numel, |x, y| {
        let d = y - x;
        if d.is_finite() {
            (lo, hi) = (lo.min(d), hi.max(d));
        }
    });
    let (lo, hi) = if lo <= hi { numpy_range(lo, hi) } else { (-0.5, 0.5) };
    let binner = Binner::new(lo, hi, bins.clamp(1, crate::analysis::stats::MAX_BINS));
    let mut counts = vec![0u64; binner.bins()];
    for_each_pair(ta.dtype, ba, tb.dtype, bb, numel, |x, y| {
        if let Some(i) = binner.bin(y - x) {
            counts[i] += 1;
        }
    });
    Ok(Histogram { edges: binner.edges().to_vec(), counts })
}

/// Every tensor of A against the same name in B, in name order.
pub fn diff(a: &Checkpoint, b: &Checkpoint, ctl: &Control) -> Result<Diff, Cancelled> {
    let mut out = Diff {
        only_in_a: a.tensors.iter().filter(|t| b.tensor(&t.name).is_none()).map(|t| t.name.clone()).collect(),
        only_in_b: b.tensors.iter().filter(|t| a.tensor(&t.name).is_none()).map(|t| t.name.clone()).collect(),
        ..Default::default()
    };
    let mut pairs = Vec::new();
    for ta in &a.tensors {
        let Some(tb) = b.tensor(&ta.name) else { continue };
        if ta.shape != tb.shape {
            out.shape_mismatch.push((ta.name.clone(), ta.shape.clone(), tb.shape.clone()));
        } else {
            pairs.push((ta, tb));
        }
    }
    ctl.add_total(pairs.iter().map(|(ta, tb)| (ta.byte_len() + tb.byte_len()) as u64).sum());
    out.tensors = pairs
        .par_iter()
        .map(|(ta, tb)| {
            ctl.check()?;
            let d = diff_tensor(&ta.name, ta.dtype, a.bytes(ta), tb.dtype, b.bytes(tb), ta.numel());
            ctl.advance((ta.byte_len() + tb.byte_len()) as u64);
            Ok(d)
        })
        .collect::<Result<_, Cancelled>>()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_abstract_the_layer_index() {
        assert_eq!(
            role_of("model.layers.12.mlp.down_proj.weight"),
            Some(("model.layers.{L}.mlp.down_proj.weight".into(), 12))
        );
        assert_eq!(role_of("model.norm.weight"), None);
    }

    #[test]
    fn a_layer_far_from_the_others_stands_out() {
        assert_eq!(outlying_layers(&[2.5, 2.6, 2.4, 2.5, 9.0, 2.55]), vec![4]);
        assert!(outlying_layers(&[1.0, 1.0, 1.0]).is_empty());
    }
}
