//! Weights as they are stored, and y = W·x over them.
//!
//! Generating one token is memory-bound: every weight is read once, so the bytes read per
//! token set the speed. A [`Weight`] therefore stays in the checkpoint's read-only map at its
//! stored width (F32 in place, BF16/F16 kept 16-bit) and the decode kernels widen each value
//! in registers (BF16 is a 16-bit shift, F16 goes through F16C). Each output row is one
//! contiguous dot product, rows are split across threads, and the kernels are compiled for
//! AVX2+FMA(+F16C) with a portable fallback picked at run time.
//!
//! Prefill (several tokens at once) widens the weight a block of rows at a time into a
//! temporary f32 tile and hands it to candle's matmul, so no f32 copy of a 16-bit model is
//! ever kept. Training uses candle tensors (`Weight::Tensor`) and candle's ops throughout, so
//! autograd sees every step.

use candle_core::{DType, Device, Module, Result, Storage, Tensor};
use candle_nn::Linear;
use rayon::prelude::*;

pub(crate) use super::quant_matvec::Input;
use super::quant_matvec::{Arith, QuantRows, dot_quant_rows};
use crate::checkpoint::SharedBytes;
use crate::checkpoint::ggml_dtype::GgmlLayout;

/// Floats in one widened prefill tile: 16 MB, small next to any weight worth tiling and
/// large enough that candle's matmul runs at full speed on it.
const TILE_FLOATS: usize = 4 << 20;

/// Up to this many input rows (a short prompt) go through the stored-width kernels instead of
/// widened tiles and a matmul: no f32 tile, no packing buffers, and about as fast.
const FEW_ROWS: usize = 8;

/// The stored widths the kernels read directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    F32,
    BF16,
    F16,
}

impl Width {
    pub fn bytes(self) -> usize {
        match self {
            Width::F32 => 4,
            Width::BF16 | Width::F16 => 2,
        }
    }
}

/// A [rows, cols] row-major matrix, either a candle tensor (training, and dtypes widened on
/// load such as FP8) or the checkpoint's own bytes.
#[derive(Clone)]
pub enum Weight {
    Tensor(Tensor),
    Stored {
        bytes: SharedBytes,
        width: Width,
        rows: usize,
        cols: usize,
    },
    /// GGML blocks (and llama.cpp's q/k row order), read in place by the quantized kernels.
    Quantized {
        bytes: SharedBytes,
        layout: GgmlLayout,
        rows: usize,
        cols: usize,
        arith: Arith,
    },
}

