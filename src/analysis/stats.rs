//! Statistics and histograms of stored tensors, streamed over the raw bytes.
//!
//! Two passes over the data: the first finds count, min, max and the sum; the second the
//! squared deviations from the exact mean (so the std has no catastrophic cancellation,
//! even for RMSNorm weights near 1.0) and the histogram, whose range needs min and max.
//! Both passes split the bytes into chunks that rayon spreads over the cores; each chunk
//! checks for cancellation and reports progress.

use rayon::prelude::*;
use serde::Serialize;

use super::control::{Cancelled, Control};
use crate::checkpoint::Dtype;
use crate::checkpoint::dtype::bf16_bits_to_f32;

/// Elements per work item: large enough to amortise scheduling, small enough that cancel is prompt.
const CHUNK_ELEMS: usize = 1 << 18;
pub const MAX_BINS: usize = 4096;

/// A borrowed run of stored elements.
#[derive(Clone, Copy)]
pub struct DataView<'a> {
    pub dtype: Dtype,
    pub bytes: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Histogram {
    /// `counts.len() + 1` bin edges, as `numpy.histogram` returns them.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

/// Summary of one tensor (or of all tensors of a module).
///
/// `mean`, `std`, `min`, `max` and the histogram are over the finite values; NaN and ±Inf
/// are counted, never averaged, so one bad weight cannot hide every other number.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorStats {
    pub count: u64,
    pub mean: f64,
    /// Population standard deviation (ddof = 0), as `numpy.std` and `torch.std(unbiased=False)`.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    pub abs_max: f64,
    /// Element index of the largest |x| (into the views laid end to end): "show me the outlier".
    pub abs_max_index: u64,
    pub zeros: u64,
    pub nan: u64,
    pub inf: u64,
    pub histogram: Histogram,
}

impl TensorStats {
    /// Share of exact zeros among all elements.
    pub fn sparsity(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.zeros as f64 / self.count as f64 }
    }
}

#[derive(Clone, Copy)]
struct Pass1 {
    count: u64,
    finite: u64,
    sum: f64,
    min: f64,
    max: f64,
    zeros: u64,
    nan: u64,
    inf: u64,
}

impl Pass1 {
    const EMPTY: Pass1 =
        Pass1 { count: 0, finite: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY, zeros: 0, nan: 0, inf: 0 };

    fn merge(self, o: Pass1) -> Pass1 {
        Pass1 {
            count: self.count + o.count,
            finite: self.finite + o.finite,
            sum: self.sum + o.sum,
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            zeros: self.zeros + o.zeros,
            nan: self.nan + o.nan,
            inf: self.inf + o.inf,
        }
    }
}

/// Elements decoded at a time into a stack buffer, so the hot loops run over plain f32.
const BLOCK: usize = 2048;

/// Dtypes whose every value is exactly an f32: these take the fast f32 loops.
fn widens_to_f32_exactly(dtype: Dtype) -> bool {
    !matches!(dtype, Dtype::F64 | Dtype::I64 | Dtype::U64 | Dtype::I32 | Dtype::U32)
}

/// Calls `f` on consecutive blocks of at most BLOCK elements decoded to f32.
#[inline(always)]
fn for_each_block(dtype: Dtype, bytes: &[u8], mut f: impl FnMut(&[f32])) {
    let size = dtype.size_in_bytes();
    let mut buf = [0f32; BLOCK];
    for raw in bytes.chunks(BLOCK * size) {
        let n = raw.len() / size;
        match dtype {
            Dtype::F32 => {
                for (o, c) in buf.iter_mut().zip(raw.chunks_exact(4)) {
                    *o = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                }
            }
            Dtype::BF16 => {
                for (o, c) in buf.iter_mut().zip(raw.chunks_exact(2)) {
                    *o = bf16_bits_to_f32(u16::from_le_bytes([c[0], c[1]]));
                }
            }
            Dtype::F16 => {
                for (o, c) in buf.iter_mut().zip(raw.chunks_exact(2)) {
                    *o = half::f16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32();
                }
            }
            other => {
                for (o, c) in buf.iter_mut().zip(raw.chunks_exact(size)) {
                    *o = other.decode(c) as f32;
                }
            }
        }
        f(&buf[..n]);
    }
}

