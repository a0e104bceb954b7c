//! One query position's attention as llama.cpp's CPU backend computes it (no flash
//! attention, F16 KV cache): q, k and v are F16 values (the caller rounds them), each score
//! is `ggml_vec_dot_f16` (four 8-lane FMA accumulators over 32-element steps, reduced as
//! ggml reduces them, the tail in double), the softmax sums its exponentials in double and
//! scales by the reciprocal, each weight is rounded to F16, and each output element is
//! again `ggml_vec_dot_f16`, over the positions. The model is quantized, so the next matvec
//! rounds these numbers to 8 bits: one ulp of a different order can flip a code, which is
//! why the order is copied and not just the formula.

/// `ggml_vec_dot_f16` on values already rounded to F16: the x86 F16C/FMA loop.
pub(super) fn vec_dot_f16(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            // SAFETY: the features were detected just above.
            return unsafe { vec_dot_f16_fma(a, b) };
        }
    }
    vec_dot_f16_portable(a, b)
}

/// The same loop in explicit 8-lane FMAs (the compiler did not vectorise the portable one
/// across its four accumulators): the scores were 5% of a Q4_1 token.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn vec_dot_f16_fma(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let np = n & !31;
    let mut acc = [_mm256_setzero_ps(); 4];
    for i in (0..np).step_by(32) {
        for (j, acc) in acc.iter_mut().enumerate() {
            // SAFETY: i + 8j + 8 ≤ np ≤ both lengths.
            let (x, y) =
                unsafe { (_mm256_loadu_ps(a.as_ptr().add(i + 8 * j)), _mm256_loadu_ps(b.as_ptr().add(i + 8 * j))) };
            *acc = _mm256_fmadd_ps(x, y, *acc);
        }
    }
    let x0 = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
    let t0 = _mm_add_ps(_mm256_castps256_ps128(x0), _mm256_extractf128_ps::<1>(x0));
    let t1 = _mm_hadd_ps(t0, t0);
    let mut total = _mm_cvtss_f32(_mm_hadd_ps(t1, t1)) as f64;
    for i in np..n {
        total += (a[i] * b[i]) as f64;
    }
    total as f32
}

#[inline(always)]
fn vec_dot_f16_portable(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let np = n & !31;
    let mut sum = [[0f32; 8]; 4];
    for i in (0..np).step_by(32) {
        for (j, acc) in sum.iter_mut().enumerate() {
            for (l, s) in acc.iter_mut().enumerate() {
                *s = a[i + 8 * j + l].mul_add(b[i + 8 * j + l], *s);
            }
        }
    }
    let mut total = reduce(&sum) as f64;
    for i in np..n {
        total += (a[i] * b[i]) as f64;
    }
    total as f32
}

/// GGML_F32x8_REDUCE of four 8-lane accumulators: x0 += x2, x1 += x3, x0 += x1, then the
/// two halves of x0, then two horizontal adds.
fn reduce(sum: &[[f32; 8]; 4]) -> f32 {
    let lanes: [f32; 8] = std::array::from_fn(|l| (sum[0][l] + sum[2][l]) + (sum[1][l] + sum[3][l]));
    let t0: [f32; 4] = std::array::from_fn(|k| lanes[k] + lanes[k + 4]);
    (t0[0] + t0[1]) + (t0[2] + t0[3])
}

fn f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// Head `h`'s output (hd values) for a query over `len` cached positions; `key(p)` and
/// `value(p)` are head `h`'s KV head at position p (F16 values). `scratch` holds len weights.
pub(super) fn head<'a>(
    q: &[f32],
    len: usize,
    key: impl Fn(usize) -> &'a [f32],
    value: impl Fn(usize) -> &'a [f32],
    scale: f32,
    out: &mut [f32],
    scratch: &mut Vec<f32>,
) {
    scratch.clear();
    scratch.extend((0..len).map(|p| vec_dot_f16(q, key(p)) * scale));
    let max = scratch.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0f64;
    for s in scratch.iter_mut() {
        *s = (*s - max).exp();
        sum += *s as f64;
    }
    let inv = (1.0 / sum) as f32;
    scratch.iter_mut().for_each(|s| *s = f16(*s * inv));
    weighted_values(scratch, value, out);
}

/// kqv[d] = Σ_p v[p][d]·w[p] as `ggml_vec_dot_f16` sums it over the positions (the V cache
/// is stored transposed): position p goes to lane p mod 32 of four 8-lane accumulators, one
/// FMA each, in order of p; the tail never occurs because ggml pads the cache to whole
/// steps with zero weights. All head dims at once, so nothing is gathered.
fn weighted_values<'a>(weights: &[f32], value: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the feature was detected just above.
            return unsafe { weighted_values_fma(weights, value, out) };
        }
    }
    weighted_values_portable(weights, value, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma")]
fn weighted_values_fma<'a>(weights: &[f32], value: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    weighted_values_portable(weights, value, out)
}

