//! Malformed headers: each must give an error that says what is wrong, never a panic or a
//! huge allocation.

use super::*;

/// Writes GGUF headers by hand, so each test can break exactly one field.
#[derive(Default)]
struct Builder {
    version: u32,
    kv: Vec<u8>,
    n_kv: u64,
    infos: Vec<u8>,
    n_tensors: u64,
    data: Vec<u8>,
}

fn string(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

impl Builder {
    fn new() -> Self {
        Self { version: 3, ..Default::default() }
    }

    fn kv(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
        string(&mut self.kv, key);
        self.kv.extend(ty.to_le_bytes());
        self.kv.extend(value);
        self.n_kv += 1;
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(ty.to_le_bytes());
        self.infos.extend(offset.to_le_bytes());
        self.n_tensors += 1;
        self
    }

    fn data(mut self, n: usize) -> Self {
        self.data = (0..n).map(|i| i as u8).collect();
        self
    }

    fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.n_tensors.to_le_bytes());
        out.extend(self.n_kv.to_le_bytes());
        out.extend(&self.kv);
        out.extend(&self.infos);
        while !out.len().is_multiple_of(32) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

fn err(bytes: &[u8]) -> String {
    match parse(bytes) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn good() -> Builder {
    let mut text = Vec::new();
    string(&mut text, "llama");
    Builder::new()
        .kv("general.architecture", 8, &text)
        .kv("llama.block_count", 4, &2u32.to_le_bytes())
        .tensor("a", &[4, 2], 0, 0)
        .tensor("b", &[32], 8, 32)
        .data(32 + 34)
}

#[test]
fn a_good_header_parses() {
    let h = parse(&good().build()).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(h.metadata[0], ("general.architecture".into(), Value::String("llama".into())));
    assert_eq!(h.metadata[1].1.as_u64(), Some(2));
    assert_eq!(h.tensors[0].torch_shape(), vec![2, 4]);
    assert_eq!(h.tensors[0].byte_len, Some(32));
    assert_eq!(h.tensors[1].byte_len, Some(34));
    assert_eq!(h.data_start % 32, 0);
}

#[test]
fn version_2_parses_and_1_and_big_endian_do_not() {
    let mut b = good();
    b.version = 2;
    assert_eq!(parse(&b.build()).unwrap().version, 2);
    b.version = 1;
    assert!(err(&b.build()).contains("version 1 is not supported"));
    b.version = 3u32.swap_bytes();
    assert!(err(&b.build()).contains("big-endian"));
}

#[test]
fn wrong_magic() {
    let mut bytes = good().build();
    bytes[0] = b'X';
    assert!(err(&bytes).contains("not the GGUF magic"));
}

#[test]
fn every_truncation_errors() {
    let bytes = good().build();
    let header_end = bytes.len() - 66;
    for n in 0..header_end {
        let e = err(&bytes[..n]);
        assert!(e.contains("truncated") || e.contains("remain") || e.contains("more than"), "{n}: {e}");
    }
    // Cutting the data section: the last tensor runs past the end.
    assert!(err(&bytes[..bytes.len() - 1]).contains("`b`"));
}

#[test]
fn huge_counts_and_lengths_error_before_allocating() {
    let mut b = good();
    b.n_kv = u64::MAX / 2;
    assert!(err(&b.build()).contains("metadata key/value pairs"));
    let mut b = good();
    b.n_tensors = 1 << 40;
    assert!(err(&b.build()).contains("tensor infos"));
    let mut s = (1u64 << 60).to_le_bytes().to_vec();
    s.extend(b"abc");
    let e = err(&Builder::new().kv("k", 8, &s).build());
    assert!(e.contains("1152921504606846976 bytes long"), "{e}");
    let mut arr = 0u32.to_le_bytes().to_vec();
    arr.extend(u64::MAX.to_le_bytes());
    let e = err(&Builder::new().kv("k", 9, &arr).build());
    assert!(e.contains("elements but only"), "{e}");
}

#[test]
fn unknown_value_type_and_bad_bool() {
    assert!(err(&Builder::new().kv("k", 13, &[0; 8]).build()).contains("unknown value type 13"));
    assert!(err(&Builder::new().kv("k", 7, &[2]).build()).contains("bool stored as 2"));
}

#[test]
fn nested_arrays_parse_and_deep_nesting_is_refused() {
    // [[1u8, 2u8], []]
    let mut v = 9u32.to_le_bytes().to_vec();
    v.extend(2u64.to_le_bytes());
    v.extend(0u32.to_le_bytes());
    v.extend(2u64.to_le_bytes());
    v.extend([1, 2]);
    v.extend(0u32.to_le_bytes());
    v.extend(0u64.to_le_bytes());
    let h = parse(&Builder::new().kv("k", 9, &v).build()).unwrap();
    let outer = h.metadata[0].1.as_array().unwrap();
    assert_eq!(outer.values.len(), 2);
    assert_eq!(outer.values[0].as_array().unwrap().values, vec![Value::U8(1), Value::U8(2)]);
    let mut deep = Vec::new();
    for _ in 0..20 {
        deep.extend(9u32.to_le_bytes());
        deep.extend(1u64.to_le_bytes());
    }
    deep.extend([0; 64]);
    assert!(err(&Builder::new().kv("k", 9, &deep).build()).contains("nests arrays"));
}

#[test]
fn bad_tensor_infos() {
    let too_many = Builder::new().tensor("t", &[1, 1, 1, 1, 1], 0, 0).data(4).build();
    assert!(err(&too_many).contains("5 dimensions"));
    let misaligned = Builder::new().tensor("t", &[1], 0, 4).data(64).build();
    assert!(err(&misaligned).contains("not a multiple of the alignment"));
    let out_of_range = Builder::new().tensor("t", &[8], 0, 1 << 40).data(64).build();
    assert!(err(&out_of_range).contains("data section holds 64 bytes"));
    let too_big = Builder::new().tensor("t", &[17], 0, 0).data(64).build();
    assert!(err(&too_big).contains("needs 68 bytes"));
    let partial_block = Builder::new().tensor("t", &[16], 8, 0).data(64).build();
    assert!(err(&partial_block).contains("not whole Q8_0 blocks"));
    let overflow = Builder::new().tensor("t", &[u64::MAX, 2], 0, 0).data(64).build();
    assert!(err(&overflow).contains("overflow"));
    let overlap = Builder::new().tensor("a", &[16], 0, 0).tensor("b", &[1], 0, 32).data(96).build();
    assert!(err(&overlap).contains("overlap"));
    let twice = Builder::new().tensor("a", &[1], 0, 0).tensor("a", &[1], 0, 32).data(64).build();
    assert!(err(&twice).contains("listed twice"));
}

#[test]
fn alignment_key_is_used_and_checked() {
    let h = parse(
        &Builder::new().kv("general.alignment", 4, &64u32.to_le_bytes()).tensor("t", &[1], 0, 64).data(200).build(),
    );
    assert_eq!(h.unwrap().alignment, 64);
    let e = err(&Builder::new().kv("general.alignment", 4, &3u32.to_le_bytes()).build());
    assert!(e.contains("power of two"));
}

#[test]
fn unknown_tensor_types_still_list() {
    let h = parse(&Builder::new().tensor("t", &[256], 99, 0).data(64).build()).unwrap();
    assert_eq!(h.tensors[0].ggml_type, GgmlType(99));
    assert_eq!(h.tensors[0].byte_len, None);
}