/// Calls `f` with every element widened to f64: the exact path for 64-bit and 32-bit-int dtypes.
#[inline]
fn for_each_value(dtype: Dtype, bytes: &[u8], mut f: impl FnMut(f64)) {
    if widens_to_f32_exactly(dtype) {
        for_each_block(dtype, bytes, |xs| xs.iter().for_each(|&x| f(x as f64)));
    } else {
        for c in bytes.chunks_exact(dtype.size_in_bytes()) {
            f(dtype.decode(c))
        }
    }
}

const LANES: usize = 8;

/// Pass 1 over f32 values. Plain single-width loops over an L1-resident block, written so
/// the compiler vectorises them: non-finite values become NaN, which `<`/`>` never select.
#[inline(always)]
fn pass1_f32(xs: &[f32], p: &mut Pass1) {
    let mut mn = [f32::INFINITY; LANES];
    let mut mx = [f32::NEG_INFINITY; LANES];
    let mut zeros = [0u32; LANES];
    let mut non_finite = [0u32; LANES];
    let blocks = xs.chunks_exact(LANES);
    let tail = blocks.remainder();
    for c in blocks {
        for j in 0..LANES {
            let x = c[j];
            let nf = x.to_bits() & 0x7f80_0000 == 0x7f80_0000;
            non_finite[j] += nf as u32;
            zeros[j] += (x == 0.0) as u32;
            let v = if nf { f32::NAN } else { x };
            mn[j] = if v < mn[j] { v } else { mn[j] };
            mx[j] = if v > mx[j] { v } else { mx[j] };
        }
    }
    for &x in tail {
        non_finite[0] += !x.is_finite() as u32;
        zeros[0] += (x == 0.0) as u32;
        if x.is_finite() {
            mn[0] = mn[0].min(x);
            mx[0] = mx[0].max(x);
        }
    }
    let nf: u64 = non_finite.iter().map(|&n| n as u64).sum();
    let mut sum = [0f64; 4];
    if nf == 0 {
        let quads = xs.chunks_exact(4);
        let rest: f64 = quads.remainder().iter().map(|&x| x as f64).sum();
        for c in quads {
            for j in 0..4 {
                sum[j] += c[j] as f64;
            }
        }
        sum[0] += rest;
    } else {
        let nan = xs.iter().filter(|x| x.is_nan()).count() as u64;
        p.nan += nan;
        p.inf += nf - nan;
        sum[0] = xs.iter().filter(|x| x.is_finite()).map(|&x| x as f64).sum();
    }
    p.count += xs.len() as u64;
    p.finite += xs.len() as u64 - nf;
    p.zeros += zeros.iter().map(|&n| n as u64).sum::<u64>();
    p.min = p.min.min(mn.iter().fold(f32::INFINITY, |a, &b| a.min(b)) as f64);
    p.max = p.max.max(mx.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64);
    p.sum += (sum[0] + sum[1]) + (sum[2] + sum[3]);
}

/// Runs `f` compiled for AVX2+FMA when the CPU has them (the loops below vectorise twice
/// as wide), and for the baseline target otherwise. The binary stays portable.
#[inline(always)]
fn with_best_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: the features were detected on this CPU just above.
            return unsafe { avx2(f) };
        }
    }
    f()
}

fn pass1_chunk(dtype: Dtype, bytes: &[u8]) -> Pass1 {
    with_best_simd(|| pass1_chunk_impl(dtype, bytes))
}

#[inline(always)]
fn pass1_chunk_impl(dtype: Dtype, bytes: &[u8]) -> Pass1 {
    let mut p = Pass1::EMPTY;
    if widens_to_f32_exactly(dtype) {
        for_each_block(dtype, bytes, |xs| pass1_f32(xs, &mut p));
        return p;
    }
    for_each_value(dtype, bytes, |x| {
        p.count += 1;
        if x.is_finite() {
            p.finite += 1;
            p.sum += x;
            p.min = p.min.min(x);
            p.max = p.max.max(x);
            p.zeros += (x == 0.0) as u64;
        } else if x.is_nan() {
            p.nan += 1;
        } else {
            p.inf += 1;
        }
    });
    p
}

