//! GGML tensor types: block geometry, dequantization and ggml's reference quantizers.
//!
//! Each decoder mirrors gguf-py's `gguf.quants` (itself a transcription of ggml's
//! `ggml-quants.c`) operation by operation in f32, so the values are bit-identical to
//! `gguf.quants.dequantize`: the same products and sums, rounded in the same order, and
//! Rust never fuses `a * b + c` into one rounding. `tests/gguf.rs` checks it on files that
//! gguf-py wrote.

use std::fmt;

use half::f16;

/// A GGML tensor type id as stored in a GGUF tensor info. Ids this program does not know
/// (newer formats) are kept, so such tensors still list with their number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GgmlType(pub u32);

/// (id, name, elements per block, bytes per block), from gguf-py's `GGML_QUANT_SIZES`.
const TYPES: &[(u32, &str, usize, usize)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 40),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
];

/// Elements per super-block of the K-quants.
pub const QK_K: usize = 256;

impl GgmlType {
    pub const F32: Self = Self(0);
    pub const F16: Self = Self(1);
    pub const Q4_0: Self = Self(2);
    pub const Q4_1: Self = Self(3);
    pub const Q5_0: Self = Self(6);
    pub const Q5_1: Self = Self(7);
    pub const Q8_0: Self = Self(8);
    pub const Q2_K: Self = Self(10);
    pub const Q3_K: Self = Self(11);
    pub const Q4_K: Self = Self(12);
    pub const Q5_K: Self = Self(13);
    pub const Q6_K: Self = Self(14);
    pub const BF16: Self = Self(30);

    /// The types whose values this program can decode, in ggml's id order.
    pub const READABLE: [Self; 13] = [
        Self::F32,
        Self::F16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2_K,
        Self::Q3_K,
        Self::Q4_K,
        Self::Q5_K,
        Self::Q6_K,
        Self::BF16,
    ];

    fn entry(self) -> Option<&'static (u32, &'static str, usize, usize)> {
        TYPES.iter().find(|t| t.0 == self.0)
    }

    /// ggml's name (`Q4_K`); None for an id newer than this program.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|t| t.1)
    }

    pub fn from_name(name: &str) -> Option<Self> {
        TYPES.iter().find(|t| t.1.eq_ignore_ascii_case(name)).map(|t| Self(t.0))
    }

    /// (elements per block, bytes per block); None for an unknown id, whose size nobody can check.
    pub fn block_geometry(self) -> Option<(usize, usize)> {
        self.entry().map(|t| (t.2, t.3))
    }

    pub fn block_size(self) -> Option<usize> {
        self.block_geometry().map(|g| g.0)
    }

    pub fn bytes_per_block(self) -> Option<usize> {
        self.block_geometry().map(|g| g.1)
    }

    /// Storage cost per weight including the block's scales (Q4_0: 18 bytes / 32 = 4.5).
    pub fn bits_per_weight(self) -> Option<f64> {
        self.block_geometry().map(|(n, b)| (b * 8) as f64 / n as f64)
    }

    pub fn is_readable(self) -> bool {
        Self::READABLE.contains(&self)
    }

    /// A block format (more than one element per block) rather than a plain scalar type.
    pub fn is_quantized(self) -> bool {
        self.block_size().is_some_and(|n| n > 1)
    }

    /// Bytes `numel` elements take, when `numel` is whole blocks and the type is known.
    pub fn bytes_for(self, numel: u64) -> Option<u64> {
        let (n, b) = self.block_geometry()?;
        numel.is_multiple_of(n as u64).then(|| numel / n as u64).and_then(|blocks| blocks.checked_mul(b as u64))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "type {}", self.0),
        }
    }
}

/// Why a type's values cannot be produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("values not readable: {}", describe(*.0))]
pub struct NotReadable(pub GgmlType);

fn describe(t: GgmlType) -> String {
    match t.name() {
        Some(name) => format!("{name} (type {}) has no decoder here", t.0),
        None => format!("type {}", t.0),
    }
}

#[inline]
pub(crate) fn half_at(b: &[u8], i: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[i], b[i + 1]])).to_f32()
}

/// Dequantizes whole blocks of `ty` from `bytes` into `out` (`out.len()` elements, which
/// must be a whole number of blocks that `bytes` holds).
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), NotReadable> {
    let (n, size) = ty.block_geometry().filter(|_| ty.is_readable()).ok_or(NotReadable(ty))?;
    assert!(out.len().is_multiple_of(n) && bytes.len() >= out.len() / n * size, "dequantize_into: not whole blocks");
    let block_fn: fn(&[u8], &mut [f32]) = match ty {
        GgmlType::F32 => |b, o| o[0] = f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        GgmlType::F16 => |b, o| o[0] = half_at(b, 0),
        GgmlType::BF16 => |b, o| o[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16),
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        GgmlType::Q5_0 => q5_0,
        GgmlType::Q5_1 => q5_1,
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q2_K => q2_k,
        GgmlType::Q3_K => q3_k,
        GgmlType::Q4_K => q4_k,
        GgmlType::Q5_K => q5_k,
        GgmlType::Q6_K => q6_k,
        _ => return Err(NotReadable(ty)),
    };
    for (block, o) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(n)) {
        block_fn(block, o);
    }
    Ok(())
}