#[inline(always)]
fn weighted_values_portable<'a>(weights: &[f32], value: impl Fn(usize) -> &'a [f32], out: &mut [f32]) {
    let hd = out.len();
    let mut acc = vec![0f32; 32 * hd];
    for (p, &w) in weights.iter().enumerate() {
        let lane = &mut acc[(p % 32) * hd..(p % 32 + 1) * hd];
        for (a, &v) in lane.iter_mut().zip(value(p)) {
            *a = v.mul_add(w, *a);
        }
    }
    for (d, o) in out.iter_mut().enumerate() {
        *o = reduce(&std::array::from_fn(|j| std::array::from_fn(|l| acc[(8 * j + l) * hd + d])));
    }
}

/// The shape of a chunk's attention: `t` query positions (the last `t` of the cache),
/// query and KV heads, head size.
#[derive(Clone, Copy)]
pub(super) struct Dims {
    pub t: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

/// A chunk's attention, every query position and head through [`head`]: q is (heads, t, hd),
/// k and v are (kv_heads, len, hd) with the chunk's own positions last, all F16 values. The
/// output is (t, heads, hd); with `keep`, also the softmax weights (t, heads, len), zero
/// beyond each query's causal limit, for the probes.
pub(super) fn chunk(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    dims: Dims,
    scale: f32,
    keep: bool,
) -> (Vec<f32>, Option<Vec<f32>>) {
    let Dims { t, heads, kv_heads, head_dim: hd } = dims;
    let len = k.len() / (kv_heads * hd).max(1);
    let mut y = vec![0f32; t * heads * hd];
    let mut weights = keep.then(|| vec![0f32; t * heads * len]);
    let mut scratch = Vec::new();
    for i in 0..t {
        let visible = len - t + i + 1;
        for h in 0..heads {
            let g = h / (heads / kv_heads);
            let qh = &q[(h * t + i) * hd..(h * t + i + 1) * hd];
            let at = |p: usize| (g * len + p) * hd;
            let out = &mut y[(i * heads + h) * hd..(i * heads + h + 1) * hd];
            head(qh, visible, |p| &k[at(p)..at(p) + hd], |p| &v[at(p)..at(p) + hd], scale, out, &mut scratch);
            if let Some(w) = weights.as_mut() {
                let row = (i * heads + h) * len;
                w[row..row + visible].copy_from_slice(&scratch);
            }
        }
    }
    (y, weights)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dot product equals an f64 one to f32 precision, one position's attention is its
    /// value vector (rounded to F16 weights of 1), and the weighted values equal
    /// `vec_dot_f16` over each padded column, which is how ggml computes them.
    #[test]
    fn dot_and_single_position_attention() {
        let a: Vec<f32> = (0..70).map(|i| f16((i as f32 * 0.37).sin())).collect();
        let b: Vec<f32> = (0..70).map(|i| f16((i as f32 * 0.11).cos())).collect();
        let exact: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        assert!((vec_dot_f16(&a, &b) as f64 - exact).abs() < 1e-5);
        let v: Vec<f32> = (0..8).map(|i| f16(i as f32 * 0.5 - 1.0)).collect();
        let mut out = vec![0f32; 8];
        head(&a[..8], 1, |_| &b[..8], |_| &v, 0.3, &mut out, &mut Vec::new());
        assert_eq!(out, v);
        let (len, hd) = (45, 8);
        let w: Vec<f32> = (0..len).map(|p| f16(1.0 / (p + 2) as f32)).collect();
        let vals: Vec<f32> = (0..len * hd).map(|i| f16((i as f32 * 0.7).sin())).collect();
        let mut got = vec![0f32; hd];
        weighted_values(&w, |p| &vals[p * hd..(p + 1) * hd], &mut got);
        let mut padded_w = w.clone();
        padded_w.resize(64, 0.0);
        for (d, g) in got.iter().enumerate() {
            let mut column: Vec<f32> = (0..len).map(|p| vals[p * hd + d]).collect();
            column.resize(64, 0.0);
            assert_eq!(g.to_bits(), vec_dot_f16(&column, &padded_w).to_bits(), "dim {d}");
        }
    }

    /// The explicit AVX loop gives the portable loop's numbers to the bit, tail included.
    #[test]
    fn simd_and_portable_f16_dots_agree() {
        for n in [8, 31, 32, 64, 70, 128] {
            let a: Vec<f32> = (0..n).map(|i| f16((i as f32 * 0.91).sin() * 3.0)).collect();
            let b: Vec<f32> = (0..n).map(|i| f16((i as f32 * 0.23).cos())).collect();
            assert_eq!(vec_dot_f16(&a, &b).to_bits(), vec_dot_f16_portable(&a, &b).to_bits(), "n = {n}");
        }
    }
}
