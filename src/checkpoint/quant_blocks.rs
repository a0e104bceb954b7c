//! One quantization block taken apart: its raw fields (f16 scales with their bits, packed
//! sub-block scales and mins), every code, and the weights they decode to — what the
//! `blocks` subcommand prints and a block view shows, with the formula that joins them.

use half::f16;

use super::ggml_dtype::GgmlLayout;

use super::quant::{
    GgmlType, NotReadable, crumb, dequantize, five_bit, k_nibble, k_scale_min, nibble, q3_k_code, q3_k_scales,
    q5_k_code, q6_k_code,
};

/// A raw field of a block.
#[derive(Clone, Debug, PartialEq)]
pub enum Field {
    /// An f16 scale: its value and its 16 bits.
    Half { value: f32, bits: u16 },
    /// Small integers (sub-block scales or mins), already unpacked.
    Ints(Vec<i32>),
    /// A packed bit field (Q5_0/Q5_1 `qh`), as stored.
    Bits(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub ggml_type: GgmlType,
    pub index: usize,
    /// Fields in storage order, named as in ggml's `block_q*` structs.
    pub fields: Vec<(&'static str, Field)>,
    /// Every code as the formula uses it (Q4_0: 0…15 before the −8, Q6_K: already −32).
    pub codes: Vec<i32>,
    /// The decoded weights, bit-identical to gguf-py's dequantize.
    pub values: Vec<f32>,
    /// How a weight follows from the fields and its code (`j` = element, `s` = sub-block).
    pub formula: &'static str,
}

impl Block {
    /// The Hugging Face (row, first column) of the block: blocks run along stored rows, and
    /// a llama q/k tensor's rows were reordered by llama.cpp (undone in what is shown).
    pub fn place(&self, layout: GgmlLayout) -> (usize, usize) {
        let row_len = (layout.row_len as usize).max(1);
        let first = self.index * self.values.len().max(1);
        let (stored_row, column) = (first / row_len, first % row_len);
        let head_rows = layout.head_rows as usize;
        if head_rows == 0 {
            return (stored_row, column);
        }
        let (head, s) = (stored_row / head_rows, stored_row % head_rows);
        (head * head_rows + (s % 2) * (head_rows / 2) + s / 2, column)
    }

    fn half_field(&self, name: &str) -> Option<f32> {
        self.fields.iter().find_map(|(n, f)| match f {
            Field::Half { value, .. } if *n == name => Some(*value),
            _ => None,
        })
    }

    fn int_field(&self, name: &str, at: usize) -> Option<i32> {
        self.fields.iter().find_map(|(n, f)| match f {
            Field::Ints(v) if *n == name => v.get(at).copied(),
            _ => None,
        })
    }

    /// Weight `j`'s formula with the block's numbers in it, ending in the decoded value:
    /// `w = d·q + m = 0.0123·5 + (−0.1) = −0.0385`. The value is the decoded one (gguf-py's),
    /// the numbers before it are what it is computed from.
    pub fn filled(&self, j: usize) -> Option<String> {
        let (q, w) = (*self.codes.get(j)?, *self.values.get(j)?);
        let n = |x: f32| if x < 0.0 { format!("({x})") } else { format!("{x}") };
        let d = self.half_field("d")?;
        let text = match self.ggml_type {
            GgmlType::Q4_0 => format!("w = d·(q − 8) = {}·({q} − 8)", n(d)),
            GgmlType::Q5_0 => format!("w = d·(q − 16) = {}·({q} − 16)", n(d)),
            GgmlType::Q8_0 => format!("w = d·q = {}·{}", n(d), n(q as f32)),
            GgmlType::Q4_1 | GgmlType::Q5_1 => format!("w = d·q + m = {}·{q} + {}", n(d), n(self.half_field("m")?)),
            GgmlType::Q2_K | GgmlType::Q4_K | GgmlType::Q5_K => {
                let s = if self.ggml_type == GgmlType::Q2_K { j / 16 } else { j / 32 };
                let (sc, m, dmin) =
                    (self.int_field("scales", s)?, self.int_field("mins", s)?, self.half_field("dmin")?);
                format!("w = d·scales[{s}]·q − dmin·mins[{s}] = {}·{sc}·{q} − {}·{m}", n(d), n(dmin))
            }
            GgmlType::Q3_K | GgmlType::Q6_K => {
                let s = j / 16;
                format!("w = d·scales[{s}]·q = {}·{}·{}", n(d), n(self.int_field("scales", s)? as f32), n(q as f32))
            }
            _ => return None,
        };
        Some(format!("{text} = {w}"))
    }
}

fn half(b: &[u8], at: usize) -> Field {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    Field::Half { value: f16::from_bits(bits).to_f32(), bits }
}

/// Block `index` of a tensor of type `ty` stored in `bytes`; None past the end.
pub fn block(ty: GgmlType, bytes: &[u8], index: usize) -> Result<Option<Block>, NotReadable> {
    let (n, size) = ty.block_geometry().filter(|_| ty.is_readable()).ok_or(NotReadable(ty))?;
    let Some(b) = bytes.get(index * size..(index + 1) * size) else { return Ok(None) };
    let values = dequantize(ty, b)?;
    let nib = |qs: &[u8], j: usize| nibble(qs, j) as i32;
    let qh32 = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (fields, codes, formula): (Vec<(&'static str, Field)>, Vec<i32>, &'static str) = match ty {
        GgmlType::Q4_0 => (vec![("d", half(b, 0))], (0..n).map(|j| nib(&b[2..], j)).collect(), "w = d·(q − 8)"),
        GgmlType::Q4_1 => {
            (vec![("d", half(b, 0)), ("m", half(b, 2))], (0..n).map(|j| nib(&b[4..], j)).collect(), "w = d·q + m")
        }
        GgmlType::Q5_0 => {
            let qh = qh32(2);
            let codes = (0..n).map(|j| five_bit(&b[2..6], &b[6..], j) as i32).collect();
            (vec![("d", half(b, 0)), ("qh", Field::Bits(qh))], codes, "w = d·(q − 16)")
        }
        GgmlType::Q5_1 => {
            let qh = qh32(4);
            let codes = (0..n).map(|j| five_bit(&b[4..8], &b[8..], j) as i32).collect();
            (vec![("d", half(b, 0)), ("m", half(b, 2)), ("qh", Field::Bits(qh))], codes, "w = d·q + m")
        }
        GgmlType::Q8_0 => (vec![("d", half(b, 0))], b[2..].iter().map(|&q| q as i8 as i32).collect(), "w = d·q"),
        GgmlType::Q2_K => k2(b),
        GgmlType::Q3_K => k3(b),
        GgmlType::Q4_K | GgmlType::Q5_K => k45(ty, b),
        GgmlType::Q6_K => k6(b),
        // F32 / F16 / BF16: one element per "block", the value is the field.
        _ => (vec![], vec![], "w = stored value"),
    };
    Ok(Some(Block { ggml_type: ty, index, fields, codes, values, formula }))
}

type Parts = (Vec<(&'static str, Field)>, Vec<i32>, &'static str);

fn k2(b: &[u8]) -> Parts {
    let scales = Field::Ints(b[..16].iter().map(|&s| (s & 0x0f) as i32).collect());
    let mins = Field::Ints(b[..16].iter().map(|&s| (s >> 4) as i32).collect());
    let codes = (0..256).map(|i| crumb(&b[16..80], i) as i32).collect();
    let fields = vec![("scales", scales), ("mins", mins), ("d", half(b, 80)), ("dmin", half(b, 82))];
    (fields, codes, "w = d·scales[s]·q − dmin·mins[s]  (s = j / 16)")
}

fn k3(b: &[u8]) -> Parts {
    let scales = Field::Ints(q3_k_scales(&b[96..108]).iter().map(|&s| s as i32).collect());
    let codes = (0..256).map(|i| q3_k_code(&b[..32], &b[32..96], i) as i32).collect();
    (
        vec![("scales", scales), ("d", half(b, 108))],
        codes,
        "w = d·scales[s]·q  (s = j / 16; q = low 2 bits − 4 unless the hmask bit is set)",
    )
}

fn k45(ty: GgmlType, b: &[u8]) -> Parts {
    let (sc, mn) = k_scale_min(&b[4..16]);
    let ints = |v: [u8; 8]| Field::Ints(v.iter().map(|&x| x as i32).collect());
    let (qs, qh) = if ty == GgmlType::Q5_K { (&b[48..176], Some(&b[16..48])) } else { (&b[16..144], None) };
    let codes = (0..256).map(|i| qh.map_or(k_nibble(qs, i), |qh| q5_k_code(qh, qs, i)) as i32).collect();
    let fields = vec![("d", half(b, 0)), ("dmin", half(b, 2)), ("scales", ints(sc)), ("mins", ints(mn))];
    (fields, codes, "w = d·scales[s]·q − dmin·mins[s]  (s = j / 32)")
}

fn k6(b: &[u8]) -> Parts {
    let scales = Field::Ints(b[192..208].iter().map(|&s| s as i8 as i32).collect());
    let codes = (0..256).map(|i| q6_k_code(&b[..128], &b[128..192], i) as i32 - 32).collect();
    (vec![("scales", scales), ("d", half(b, 208))], codes, "w = d·scales[s]·q  (s = j / 16)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_1_block_fields_codes_and_values_agree() {
        let mut b = vec![];
        b.extend(f16::from_f32(0.5).to_bits().to_le_bytes());
        b.extend(f16::from_f32(-1.0).to_bits().to_le_bytes());
        b.extend((0..16u8).map(|l| l | ((15 - l) << 4)));
        let blk = block(GgmlType::Q4_1, &b, 0).unwrap().unwrap();
        assert_eq!(blk.fields[0], ("d", Field::Half { value: 0.5, bits: 0x3800 }));
        assert_eq!(blk.codes[1], 1);
        assert_eq!(blk.codes[16], 15);
        for (q, w) in blk.codes.iter().zip(&blk.values) {
            assert_eq!(*w, 0.5 * *q as f32 - 1.0);
        }
        assert_eq!(block(GgmlType::Q4_1, &b, 1).unwrap(), None);
        assert_eq!(blk.filled(1).unwrap(), "w = d·q + m = 0.5·1 + (-1) = -0.5");
        assert_eq!(blk.filled(32), None);
    }
}