/// Dequantizes every whole block of `bytes`.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>, NotReadable> {
    let (n, size) = ty.block_geometry().ok_or(NotReadable(ty))?;
    let mut out = vec![0f32; bytes.len() / size * n];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

/// The 4-bit code `j` (0..32) of a 32-weight block: low nibbles first, then high nibbles.
#[inline]
pub(crate) fn nibble(qs: &[u8], j: usize) -> u8 {
    (qs[j % 16] >> (4 * (j / 16))) & 0x0f
}

fn q4_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, w) in o.iter_mut().enumerate() {
        *w = d * (nibble(&b[2..], j) as i8 - 8) as f32;
    }
}

fn q4_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    for (j, w) in o.iter_mut().enumerate() {
        *w = d * nibble(&b[4..], j) as f32 + m;
    }
}

/// The 5-bit code `j` of a Q5_0/Q5_1 block: a nibble plus bit `j` of the 32-bit `qh`.
#[inline]
pub(crate) fn five_bit(qh: &[u8], qs: &[u8], j: usize) -> u8 {
    let high = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]) >> j & 1;
    nibble(qs, j) | ((high as u8) << 4)
}

fn q5_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, w) in o.iter_mut().enumerate() {
        *w = d * (five_bit(&b[2..6], &b[6..], j) as i8 - 16) as f32;
    }
}

fn q5_1(b: &[u8], o: &mut [f32]) {
    let (d, m) = (half_at(b, 0), half_at(b, 2));
    for (j, w) in o.iter_mut().enumerate() {
        *w = d * five_bit(&b[4..8], &b[8..], j) as f32 + m;
    }
}

fn q8_0(b: &[u8], o: &mut [f32]) {
    let d = half_at(b, 0);
    for (j, w) in o.iter_mut().enumerate() {
        *w = b[2 + j] as i8 as f32 * d;
    }
}

/// The 2-bit code `i` (0..256) of Q2_K/Q3_K: 32-byte groups, each read at shifts 0, 2, 4, 6.
#[inline]
pub(crate) fn crumb(qs: &[u8], i: usize) -> u8 {
    let (group, shift, l) = (i / 128, (i % 128) / 32, i % 32);
    (qs[group * 32 + l] >> (2 * shift)) & 3
}

/// Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], d, dmin.
fn q2_k(b: &[u8], o: &mut [f32]) {
    let (scales, qs) = (&b[..16], &b[16..80]);
    let (d, dmin) = (half_at(b, 80), half_at(b, 82));
    for (i, w) in o.iter_mut().enumerate() {
        let sc = scales[i / 16];
        let dl = d * (sc & 0x0f) as f32;
        let ml = dmin * (sc >> 4) as f32;
        *w = dl * crumb(qs, i) as f32 - ml;
    }
}

