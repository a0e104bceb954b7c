//! How a GGUF tensor's stored bytes become values in Hugging Face orientation: the GGML
//! block type, plus llama.cpp's q/k row permutation when the converter applied one.
//!
//! llama.cpp's `convert_hf_to_gguf.py` reorders the rows of llama-family `q_proj`/`k_proj`
//! weights (each head's two rotary halves interleaved) so its rope kernel can read pairs.
//! transformers undoes this on load (`reverse_permute_weights`); the values shown here are
//! the ones transformers would hold, so the decode undoes it too. The permutation moves
//! whole rows inside one head, so a "quantum" of one head's rows is always decodable alone.

use super::quant::{GgmlType, NotReadable, dequantize_into};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GgmlLayout {
    pub ty: GgmlType,
    /// Elements per row (`ne[0]`).
    pub row_len: u32,
    /// Rows per head of llama.cpp's q/k permutation (the head dim); 0 when rows are stored in
    /// Hugging Face order.
    pub head_rows: u32,
}

impl GgmlLayout {
    pub fn plain(ty: GgmlType, row_len: u32) -> Self {
        Self { ty, row_len, head_rows: 0 }
    }

    pub fn is_permuted(self) -> bool {
        self.head_rows > 0
    }

    /// The smallest run that decodes on its own: (elements, bytes). One block, or one head's
    /// rows when the permutation must be undone. (1, 1) for a type of unknown geometry.
    pub fn quantum(self) -> (usize, usize) {
        let (n, size) = self.ty.block_geometry().unwrap_or((1, 1));
        if self.head_rows == 0 {
            return (n, size);
        }
        let elems = self.head_rows as usize * self.row_len as usize;
        (elems, elems / n * size)
    }

    /// Elements `bytes` stored bytes hold (whole quanta).
    pub fn elements_in(self, bytes: usize) -> usize {
        let (n, size) = self.quantum();
        bytes / size * n
    }

    /// Decodes whole quanta into `out` in Hugging Face order.
    pub fn decode_into(self, bytes: &[u8], out: &mut [f32]) -> Result<(), NotReadable> {
        dequantize_into(self.ty, bytes, out)?;
        if self.head_rows > 0 {
            let (group, _) = self.quantum();
            let mut tmp = vec![0f32; group];
            for g in out.chunks_exact_mut(group) {
                tmp.copy_from_slice(g);
                self.unpermute_group(&tmp, g);
            }
        }
        Ok(())
    }

    /// The stored row that holds Hugging Face row `hf_row` (the inverse of the q/k
    /// permutation; the row itself when the tensor is not permuted).
    #[inline]
    pub fn stored_row(self, hf_row: usize) -> usize {
        let head_rows = self.head_rows as usize;
        if head_rows == 0 {
            return hf_row;
        }
        let half_rows = head_rows / 2;
        let (head, within) = (hf_row / head_rows, hf_row % head_rows);
        head * head_rows + 2 * (within % half_rows) + within / half_rows
    }

    /// One head: stored row `2·i + half` is Hugging Face row `half·(head_rows/2) + i`.
    fn unpermute_group(self, stored: &[f32], hf: &mut [f32]) {
        let (row, half_rows) = (self.row_len as usize, self.head_rows as usize / 2);
        for (s, src) in stored.chunks_exact(row).enumerate() {
            let (i, half) = (s / 2, s % 2);
            let r = half * half_rows + i;
            hf[r * row..(r + 1) * row].copy_from_slice(src);
        }
    }

    /// Every value, in Hugging Face order. A type without a decoder gives NaN for each
    /// element (callers that must not compute on those check `Dtype::not_readable` first).
    pub fn decode_all_f32(self, bytes: &[u8]) -> Vec<f32> {
        let mut out = vec![0f32; self.elements_in(bytes.len())];
        if self.decode_into(bytes, &mut out).is_err() {
            out.fill(f32::NAN);
        }
        out
    }

    /// Element `index` (Hugging Face order) of a tensor stored in `bytes`.
    pub fn element(self, bytes: &[u8], index: usize) -> Option<f64> {
        let (n, size) = self.quantum();
        let q = index / n;
        let raw = bytes.get(q.checked_mul(size)?..(q + 1).checked_mul(size)?)?;
        let mut out = vec![0f32; n];
        self.decode_into(raw, &mut out).ok()?;
        Some(out[index % n] as f64)
    }
}

/// llama.cpp's forward permutation (`LlamaModel.permute` in convert_hf_to_gguf.py) of a
/// row-major `[rows, row_len]` matrix: what the converter writes for q/k.
pub fn permute_rows_like_llama_cpp(hf: &[f32], row_len: usize, head_rows: usize) -> Vec<f32> {
    let mut out = vec![0f32; hf.len()];
    let half_rows = head_rows / 2;
    for (r, src) in hf.chunks_exact(row_len).enumerate() {
        let (head, within) = (r / head_rows, r % head_rows);
        let (half, i) = (within / half_rows, within % half_rows);
        let s = head * head_rows + 2 * i + half;
        out[s * row_len..(s + 1) * row_len].copy_from_slice(src);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_undoes_llama_cpp_permute() {
        let (row_len, head_rows, heads) = (3, 4, 2);
        let hf: Vec<f32> = (0..row_len * head_rows * heads).map(|i| i as f32).collect();
        let stored = permute_rows_like_llama_cpp(&hf, row_len, head_rows);
        // Head 0 stored rows: HF rows 0, 2, 1, 3 (halves interleaved).
        assert_eq!(&stored[..12], &[0., 1., 2., 6., 7., 8., 3., 4., 5., 9., 10., 11.]);
        let bytes: Vec<u8> = stored.iter().flat_map(|v| v.to_le_bytes()).collect();
        let layout = GgmlLayout { ty: GgmlType::F32, row_len: row_len as u32, head_rows: head_rows as u32 };
        assert_eq!(layout.decode_all_f32(&bytes), hf);
        assert_eq!(layout.element(&bytes, 13), Some(13.0));
        for r in 0..head_rows * heads {
            let s = layout.stored_row(r);
            assert_eq!(&stored[s * row_len..(s + 1) * row_len], &hf[r * row_len..(r + 1) * row_len], "row {r}");
        }
    }
}
