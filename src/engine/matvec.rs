//! The decode-step fast path: y = W·x for one token, W in the checkpoint's [out, in] layout.
//!
//! Generating one token is memory-bound: every weight is read once. A general matmul with
//! m = 1 leaves bandwidth unused; here each output row is one contiguous dot product,
//! rows are split across threads, and the dot product is compiled for AVX2+FMA when the
//! CPU has it. Prefill and training keep candle's matmul (and its autograd).

use candle_core::{Module, Result, Storage, Tensor};
use candle_nn::Linear;
use rayon::prelude::*;

/// Nanoseconds spent in the fast path since the counter was last reset: the decode
/// benchmark prints it to show how much of a token is weight streaming (one relaxed
/// atomic add per call, nothing measurable).
pub static MATVEC_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A `Linear` that takes the fast path when it sees a single row of input.
pub struct FastLinear {
    inner: Linear,
    /// A LoRA update kept separate from W, as PEFT runs it: y = W·x + scale · B·(A·x).
    /// A: [r, in], B: [out, r].
    pub lora: Option<(Tensor, Tensor, f64)>,
    /// Row-major [out, in] weight, contiguous (checked at construction).
    in_features: usize,
    out_features: usize,
}

impl FastLinear {
    pub fn new(inner: Linear) -> Self {
        let (out_features, in_features) = inner.weight().dims2().unwrap_or((0, 0));
        Self { inner, lora: None, in_features, out_features }
    }

    fn add_lora(&self, x: &Tensor, y: Tensor) -> Result<Tensor> {
        match &self.lora {
            Some((a, b, scale)) if *scale != 0.0 => {
                let update = x.broadcast_matmul(&a.t()?)?.broadcast_matmul(&b.t()?)?;
                y + (update * *scale)?
            }
            _ => Ok(y),
        }
    }

    pub fn forward_t(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let y = self.base_forward(x, training)?;
        self.add_lora(x, y)
    }

    fn base_forward(&self, x: &Tensor, training: bool) -> Result<Tensor> {
        let rows = x.elem_count() / self.in_features.max(1);
        if training || rows != 1 || !self.inner.weight().is_contiguous() || x.dtype() != candle_core::DType::F32 {
            return self.inner.forward(x);
        }
        let t0 = std::time::Instant::now();
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let (storage, layout) = self.inner.weight().storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else {
            drop(storage);
            return self.inner.forward(x);
        };
        let w = &cpu.as_slice::<f32>()?
            [layout.start_offset()..layout.start_offset() + self.in_features * self.out_features];
        let mut y = vec![0f32; self.out_features];
        let k = self.in_features;
        // A few tasks per thread: each wake-up of the pool costs microseconds, and a token
        // makes ~200 of these calls, so fewer, larger tasks beat fine-grained ones.
        let tasks = rayon::current_num_threads() * 4;
        let rows_per_task = self.out_features.div_ceil(tasks).max(1);
        y.par_chunks_mut(rows_per_task).enumerate().for_each(|(c, out)| {
            let first = c * rows_per_task;
            dot_rows(&w[first * k..(first + out.len()) * k], &xv, out);
        });
        drop(storage);
        MATVEC_NS.fetch_add(t0.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank ≥ 1") = self.out_features;
        let y = Tensor::from_vec(y, dims, x.device())?;
        match self.inner.bias() {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

fn dot_rows(w: &[f32], x: &[f32], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the CPU features were detected just above.
            return unsafe { dot_rows_avx2(w, x, out) };
        }
    }
    dot_rows_portable(w, x, out)
}

/// Four 8-lane FMA chains per row, and a software prefetch 4 KB ahead of the weight stream:
/// without it the hardware prefetcher leaves the loop waiting on memory. With the forward
/// run on the pool (`engine::on_pool`), the matvec share of a SmolLM2-135M token went from
/// 42–57 ms to 36–39 ms on this (noisy, shared) machine.
///
/// SAFETY (for callers): needs AVX2 and FMA; `w.len() >= out.len() * x.len()`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_rows_avx2(w: &[f32], x: &[f32], out: &mut [f32]) {
    use std::arch::x86_64::*;
    const AHEAD: usize = 1024;
    let k = x.len();
    assert!(w.len() >= out.len() * k);
    let n = k - k % 32;
    let xp = x.as_ptr();
    for (r, o) in out.iter_mut().enumerate() {
        let row = &w[r * k..(r + 1) * k];
        let wp = row.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut j = 0;
        while j < n {
            // SAFETY: j + 32 <= n <= k for both rows of k floats; prefetches may point anywhere.
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(j + AHEAD) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(wp.wrapping_add(j + AHEAD + 16) as *const i8);
                for (q, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_loadu_ps(wp.add(j + 8 * q)), _mm256_loadu_ps(xp.add(j + 8 * q)), *a);
                }
            }
            j += 32;
        }
        let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut lanes = [0f32; 8];
        // SAFETY: a store into a local array of one vector.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        let mut s = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
        for (a, b) in row[n..].iter().zip(&x[n..]) {
            s = a.mul_add(*b, s);
        }
        *o = s;
    }
}

#[inline(always)]
fn dot_rows_portable(w: &[f32], x: &[f32], out: &mut [f32]) {
    let k = x.len();
    for (row, o) in w.chunks_exact(k).zip(out.iter_mut()) {
        // 16 independent partial sums: wide enough for two 8-lane FMA chains.
        let mut acc = [0f32; 16];
        let (head, tail) = row.split_at(k - k % 16);
        let (xh, xt) = x.split_at(k - k % 16);
        for (wc, xc) in head.chunks_exact(16).zip(xh.chunks_exact(16)) {
            for j in 0..16 {
                acc[j] = wc[j].mul_add(xc[j], acc[j]);
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (a, b) in tail.iter().zip(xt) {
            s += a * b;
        }
        *o = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn fast_path_equals_matmul() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (37, 70), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 37, &dev).unwrap();
        let x = Tensor::randn(0f32, 1.0, (1, 1, 70), &dev).unwrap();
        let lin = FastLinear::new(Linear::new(w, Some(b)));
        let fast = lin.forward_t(&x, false).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let slow = lin.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (a, b) in fast.iter().zip(&slow) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }
}