/// Bin indices of a block of f32 values (`bins()` for values outside the range), eight at a
/// time with AVX2 where the CPU has it: the estimate and both edge corrections are vector
/// operations (the edges come in by gather), leaving only the counter increments scalar.
fn bin_block(binner: &Binner, xs: &[f32], out: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 was detected just above; see `bin_block_avx2` for the indexing.
            return unsafe { bin_block_avx2(binner, xs, out) };
        }
    }
    bin_block_scalar(binner, xs, out, 0);
}

fn bin_block_scalar(binner: &Binner, xs: &[f32], out: &mut [u32], from: usize) {
    let outside = binner.bins() as u32;
    for k in from..xs.len() {
        out[k] = binner.bin_f32(xs[k]).map_or(outside, |i| i as u32);
    }
}

/// SAFETY (for callers): needs AVX2. Every gather index is clamped into 0..=bins-1 (lower
/// edge) or 1..=bins (upper edge), and `edges_up` has bins + 1 entries.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn bin_block_avx2(binner: &Binner, xs: &[f32], out: &mut [u32]) {
    use std::arch::x86_64::*;
    assert!(out.len() >= xs.len());
    let last_bin = (binner.edges_up.len() - 2) as i32;
    let n = xs.len() - xs.len() % 8;
    let edges = binner.edges_up.as_ptr();
    let first = _mm256_set1_ps(binner.first_up);
    let last = _mm256_set1_ps(binner.last_up);
    let scale = _mm256_set1_ps(binner.scale32);
    let lb = _mm256_set1_epi32(last_bin);
    let zero = _mm256_setzero_si256();
    let all_ones = _mm256_set1_epi32(-1);
    let outside = _mm256_set1_epi32(last_bin + 1);
    let mut k = 0;
    while k < n {
        // SAFETY: k + 8 <= n <= xs.len() <= out.len(); gathers as documented above.
        unsafe {
            let x = _mm256_loadu_ps(xs.as_ptr().add(k));
            let in_range = _mm256_and_ps(_mm256_cmp_ps::<_CMP_GE_OQ>(x, first), _mm256_cmp_ps::<_CMP_LE_OQ>(x, last));
            let estimate = _mm256_cvttps_epi32(_mm256_mul_ps(_mm256_sub_ps(x, first), scale));
            let mut i = _mm256_min_epi32(_mm256_max_epi32(estimate, zero), lb);
            let lower = _mm256_i32gather_ps::<4>(edges, i);
            // Comparison masks are all-ones (−1): adding one steps the index down.
            i = _mm256_max_epi32(_mm256_add_epi32(i, _mm256_castps_si256(_mm256_cmp_ps::<_CMP_LT_OQ>(x, lower))), zero);
            let upper = _mm256_i32gather_ps::<4>(edges.add(1), i);
            let not_last = _mm256_xor_si256(_mm256_cmpeq_epi32(i, lb), all_ones);
            let up = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps::<_CMP_GE_OQ>(x, upper)), not_last);
            i = _mm256_sub_epi32(i, up);
            i = _mm256_blendv_epi8(outside, i, _mm256_castps_si256(in_range));
            _mm256_storeu_si256(out.as_mut_ptr().add(k) as *mut __m256i, i);
        }
        k += 8;
    }
    bin_block_scalar(binner, xs, out, n);
}

/// Bin edges exactly as `numpy.linspace(first, last, bins + 1)` computes them.
pub fn numpy_edges(first: f64, last: f64, bins: usize) -> Vec<f64> {
    let step = (last - first) / bins as f64;
    let mut edges: Vec<f64> = (0..=bins).map(|i| i as f64 * step + first).collect();
    edges[bins] = last;
    edges
}

/// `numpy.histogram`'s range: a zero-width range is widened by 0.5 on each side.
pub fn numpy_range(min: f64, max: f64) -> (f64, f64) {
    if min == max { (min - 0.5, max + 0.5) } else { (min, max) }
}

/// numpy's uniform-bin rule: an estimate from the value's position, then one correction
/// step against the bin edges. Because the edges decide, the estimate may come from a
/// multiplication by a precomputed scale instead of numpy's division: both land within one
/// bin of the truth, and the correction makes the result the same bin numpy reports.
#[derive(Clone)]
pub struct Binner {
    first: f64,
    last: f64,
    scale: f64,
    edges: Vec<f64>,
    /// Each edge rounded up to f32: for an f32 value x and any f64 edge e,
    /// x < e exactly when x < ceil_f32(e), so f32 data can be binned in f32 with numpy's result.
    edges_up: Vec<f32>,
    first_up: f32,
    last_up: f32,
    scale32: f32,
}

