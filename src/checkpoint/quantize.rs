//! ggml's reference quantizers for Q8_0, Q4_0 and Q4_1, written the way gguf-py's
//! `gguf.quants.quantize` computes them (f32 throughout, the same rounding steps) so the
//! bytes are identical: the "quantize what-if" shows what llama.cpp's converter would write.

use half::f16;

use super::quant::GgmlType;

/// Quantizes `values` (a whole number of 32-element blocks) to `ty`; None for a type with no
/// reference quantizer here.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Option<Vec<u8>> {
    let (n, size) = ty.block_geometry()?;
    let block_fn: fn(&[f32], &mut [u8]) = match ty {
        GgmlType::Q8_0 => q8_0,
        GgmlType::Q4_0 => q4_0,
        GgmlType::Q4_1 => q4_1,
        _ => return None,
    };
    assert!(values.len().is_multiple_of(n), "quantize: {} values are not whole {ty} blocks", values.len());
    let mut out = vec![0u8; values.len() / n * size];
    for (x, o) in values.chunks_exact(n).zip(out.chunks_exact_mut(size)) {
        block_fn(x, o);
    }
    Some(out)
}

pub const QUANTIZABLE: [GgmlType; 3] = [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1];

fn put_half(out: &mut [u8], at: usize, x: f32) {
    out[at..at + 2].copy_from_slice(&f16::from_f32(x).to_bits().to_le_bytes());
}

/// `1 / d`, or 0 for an all-zero block (gguf-py's `np.where(d == 0, 0, 1 / d)`).
fn inverse(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

/// gguf-py's `np_roundf`: round half away from zero, step by step in f32.
fn roundf(n: f32) -> f32 {
    let a = n.abs();
    let floored = a.floor();
    let b = floored + (2.0 * (a - floored)).floor();
    if n > 0.0 {
        b
    } else if n < 0.0 {
        -b
    } else {
        0.0 * b
    }
}

fn q8_0(x: &[f32], out: &mut [u8]) {
    let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = inverse(d);
    put_half(out, 0, d);
    for (o, &v) in out[2..].iter_mut().zip(x) {
        *o = roundf(v * id) as i8 as u8;
    }
}

/// Low nibble holds element `j`, high nibble element `j + 16`.
fn pack_nibbles(codes: &[u8; 32], out: &mut [u8]) {
    for j in 0..16 {
        out[j] = codes[j] | (codes[j + 16] << 4);
    }
}

fn q4_0(x: &[f32], out: &mut [u8]) {
    // The element of largest magnitude, first one on ties (numpy's argmax), keeps its sign.
    let mut max = 0f32;
    let mut amax = -1f32;
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    let d = max / -8.0;
    let id = inverse(d);
    let codes: [u8; 32] = std::array::from_fn(|j| ((x[j] * id + 8.5).trunc() as u8).min(15));
    put_half(out, 0, d);
    pack_nibbles(&codes, &mut out[2..]);
}

fn q4_1(x: &[f32], out: &mut [u8]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let min = x.iter().copied().fold(f32::INFINITY, f32::min);
    let d = (max - min) / 15.0;
    let id = inverse(d);
    let codes: [u8; 32] = std::array::from_fn(|j| (((x[j] - min) * id + 0.5).trunc() as u8).min(15));
    put_half(out, 0, d);
    put_half(out, 2, min);
    pack_nibbles(&codes, &mut out[4..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::quant::dequantize;

    #[test]
    fn round_half_away_from_zero() {
        assert_eq!(roundf(2.5), 3.0);
        assert_eq!(roundf(-2.5), -3.0);
        assert_eq!(roundf(2.4999998), 2.0);
    }

    #[test]
    fn q8_0_round_trip_is_close() {
        let x: Vec<f32> = (0..64).map(|i| (i as f32 - 30.0) / 7.0).collect();
        let q = quantize(GgmlType::Q8_0, &x).unwrap();
        let back = dequantize(GgmlType::Q8_0, &q).unwrap();
        for (a, b) in x.iter().zip(&back) {
            assert!((a - b).abs() < 0.02, "{a} {b}");
        }
    }
}
