//! What a LoRA adapter does to a weight: ΔW = scaling · B·A, its size against W, and its
//! singular values (at most r are non-zero: the "low rank" made visible).
//!
//! Everything is computed from the r×r Gram matrices G = BᵀB and H = A·Aᵀ, never from the
//! out×in ΔW itself: ‖B·A‖²_F = Σ G∘H, and the squared singular values of B·A are the
//! eigenvalues of H^½·G·H^½ (symmetric, r×r, solved by Jacobi rotations in f64).

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct DeltaSummary {
    pub module: String,
    pub w_norm: f64,
    pub delta_norm: f64,
    /// ‖ΔW‖_F / ‖W‖_F: how big the change is relative to the weight.
    pub ratio: f64,
    /// Singular values of ΔW, largest first (r of them; the rest are exactly 0).
    pub singular_values: Vec<f64>,
}

/// `a`: [r, in] row-major; `b`: [out, r] row-major; `w`: [out, in] row-major.
pub fn summarize(module: &str, a: &[f32], b: &[f32], r: usize, w: &[f32], scaling: f64) -> DeltaSummary {
    let in_f = a.len() / r.max(1);
    let out_f = b.len() / r.max(1);
    let mut g = vec![0f64; r * r]; // BᵀB
    let mut h = vec![0f64; r * r]; // A·Aᵀ
    for i in 0..r {
        for j in i..r {
            let gij: f64 = (0..out_f).map(|o| b[o * r + i] as f64 * b[o * r + j] as f64).sum();
            let hij: f64 = (0..in_f).map(|c| a[i * in_f + c] as f64 * a[j * in_f + c] as f64).sum();
            g[i * r + j] = gij;
            g[j * r + i] = gij;
            h[i * r + j] = hij;
            h[j * r + i] = hij;
        }
    }
    let fro2: f64 = g.iter().zip(&h).map(|(x, y)| x * y).sum();
    let delta_norm = scaling.abs() * non_negative(fro2).sqrt();
    let w_norm = w.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    // H^½ from H's eigen-decomposition (H is PSD).
    let (lam, q) = jacobi_eigen(&h, r);
    let mut h_half = vec![0f64; r * r];
    for i in 0..r {
        for j in 0..r {
            h_half[i * r + j] = (0..r).map(|k| q[i * r + k] * lam[k].max(0.0).sqrt() * q[j * r + k]).sum();
        }
    }
    let m = matmul(&matmul(&h_half, &g, r), &h_half, r);
    let (ev, _) = jacobi_eigen(&m, r);
    let nan = !fro2.is_finite();
    let mut singular_values: Vec<f64> =
        ev.iter().map(|&e| if nan { f64::NAN } else { scaling.abs() * non_negative(e).sqrt() }).collect();
    singular_values.sort_by(|x, y| y.total_cmp(x));
    DeltaSummary {
        module: module.to_string(),
        w_norm,
        delta_norm,
        ratio: if w_norm > 0.0 { delta_norm / w_norm } else { f64::NAN },
        singular_values,
    }
}

/// Clamps round-off below zero, but keeps NaN: `f64::max` would turn a NaN norm (a NaN in A
/// or B) into a reassuring 0.
fn non_negative(x: f64) -> f64 {
    if x.is_nan() { x } else { x.max(0.0) }
}

/// ΔW = scaling · B·A as an [out, in] matrix (for heatmaps and histograms).
pub fn delta(a: &[f32], b: &[f32], r: usize, scaling: f64) -> Vec<f32> {
    let in_f = a.len() / r.max(1);
    let out_f = b.len() / r.max(1);
    let mut d = vec![0f32; out_f * in_f];
    for o in 0..out_f {
        for k in 0..r {
            let bk = (b[o * r + k] as f64 * scaling) as f32;
            if bk == 0.0 {
                continue;
            }
            let row = &a[k * in_f..(k + 1) * in_f];
            for (x, &ak) in d[o * in_f..(o + 1) * in_f].iter_mut().zip(row) {
                *x += bk * ak;
            }
        }
    }
    d
}

fn matmul(x: &[f64], y: &[f64], n: usize) -> Vec<f64> {
    let mut z = vec![0f64; n * n];
    for i in 0..n {
        for k in 0..n {
            let xik = x[i * n + k];
            for j in 0..n {
                z[i * n + j] += xik * y[k * n + j];
            }
        }
    }
    z
}

/// Eigenvalues and eigenvectors (columns of the returned row-major matrix) of a symmetric
/// n×n matrix, by cyclic Jacobi rotations: slow for big n, exact to round-off for the
/// r ≤ 256 of LoRA ranks.
pub fn jacobi_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = m.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    for _sweep in 0..100 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j].powi(2))
            .sum();
        if off.sqrt() <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() <= 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let akp = a[k * n + p];
                    let akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let apk = a[p * n + k];
                    let aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let vkp = v[k * n + p];
                    let vkq = v[k * n + q];
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_one_delta() {
        // B = [3; 4] (2×1), A = [1, 0, 0] (1×3): ΔW = 2·B·A has one singular value 2·5·1 = 10.
        let s = summarize("m", &[1.0, 0.0, 0.0], &[3.0, 4.0], 1, &[1.0; 6], 2.0);
        assert!((s.delta_norm - 10.0).abs() < 1e-12);
        assert!((s.singular_values[0] - 10.0).abs() < 1e-12);
        assert_eq!(delta(&[1.0, 0.0, 0.0], &[3.0, 4.0], 1, 2.0), vec![6.0, 0.0, 0.0, 8.0, 0.0, 0.0]);
    }

    #[test]
    fn jacobi_diagonalises() {
        let (ev, _) = jacobi_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        let mut ev = ev;
        ev.sort_by(|a, b| a.total_cmp(b));
        assert!((ev[0] - 1.0).abs() < 1e-12 && (ev[1] - 3.0).abs() < 1e-12);
    }

    #[test]
    fn nan_in_b_shows_as_nan_not_zero() {
        let (r, n) = (2, 3);
        let a = vec![0.5f32; r * n];
        let b = vec![f32::NAN; n * r];
        let w = vec![1.0f32; n * n];
        let s = summarize("m", &a, &b, r, &w, 2.0);
        assert!(s.delta_norm.is_nan() && s.ratio.is_nan());
        assert!(s.singular_values.iter().all(|v| v.is_nan()));
    }
}