/// The smallest f32 that is ≥ x.
fn ceil_f32(x: f64) -> f32 {
    let r = x as f32;
    if (r as f64) < x { r.next_up() } else { r }
}

/// The largest f32 that is ≤ x.
fn floor_f32(x: f64) -> f32 {
    let r = x as f32;
    if (r as f64) > x { r.next_down() } else { r }
}

impl Binner {
    pub fn new(first: f64, last: f64, bins: usize) -> Self {
        let edges = numpy_edges(first, last, bins);
        Self {
            first,
            last,
            scale: bins as f64 / (last - first),
            edges_up: edges.iter().map(|&e| ceil_f32(e)).collect(),
            first_up: ceil_f32(first),
            last_up: floor_f32(last),
            scale32: (bins as f64 / (last - first)) as f32,
            edges,
        }
    }

    /// The same bin as [`Binner::bin`] for an f32 value, computed in f32 (the estimate may
    /// be off by one; the exact edge comparisons correct it).
    #[inline(always)]
    pub fn bin_f32(&self, x: f32) -> Option<usize> {
        if !(x >= self.first_up && x <= self.last_up) {
            return None;
        }
        let last_bin = (self.edges_up.len() - 2) as i32;
        // i32, not usize: float → i32 is one instruction, float → u64 is a branchy sequence.
        let mut i = (((x - self.first_up) * self.scale32) as i32).clamp(0, last_bin);
        // Exact: x < edge ⇔ x < edges_up (x is an f32).
        i -= (x < self.edges_up[i as usize]) as i32;
        i += (i != last_bin && x >= self.edges_up[i as usize + 1]) as i32;
        Some(i as usize)
    }

    pub fn bins(&self) -> usize {
        self.edges.len() - 1
    }

    /// Bin index of `x`, or None outside [first, last] (NaN included).
    #[inline]
    pub fn bin(&self, x: f64) -> Option<usize> {
        if !(x >= self.first && x <= self.last) {
            return None;
        }
        let last_bin = self.edges.len() - 2;
        let mut i = (((x - self.first) * self.scale) as usize).min(last_bin);
        if x < self.edges[i] {
            i = i.saturating_sub(1);
        } else if i != last_bin && x >= self.edges[i + 1] {
            i += 1;
        }
        Some(i)
    }
}

/// Pass 2's accumulator for one chunk.
struct Tally {
    /// Four interleaved count arrays: neighbouring values often share a bin, and
    /// incrementing one counter back to back stalls on the store it just made.
    counts: Vec<[u32; 4]>,
    sq: [f64; 4],
    mean: f64,
    abs_max: f64,
    /// First element index whose |x| is the largest.
    found: u64,
}

impl Tally {
    fn new(bins: usize, mean: f64, abs_max: f64) -> Self {
        Self { counts: vec![[0; 4]; bins + 1], sq: [0.0; 4], mean, abs_max, found: u64::MAX }
    }

    /// The f32 fast path: binning, squared deviations and the |x| search as separate loops
    /// over an L1-resident block, so each can be tight (the second vectorises).
    #[inline(always)]
    fn add_block_f32(&mut self, binner: &Binner, xs: &[f32], first_index: u64) {
        let mut idx = [0u32; BLOCK];
        bin_block(binner, xs, &mut idx);
        // counts has one extra row where out-of-range values land and are dropped.
        // Four at a time, each into its own column: no two increments in a row touch the
        // same counter, so none waits for the previous store.
        let idx = &idx[..xs.len()];
        let quads = idx.chunks_exact(4);
        let rest = quads.remainder();
        for q in quads {
            self.counts[q[0] as usize][0] += 1;
            self.counts[q[1] as usize][1] += 1;
            self.counts[q[2] as usize][2] += 1;
            self.counts[q[3] as usize][3] += 1;
        }
        for &i in rest {
            self.counts[i as usize][0] += 1;
        }
        let mean = self.mean;
        let mut sq = [0f64; 4];
        let quads = xs.chunks_exact(4);
        let tail = quads.remainder();
        for c in quads {
            for j in 0..4 {
                let d = c[j] as f64 - mean;
                sq[j] += d * d;
            }
        }
        for &x in tail {
            let d = x as f64 - mean;
            sq[0] += d * d;
        }
        let block_sq = (sq[0] + sq[1]) + (sq[2] + sq[3]);
        if block_sq.is_finite() {
            self.sq[0] += block_sq;
        } else {
            // A NaN or ±Inf in the block: redo it counting finite values only.
            self.sq[0] += xs.iter().filter(|x| x.is_finite()).map(|&x| (x as f64 - mean).powi(2)).sum::<f64>();
        }
        if first_index < self.found {
            let block_max = xs.iter().fold(0f32, |a, &x| if x.abs() > a { x.abs() } else { a });
            if block_max as f64 == self.abs_max
                && let Some(k) = xs.iter().position(|&x| x.abs() as f64 == self.abs_max)
            {
                self.found = self.found.min(first_index + k as u64);
            }
        }
    }