/// The sixteen 6-bit scales of a Q3_K block, offset by −32.
pub fn q3_k_scales(scales: &[u8]) -> [i8; 16] {
    std::array::from_fn(|i| {
        let low = (scales[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (scales[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        (low | (high << 4)) as i8 - 32
    })
}

/// The code `i` (−4…3) of a Q3_K block: its two low bits, less 4 unless its hmask bit is set.
#[inline]
pub(crate) fn q3_k_code(hmask: &[u8], qs: &[u8], i: usize) -> i8 {
    let high_unset = ((hmask[i % 32] >> (i / 32)) & 1) ^ 1;
    crumb(qs, i) as i8 - (high_unset << 2) as i8
}

/// Q3_K: hmask[32], qs[64], scales[12], d. A set hmask bit means no −4 offset.
fn q3_k(b: &[u8], o: &mut [f32]) {
    let (hmask, qs) = (&b[..32], &b[32..96]);
    let scales = q3_k_scales(&b[96..108]);
    let d = half_at(b, 108);
    for (i, w) in o.iter_mut().enumerate() {
        let dl = d * scales[i / 16] as f32;
        *w = dl * q3_k_code(hmask, qs, i) as f32;
    }
}

/// The eight 6-bit (scale, min) pairs packed in 12 bytes by Q4_K and Q5_K.
pub fn k_scale_min(scales: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (d, m, md) = (&scales[0..4], &scales[4..8], &scales[8..12]);
    let sc = std::array::from_fn(|j| if j < 4 { d[j] & 0x3f } else { (md[j - 4] & 0x0f) | ((d[j - 4] >> 2) & 0x30) });
    let mn = std::array::from_fn(|j| if j < 4 { m[j] & 0x3f } else { (md[j - 4] >> 4) | ((m[j - 4] >> 2) & 0x30) });
    (sc, mn)
}

/// The 4-bit code `i` (0..256) of Q4_K/Q5_K: 32-byte groups, low nibbles then high nibbles.
#[inline]
pub(crate) fn k_nibble(qs: &[u8], i: usize) -> u8 {
    (qs[(i / 64) * 32 + i % 32] >> (4 * ((i % 64) / 32))) & 0x0f
}

/// Q4_K and Q5_K share their header: d, dmin, then the packed scales and mins.
fn k_header(b: &[u8]) -> ([f32; 8], [f32; 8]) {
    let (d, dmin) = (half_at(b, 0), half_at(b, 2));
    let (sc, mn) = k_scale_min(&b[4..16]);
    (std::array::from_fn(|j| d * sc[j] as f32), std::array::from_fn(|j| dmin * mn[j] as f32))
}

fn q4_k(b: &[u8], o: &mut [f32]) {
    let (d, dm) = k_header(b);
    let qs = &b[16..144];
    for (i, w) in o.iter_mut().enumerate() {
        *w = d[i / 32] * k_nibble(qs, i) as f32 - dm[i / 32];
    }
}

/// The 5-bit code `i` (0…31) of a Q5_K block: its nibble, and bit `i / 32` of `qh[i % 32]`
/// as the fifth bit.
#[inline]
pub(crate) fn q5_k_code(qh: &[u8], qs: &[u8], i: usize) -> u8 {
    k_nibble(qs, i) | (((qh[i % 32] >> (i / 32)) & 1) << 4)
}

/// Q5_K: Q4_K's layout with qh[32] before qs.
fn q5_k(b: &[u8], o: &mut [f32]) {
    let (d, dm) = k_header(b);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for (i, w) in o.iter_mut().enumerate() {
        *w = d[i / 32] * q5_k_code(qh, qs, i) as f32 - dm[i / 32];
    }
}

/// The 6-bit code `i` of a Q6_K block (before the −32 offset).
#[inline]
pub fn q6_k_code(ql: &[u8], qh: &[u8], i: usize) -> u8 {
    let (half, rest) = (i / 128, i % 128);
    let low = (ql[half * 64 + rest % 64] >> (4 * (rest / 64))) & 0x0f;
    let high = (qh[half * 32 + rest % 32] >> (2 * (rest / 32))) & 0x03;
    low | (high << 4)
}

/// Q6_K: ql[128], qh[64], scales[16] (i8), d.
fn q6_k(b: &[u8], o: &mut [f32]) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let d = half_at(b, 208);
    for (i, w) in o.iter_mut().enumerate() {
        let dl = d * scales[i / 16] as i8 as f32;
        *w = dl * (q6_k_code(ql, qh, i) as i8 - 32) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_bits_per_weight() {
        assert_eq!(GgmlType::Q4_0.bits_per_weight(), Some(4.5));
        assert_eq!(GgmlType::Q4_1.bits_per_weight(), Some(5.0));
        assert_eq!(GgmlType::Q8_0.bits_per_weight(), Some(8.5));
        assert_eq!(GgmlType::Q4_K.bits_per_weight(), Some(4.5));
        assert_eq!(GgmlType::Q6_K.bits_per_weight(), Some(6.5625));
        assert_eq!(GgmlType(99).bits_per_weight(), None);
        assert_eq!(GgmlType(99).to_string(), "type 99");
        assert_eq!(GgmlType::from_name("q4_k"), Some(GgmlType::Q4_K));
        assert_eq!(GgmlType::Q4_1.bytes_for(64), Some(40));
        assert_eq!(GgmlType::Q4_1.bytes_for(33), None);
    }

    #[test]
    fn unreadable_types_say_so() {
        let err = dequantize(GgmlType(16), &[0; 66]).unwrap_err();
        assert_eq!(err.to_string(), "values not readable: IQ2_XXS (type 16) has no decoder here");
        assert_eq!(dequantize(GgmlType(77), &[0; 4]).unwrap_err().to_string(), "values not readable: type 77");
    }

    #[test]
    fn q4_1_formula_by_hand() {
        // d = 0.5, m = -1.0, codes 0..15 then 15..0 in the high nibbles.
        let mut b = vec![];
        b.extend(f16::from_f32(0.5).to_bits().to_le_bytes());
        b.extend(f16::from_f32(-1.0).to_bits().to_le_bytes());
        b.extend((0..16u8).map(|l| (l % 16) | ((15 - l) << 4)));
        let v = dequantize(GgmlType::Q4_1, &b).unwrap();
        assert_eq!(v[0], -1.0);
        assert_eq!(v[15], 6.5);
        assert_eq!(v[16], 6.5);
        assert_eq!(v[31], -1.0);
    }
}