/// Row-major stored values, typed: what the kernels iterate over.
#[derive(Clone, Copy)]
pub(crate) enum Rows<'a> {
    F32(&'a [f32]),
    BF16(&'a [u16]),
    F16(&'a [u16]),
    Quant(QuantRows<'a>),
}

impl<'a> Rows<'a> {
    /// Elements `first..first + n`: whole rows for quantized weights.
    pub(crate) fn slice(self, first: usize, n: usize) -> Self {
        match self {
            Rows::F32(w) => Rows::F32(&w[first..first + n]),
            Rows::BF16(w) => Rows::BF16(&w[first..first + n]),
            Rows::F16(w) => Rows::F16(&w[first..first + n]),
            Rows::Quant(q) => {
                assert!(first.is_multiple_of(q.cols) && n.is_multiple_of(q.cols), "quantized rows slice by whole rows");
                Rows::Quant(QuantRows { first: q.first + first / q.cols, ..q })
            }
        }
    }

    pub(crate) fn widen_into(self, out: &mut [f32]) {
        match self {
            Rows::F32(w) => out.copy_from_slice(w),
            Rows::BF16(w) => out.iter_mut().zip(w).for_each(|(o, &b)| *o = f32::from_bits((b as u32) << 16)),
            Rows::F16(w) => out.iter_mut().zip(w).for_each(|(o, &b)| *o = half::f16::from_bits(b).to_f32()),
            Rows::Quant(q) => {
                for (r, row) in out.chunks_exact_mut(q.cols).enumerate() {
                    q.widen_row(r, row);
                }
            }
        }
    }
}

impl Weight {
    /// Uses stored bytes in place when the kernels can read them (F32, BF16, F16, aligned to
    /// their width); None otherwise, and the caller widens to a tensor instead.
    pub fn stored(bytes: SharedBytes, width: Width, rows: usize, cols: usize) -> Option<Self> {
        let b = bytes.as_slice();
        let aligned = (b.as_ptr() as usize).is_multiple_of(width.bytes());
        (aligned && b.len() == rows * cols * width.bytes()).then_some(Weight::Stored { bytes, width, rows, cols })
    }

    /// GGML blocks used in place: any type the dequantizer reads, whole blocks per row.
    pub fn quantized(bytes: SharedBytes, layout: GgmlLayout, rows: usize, cols: usize) -> Option<Self> {
        let (n, size) = layout.ty.block_geometry()?;
        let fits =
            layout.ty.is_readable() && cols.is_multiple_of(n) && bytes.as_slice().len() == rows * (cols / n) * size;
        fits.then_some(Weight::Quantized { bytes, layout, rows, cols, arith: Arith::Exact })
    }

    pub fn dims(&self) -> (usize, usize) {
        match self {
            Weight::Tensor(t) => t.dims2().unwrap_or((0, 0)),
            Weight::Stored { rows, cols, .. } | Weight::Quantized { rows, cols, .. } => (*rows, *cols),
        }
    }

    /// Picks how a quantized weight is multiplied (no effect on other weights).
    pub fn set_arith(&mut self, to: Arith) {
        if let Weight::Quantized { arith, .. } = self {
            *arith = to;
        }
    }

    /// Quantized with llama.cpp's arithmetic: every row count goes through the quantized
    /// kernels (a prefill too), as ggml quantizes the activations of a batch as well.
    fn computes_like_llamacpp(&self) -> bool {
        matches!(self, Weight::Quantized { arith: Arith::LlamaCpp, .. })
    }

    /// The stored values as typed rows, borrowed from the map; None for a candle tensor,
    /// whose values sit behind a lock (the fused decode step then does not apply).
    pub(crate) fn stored_rows(&self) -> Option<Rows<'_>> {
        if let Weight::Quantized { bytes, layout, cols, arith, .. } = self {
            return Some(Rows::Quant(QuantRows {
                bytes: bytes.as_slice(),
                layout: *layout,
                cols: *cols,
                first: 0,
                arith: *arith,
            }));
        }
        let Weight::Stored { bytes, width, rows, cols } = self else { return None };
        let b = bytes.as_slice();
        let n = rows * cols;
        // SAFETY: `Weight::stored` checked that the bytes are aligned to the element width
        // and hold exactly rows × cols elements; every bit pattern is a valid f32 or u16,
        // and the map is read-only for the life of `bytes`, which `self` owns.
        Some(unsafe {
            match width {
                Width::F32 => Rows::F32(std::slice::from_raw_parts(b.as_ptr().cast::<f32>(), n)),
                Width::BF16 => Rows::BF16(std::slice::from_raw_parts(b.as_ptr().cast::<u16>(), n)),
                Width::F16 => Rows::F16(std::slice::from_raw_parts(b.as_ptr().cast::<u16>(), n)),
            }
        })
    }

    /// Runs `f` on the weight's values as typed rows (a contiguous f32 tensor counts too).
    fn with_rows<R>(&self, f: impl FnOnce(Rows) -> R) -> Result<R> {
        if let Some(rows) = self.stored_rows() {
            return Ok(f(rows));
        }
        let Weight::Tensor(t) = self else { unreachable!("stored weights have rows") };
        let t = if t.is_contiguous() && t.dtype() == DType::F32 {
            t.clone()
        } else {
            t.to_dtype(DType::F32)?.contiguous()?
        };
        let (storage, layout) = t.storage_and_layout();
        let Storage::Cpu(cpu) = &*storage else { candle_core::bail!("weights must be on the CPU") };
        let w = &cpu.as_slice::<f32>()?[layout.start_offset()..layout.start_offset() + t.elem_count()];
        Ok(f(Rows::F32(w)))
    }

    /// Rows `first..first + n`, widened to f32, as a (n, cols) tensor.
    fn widened_rows(&self, first: usize, n: usize, dev: &Device) -> Result<Tensor> {
        let (_, cols) = self.dims();
        let mut out = vec![0f32; n * cols];
        self.with_rows(|w| {
            // In parallel: widening a 16 MB tile on one core would cost more than its matmul.
            let per = cols * 256;
            out.par_chunks_mut(per)
                .enumerate()
                .for_each(|(c, o)| w.slice(first * cols + c * per, o.len()).widen_into(o));
        })?;
        Tensor::from_vec(out, (n, cols), dev)
    }

    /// Embedding lookup: the rows named by `ids` (any shape) → ids.shape × cols. Stored
    /// weights are read in place; a tensor goes through `index_select` so training reaches it.
    pub fn lookup(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, cols) = self.dims();
        let mut dims = ids.dims().to_vec();
        dims.push(cols);
        if let Weight::Tensor(t) = self {
            return t.index_select(&ids.flatten_all()?, 0)?.reshape(dims);
        }
        let ids = ids.flatten_all()?.to_vec1::<u32>()?;
        let mut out = vec![0f32; ids.len() * cols];
        self.with_rows(|w| {
            for (o, &id) in out.chunks_exact_mut(cols).zip(&ids) {
                w.slice(id as usize * cols, cols).widen_into(o);
            }
        })?;
        Tensor::from_vec(out, dims, &Device::Cpu)
    }
}

/// A linear layer that takes the fast path when it sees a single row of input.
pub struct FastLinear {
    weight: Weight,
    bias: Option<Tensor>,
    /// A LoRA update kept separate from W, as PEFT runs it: y = W·x + scale · B·(A·x).
    /// A: [r, in], B: [out, r].
    pub lora: Option<(Tensor, Tensor, f64)>,
    in_features: usize,
    out_features: usize,
}

impl FastLinear {
    pub fn new(weight: Weight, bias: Option<Tensor>) -> Self {
        let (out_features, in_features) = weight.dims();
        Self { weight, bias, lora: None, in_features, out_features }
    }

    pub fn weight(&self) -> &Weight {
        &self.weight
    }

    pub fn set_arith(&mut self, arith: Arith) {
        self.weight.set_arith(arith);
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
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
        let few = rows <= FEW_ROWS || self.weight.computes_like_llamacpp();
        let y = if !training && few && x.dtype() == DType::F32 {
            self.matvec(x, rows)?
        } else {
            match &self.weight {
                // candle's own Linear: autograd for training, its matmul for prefill.
                Weight::Tensor(w) => return Linear::new(w.clone(), self.bias.clone()).forward(x),
                Weight::Stored { .. } | Weight::Quantized { .. } => self.tiled(x)?,
            }
        };
        match &self.bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }

    /// One token (or a few): every weight read from memory once, at its stored width. With
    /// several input rows, each task's block of weight rows is read from memory for the first
    /// input and from cache for the others, and nothing is widened or allocated per weight.
    fn matvec(&self, x: &Tensor, rows: usize) -> Result<Tensor> {
        let xv = x.flatten_all()?.to_vec1::<f32>()?;
        let (n, k) = (self.out_features, self.in_features);
        let mut y = vec![0f32; rows * n];
        self.weight.with_rows(|w| {
            // A few tasks per thread: each wake-up of the pool costs microseconds, and a token
            // makes ~200 of these calls, so fewer, larger tasks beat fine-grained ones.
            let tasks = rayon::current_num_threads() * 4;
            let rows_per_task = n.div_ceil(tasks).max(1);
            if rows == 1 {
                y.par_chunks_mut(rows_per_task).enumerate().for_each(|(c, out)| {
                    let first = c * rows_per_task;
                    dot_rows(w.slice(first * k, out.len() * k), &xv, out);
                });
                return;
            }
            let blocks: Vec<(usize, Vec<f32>)> = (0..n.div_ceil(rows_per_task))
                .into_par_iter()
                .map(|c| {
                    let first = c * rows_per_task;
                    let len = rows_per_task.min(n - first);
                    let mut out = vec![0f32; rows * len];
                    for (xi, oi) in xv.chunks_exact(k).zip(out.chunks_exact_mut(len)) {
                        dot_rows(w.slice(first * k, len * k), xi, oi);
                    }
                    (first, out)
                })
                .collect();
            for (first, out) in blocks {
                let len = out.len() / rows;
                for (i, oi) in out.chunks_exact(len).enumerate() {
                    y[i * n + first..i * n + first + len].copy_from_slice(oi);
                }
            }
        })?;
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank ≥ 1") = self.out_features;
        Tensor::from_vec(y, dims, x.device())
    }

    /// Several tokens: widen a block of rows at a time and let candle multiply. Gradients
    /// still flow to `x` (the tiles are constants).
    fn tiled(&self, x: &Tensor) -> Result<Tensor> {
        let k = self.in_features;
        let n = x.elem_count() / k;
        let x2 = x.reshape((n, k))?;
        let block = (TILE_FLOATS / k.max(1)).clamp(1, self.out_features.max(1));
        let mut parts = Vec::with_capacity(self.out_features.div_ceil(block));
        let mut first = 0;
        while first < self.out_features {
            let rows = block.min(self.out_features - first);
            let tile = self.weight.widened_rows(first, rows, x.device())?;
            parts.push(x2.matmul(&tile.t()?)?);
            first += rows;
        }
        let y = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(&parts, 1)? };
        let mut dims = x.dims().to_vec();
        *dims.last_mut().expect("rank ≥ 1") = self.out_features;
        y.reshape(dims)
    }
}