    #[inline(always)]
    fn add(&mut self, binner: &Binner, x: f64, index: u64) {
        if let Some(i) = binner.bin(x) {
            let lane = (index & 3) as usize;
            debug_assert!(i < binner.bins());
            self.counts[i][lane] += 1;
            let d = x - self.mean;
            self.sq[lane] += d * d;
            if x.abs() == self.abs_max && index < self.found {
                self.found = index;
            }
        }
    }
}

/// Statistics and a `bins`-bin histogram over one or more runs of stored data
/// (one run for a tensor; all of a module's tensors for its aggregate).
pub fn compute_stats(views: &[DataView<'_>], bins: usize, ctl: &Control) -> Result<TensorStats, Cancelled> {
    let bins = bins.clamp(1, MAX_BINS);
    let total_bytes: u64 = views.iter().map(|v| v.bytes.len() as u64).sum();
    ctl.add_total(2 * total_bytes);

    // (dtype, bytes, index of the chunk's first element across all views)
    let mut chunks: Vec<(Dtype, &[u8], u64)> = Vec::new();
    let mut first = 0u64;
    for v in views {
        let size = v.dtype.size_in_bytes();
        for c in v.bytes.chunks(CHUNK_ELEMS * size) {
            chunks.push((v.dtype, c, first));
            first += (c.len() / size) as u64;
        }
    }

    let p1 = chunks
        .par_iter()
        .map(|&(dtype, bytes, _)| {
            ctl.check()?;
            let p = pass1_chunk(dtype, bytes);
            ctl.advance(bytes.len() as u64);
            Ok(p)
        })
        .try_reduce(|| Pass1::EMPTY, |a, b| Ok(a.merge(b)))?;

    let has_finite = p1.finite > 0;
    let mean = if has_finite { p1.sum / p1.finite as f64 } else { f64::NAN };
    let (min, max) = if has_finite { (p1.min, p1.max) } else { (f64::NAN, f64::NAN) };
    let abs_max = if has_finite { min.abs().max(max.abs()) } else { f64::NAN };
    let (lo, hi) = if has_finite { numpy_range(min, max) } else { (-0.5, 0.5) };
    let binner = Binner::new(lo, hi, bins);

    let (sq_dev, counts, abs_max_index) = chunks
        .par_iter()
        .map(|&(dtype, bytes, first)| {
            ctl.check()?;
            let mut t = Tally::new(bins, mean, abs_max);
            let binner = &binner;
            let t = with_best_simd(move || {
                if widens_to_f32_exactly(dtype) {
                    let mut at = first;
                    for_each_block(dtype, bytes, |xs| {
                        t.add_block_f32(binner, xs, at);
                        at += xs.len() as u64;
                    });
                } else {
                    let mut at = first;
                    for_each_value(dtype, bytes, |x| {
                        t.add(binner, x, at);
                        at += 1;
                    });
                }
                t
            });
            let (sq, counts, found) = (t.sq, t.counts, t.found);
            ctl.advance(bytes.len() as u64);
            let counts: Vec<u64> = counts[..bins].iter().map(|c| c.iter().map(|&n| n as u64).sum()).collect();
            Ok(((sq[0] + sq[1]) + (sq[2] + sq[3]), counts, found))
        })
        .try_reduce(
            || (0.0, vec![0u64; bins], u64::MAX),
            |(s1, mut c1, f1), (s2, c2, f2)| {
                for (a, b) in c1.iter_mut().zip(c2) {
                    *a += b;
                }
                Ok((s1 + s2, c1, f1.min(f2)))
            },
        )?;

    let std = if has_finite { (sq_dev / p1.finite as f64).sqrt() } else { f64::NAN };
    Ok(TensorStats {
        count: p1.count,
        mean,
        std,
        min,
        max,
        abs_max,
        abs_max_index: if abs_max_index == u64::MAX { 0 } else { abs_max_index },
        zeros: p1.zeros,
        nan: p1.nan,
        inf: p1.inf,
        histogram: Histogram { edges: binner.edges, counts },
    })
}

/// The first `limit` elements (index, value) whose value lies in [lo, hi]: what a click on a
/// histogram bar lists. Stops early, and checks for cancel every chunk.
pub fn values_in_range(dtype: Dtype, bytes: &[u8], lo: f64, hi: f64, limit: usize, ctl: &Control) -> Vec<(usize, f64)> {
    let size = dtype.size_in_bytes();
    let mut found = Vec::new();
    for (c, chunk) in bytes.chunks(CHUNK_ELEMS * size).enumerate() {
        if ctl.is_cancelled() {
            break;
        }
        let mut i = c * CHUNK_ELEMS;
        for_each_value(dtype, chunk, |x| {
            if found.len() < limit && x >= lo && x <= hi {
                found.push((i, x));
            }
            i += 1;
        });
        if found.len() >= limit {
            break;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn small_vector_matches_numpy() {
        // numpy: np.histogram([0,1,2,3,4], bins=4) -> counts [1,1,1,2], edges [0,1,2,3,4]
        let bytes = f32_bytes(&[0.0, 1.0, 2.0, 3.0, 4.0]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &Control::new()).unwrap();
        assert_eq!(s.histogram.counts, vec![1, 1, 1, 2]);
        assert_eq!(s.histogram.edges, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.0);
        assert!((s.std - 2f64.sqrt()).abs() < 1e-12);
        assert_eq!(s.zeros, 1);
        assert_eq!(s.abs_max_index, 4);
    }

    #[test]
    fn nan_and_inf_are_counted_not_averaged() {
        let bytes = f32_bytes(&[1.0, f32::NAN, f32::INFINITY, 3.0, f32::NEG_INFINITY]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 2, &Control::new()).unwrap();
        assert_eq!((s.count, s.nan, s.inf), (5, 1, 2));
        assert_eq!((s.mean, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(s.histogram.counts.iter().sum::<u64>(), 2);
    }

    #[test]
    fn constant_tensor_widens_range_like_numpy() {
        let bytes = f32_bytes(&[1.0; 10]);
        let s = compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &Control::new()).unwrap();
        assert_eq!(s.histogram.edges.first(), Some(&0.5));
        assert_eq!(s.histogram.edges.last(), Some(&1.5));
        assert_eq!(s.histogram.counts, vec![0, 0, 10, 0]);
        assert_eq!(s.std, 0.0);
    }

    #[test]
    fn vector_binning_equals_scalar_binning() {
        // Values on and around every edge, NaN, ±Inf and out-of-range ones.
        let binner = Binner::new(-1.0, 1.0, 7);
        let mut xs: Vec<f32> = binner
            .edges
            .iter()
            .flat_map(|&e| {
                let e = e as f32;
                [e, e.next_up(), e.next_down()]
            })
            .collect();
        xs.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 2.0, -2.0, 0.0, 0.3, -0.7]);
        let mut fast = vec![0u32; xs.len()];
        let mut slow = vec![0u32; xs.len()];
        bin_block(&binner, &xs, &mut fast);
        bin_block_scalar(&binner, &xs, &mut slow, 0);
        assert_eq!(fast, slow);
        for (x, &i) in xs.iter().zip(&slow) {
            assert_eq!(binner.bin(*x as f64).map_or(7, |b| b as u32), i, "{x}");
        }
    }

    #[test]
    fn cancel_stops_work() {
        let bytes = f32_bytes(&vec![1.0; 1 << 20]);
        let ctl = Control::new();
        ctl.cancel();
        assert_eq!(compute_stats(&[DataView { dtype: Dtype::F32, bytes: &bytes }], 4, &ctl), Err(Cancelled));
    }
}