/// out[r] = row r of `w` · x, for the out.len() rows of x.len() values `w` holds.
pub(crate) fn dot_rows(w: Rows, x: &[f32], out: &mut [f32]) {
    dot_rows_input(w, &Input::new(x), out)
}

/// [`dot_rows`] on an input that several matrices share (its Q8 form is made once).
pub(crate) fn dot_rows_input(w: Rows, input: &Input, out: &mut [f32]) {
    let x = input.x;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx2") && has!("fma") {
            // SAFETY: the CPU features were detected just above (F16C for F16 too), and
            // `slice` gave exactly out.len() rows of x.len() values.
            match w {
                Rows::F32(w) => return unsafe { dot_rows_f32_avx2(w, x, out) },
                Rows::BF16(w) => return unsafe { dot_rows_bf16_avx2(w, x, out) },
                Rows::F16(w) if has!("f16c") => return unsafe { dot_rows_f16_avx2(w, x, out) },
                Rows::F16(_) | Rows::Quant(_) => {}
            }
        }
    }
    match w {
        Rows::F32(w) => dot_rows_portable(w, x, out, |v| v),
        Rows::BF16(w) => dot_rows_portable(w, x, out, |b| f32::from_bits((b as u32) << 16)),
        Rows::F16(w) => dot_rows_portable(w, x, out, |b| half::f16::from_bits(b).to_f32()),
        Rows::Quant(q) => dot_quant_rows(q, input, out),
    }
}

#[cfg(target_arch = "x86_64")]
mod lanes {
    use std::arch::x86_64::*;

    /// SAFETY (all three): needs AVX2 (and F16C for f16); `p` points at 8 readable values.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn f32(p: *const f32) -> __m256 {
        unsafe { _mm256_loadu_ps(p) }
    }

    /// BF16 is the top half of an f32: zero-extend to 32 bits and shift left by 16.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn bf16(p: *const u16) -> __m256 {
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(_mm_loadu_si128(p.cast())))) }
    }

    #[inline]
    #[target_feature(enable = "avx2,f16c")]
    pub unsafe fn f16(p: *const u16) -> __m256 {
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
}

/// Four 8-lane FMA chains per row, and a software prefetch 8 KB ahead of the weight stream:
/// without it the hardware prefetcher leaves the loop waiting on memory (SmolLM2-135M BF16:
/// 46 tok/s with none, 56 at 1 KB, 59–61 at 4 KB, 59–65 at 8 KB, 50 at 32 KB). With the forward
/// run on the pool (`engine::on_pool`), the matvec share of a SmolLM2-135M token went from
/// 42–57 ms to 36–39 ms on this (noisy, shared) machine. One body, stamped out per stored
/// width, so 16-bit weights stream half the bytes through the same loop.
macro_rules! dot_rows_avx2 {
    ($name:ident, $elem:ty, $features:literal, $load:path, $widen:expr) => {
        /// SAFETY (for callers): needs the named CPU features; `w.len() >= out.len() * x.len()`.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name(w: &[$elem], x: &[f32], out: &mut [f32]) {
            use std::arch::x86_64::*;
            const AHEAD_BYTES: usize = 8192;
            const STEP_BYTES: usize = 32 * size_of::<$elem>();
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
                    // SAFETY: j + 32 <= n <= k for both rows of k values; prefetches may point anywhere.
                    unsafe {
                        let ahead = wp.add(j).cast::<i8>().wrapping_add(AHEAD_BYTES);
                        let mut line = 0;
                        while line < STEP_BYTES {
                            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(line));
                            line += 64;
                        }
                        for (q, a) in acc.iter_mut().enumerate() {
                            *a = _mm256_fmadd_ps($load(wp.add(j + 8 * q)), _mm256_loadu_ps(xp.add(j + 8 * q)), *a);
                        }
                    }
                    j += 32;
                }
                let sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
                let mut l = [0f32; 8];
                // SAFETY: a store into a local array of one vector.
                unsafe { _mm256_storeu_ps(l.as_mut_ptr(), sum) };
                let mut s = ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
                for (a, b) in row[n..].iter().zip(&x[n..]) {
                    s = ($widen)(*a).mul_add(*b, s);
                }
                *o = s;
            }
        }
    };
}

dot_rows_avx2!(dot_rows_f32_avx2, f32, "avx2,fma", lanes::f32, |v: f32| v);
dot_rows_avx2!(dot_rows_bf16_avx2, u16, "avx2,fma", lanes::bf16, |b: u16| f32::from_bits((b as u32) << 16));
dot_rows_avx2!(dot_rows_f16_avx2, u16, "avx2,fma,f16c", lanes::f16, |b: u16| half::f16::from_bits(b).to_f32());

#[inline(always)]
fn dot_rows_portable<E: Copy>(w: &[E], x: &[f32], out: &mut [f32], widen: impl Fn(E) -> f32) {
    let k = x.len();
    for (row, o) in w.chunks_exact(k).zip(out.iter_mut()) {
        // 16 independent partial sums: wide enough for two 8-lane FMA chains.
        let mut acc = [0f32; 16];
        let (head, tail) = row.split_at(k - k % 16);
        let (xh, xt) = x.split_at(k - k % 16);
        for (wc, xc) in head.chunks_exact(16).zip(xh.chunks_exact(16)) {
            for j in 0..16 {
                acc[j] = widen(wc[j]).mul_add(xc[j], acc[j]);
            }
        }
        let mut s: f32 = acc.iter().sum();
        for (a, b) in tail.iter().zip(xt) {
            s += widen(*a) * b;
        }
        *o = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Relative to the size of the values summed, so a kernel that drops a term fails on any
    /// scale, and lengths first: a zip over a short vector would pass silently.
    fn check(fast: &[f32], slow: &[f32]) {
        assert_eq!(fast.len(), slow.len());
        let scale = slow.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (a, b) in fast.iter().zip(slow) {
            assert!((a - b).abs() <= 1e-5 * scale, "{a} vs {b} (scale {scale})");
        }
    }

    /// Seeded values, so a failure replays (candle's randn cannot be seeded on the CPU).
    fn seeded(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    #[test]
    fn fast_path_equals_matmul() {
        let dev = Device::Cpu;
        let w = Tensor::from_vec(seeded(37 * 70, 1), (37, 70), &dev).unwrap();
        let b = Tensor::from_vec(seeded(37, 2), 37, &dev).unwrap();
        let lin = FastLinear::new(Weight::Tensor(w), Some(b));
        // One token, a few (the multi-row kernel), and more than FEW_ROWS (candle's matmul).
        for (i, shape) in [(1, 1, 70), (1, 3, 70), (2, 4, 70), (3, 5, 70)].into_iter().enumerate() {
            let x = Tensor::from_vec(seeded(shape.0 * shape.1 * 70, 10 + i as u64), shape, &dev).unwrap();
            let fast = lin.forward_t(&x, false).unwrap();
            assert_eq!(fast.dims(), &[shape.0, shape.1, 37]);
            let slow = lin.forward_t(&x, true).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
            check(&fast.flatten_all().unwrap().to_vec1::<f32>().unwrap(), &slow);
        }
    }

    /// Every stored width through every kernel (AVX2 and portable) and through the tiled
    /// prefill, against a matmul on the widened values.
    #[test]
    fn sixteen_bit_kernels_equal_the_widened_matmul() {
        let (rows, cols) = (45, 83);
        let values: Vec<f32> = (0..rows * cols).map(|i| ((i * 37 % 101) as f32 - 50.0) / 64.0).collect();
        let x: Vec<f32> = (0..cols).map(|i| ((i * 13 % 29) as f32 - 14.0) / 16.0).collect();
        let want: Vec<f32> =
            (0..rows).map(|r| values[r * cols..(r + 1) * cols].iter().zip(&x).map(|(a, b)| a * b).sum()).collect();
        let bf16: Vec<u16> = values.iter().map(|&v| half::bf16::from_f32(v).to_bits()).collect();
        let f16: Vec<u16> = values.iter().map(|&v| half::f16::from_f32(v).to_bits()).collect();
        for w in [Rows::F32(&values), Rows::BF16(&bf16), Rows::F16(&f16)] {
            let mut fast = vec![0f32; rows];
            dot_rows(w, &x, &mut fast);
            check(&fast, &want);
            let mut portable = vec![0f32; rows];
            match w {
                Rows::F32(w) => dot_rows_portable(w, &x, &mut portable, |v| v),
                Rows::BF16(w) => dot_rows_portable(w, &x, &mut portable, |b| f32::from_bits((b as u32) << 16)),
                Rows::F16(w) => dot_rows_portable(w, &x, &mut portable, |b| half::f16::from_bits(b).to_f32()),
                Rows::Quant(_) => unreachable!("only the three widths are built here"),
            }
            check(&portable, &want);
            let mut widened = vec![0f32; rows * cols];
            w.widen_into(&mut widened);
            assert_eq!(widened, values, "these values are exact in every width");
        }
    }
}
