//! Shared helpers for the integration tests: fixture paths and reference files.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod sparse;

pub const MODEL_FIXTURES: [&str; 7] = [
    "tiny-llama",
    "tiny-llama-bf16",
    "tiny-llama-sharded",
    "tiny-llama-v4config",
    "tiny-qwen2",
    "tiny-mixtral",
    "tiny-qwen2moe",
];

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn reference(name: &str) -> serde_json::Value {
    let path = fixture(&format!("{name}.reference.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// |a - b| within `rel` of |b|, with an absolute floor for values near zero.
pub fn close(a: f64, b: f64, rel: f64, abs_floor: f64) -> bool {
    (a - b).abs() <= rel * b.abs() + abs_floor
}

/// A writable copy of a fixture folder, in a temporary directory kept alive by the guard.
pub fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (dir, dst)
}

/// Runs the CLI, requires success, and parses what it printed as JSON.
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes an F32 safetensors file; `value(tensor index, element index)` gives each element.
pub fn write_f32_safetensors(
    path: &std::path::Path,
    tensors: &[(&str, Vec<usize>)],
    value: impl Fn(usize, usize) -> f32,
) {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::to_string(&header).unwrap();
    let mut out = Vec::with_capacity(8 + header.len() + offset);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for (t, (_, shape)) in tensors.iter().enumerate() {
        for i in 0..shape.iter().product::<usize>() {
            out.extend_from_slice(&value(t, i).to_le_bytes());
        }
    }
    std::fs::write(path, out).unwrap();
}

/// A one-layer Llama whose attention projections are `hidden × hidden` (2048 gives the
/// 2048×2048 module of the frame-time test), with a rank-8 PEFT adapter on q_proj and v_proj.
/// Returns (model folder, adapter folder).
pub fn wide_llama_with_lora(dir: &std::path::Path, hidden: usize) -> (PathBuf, PathBuf) {
    let model = dir.join("wide-llama");
    std::fs::create_dir_all(&model).unwrap();
    let (vocab, inter, heads) = (1024usize, 64usize, hidden / 128);
    std::fs::write(
        model.join("config.json"),
        serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
            "intermediate_size": inter, "num_hidden_layers": 1, "num_attention_heads": heads,
            "num_key_value_heads": heads, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
            "max_position_embeddings": 512, "tie_word_embeddings": true, "torch_dtype": "float32"
        })
        .to_string(),
    )
    .unwrap();
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(fixture("tiny-llama").join(f), model.join(f)).unwrap();
    }
    let p = "model.layers.0";
    let names: Vec<(String, Vec<usize>)> = vec![
        ("model.embed_tokens.weight".into(), vec![vocab, hidden]),
        (format!("{p}.input_layernorm.weight"), vec![hidden]),
        (format!("{p}.post_attention_layernorm.weight"), vec![hidden]),
        (format!("{p}.self_attn.q_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.self_attn.k_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.self_attn.v_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.self_attn.o_proj.weight"), vec![hidden, hidden]),
        (format!("{p}.mlp.gate_proj.weight"), vec![inter, hidden]),
        (format!("{p}.mlp.up_proj.weight"), vec![inter, hidden]),
        (format!("{p}.mlp.down_proj.weight"), vec![hidden, inter]),
        ("model.norm.weight".into(), vec![hidden]),
    ];
    let tensors: Vec<(&str, Vec<usize>)> = names.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    let hash = |t: usize, i: usize| {
        let x = (i as u64 ^ ((t as u64) << 40)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.05
    };
    write_f32_safetensors(&model.join("model.safetensors"), &tensors, |t, i| {
        if tensors[t].1.len() == 1 { 1.0 } else { hash(t, i) }
    });
    let adapter = dir.join("wide-lora");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(
        adapter.join("adapter_config.json"),
        serde_json::json!({
            "peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "v_proj"],
            "lora_dropout": 0.0, "bias": "none", "task_type": "CAUSAL_LM", "use_rslora": false,
            "base_model_name_or_path": "wide-llama"
        })
        .to_string(),
    )
    .unwrap();
    let lora: Vec<(String, Vec<usize>)> = ["q_proj", "v_proj"]
        .iter()
        .flat_map(|m| {
            let base = format!("base_model.model.{p}.self_attn.{m}");
            [(format!("{base}.lora_A.weight"), vec![8, hidden]), (format!("{base}.lora_B.weight"), vec![hidden, 8])]
        })
        .collect();
    let lora_tensors: Vec<(&str, Vec<usize>)> = lora.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    write_f32_safetensors(&adapter.join("adapter_model.safetensors"), &lora_tensors, |t, i| hash(t + 100, i));
    (model, adapter)
}

/// Writes `tensors` (name, shape, row-major values) as `torch.save(state_dict)` does: a zip
/// with `archive/data.pkl` (protocol 2) and one stored entry per storage, as F16 when `half`
/// (MiniMind2's trainers save `v.half()`), else F32. Names listed in `tied` share the storage
/// of the name they map to, as tied weights do.
pub fn write_torch_state_dict(
    path: &std::path::Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    half: bool,
    tied: &[(&str, &str)],
) {
    use std::io::Write;
    let global = |m: &str, n: &str| [b"c".as_slice(), m.as_bytes(), b"\n", n.as_bytes(), b"\n"].concat();
    let unicode = |s: &str| [b"X".as_slice(), &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat();
    let int = |x: usize| [b"J".as_slice(), &(x as u32).to_le_bytes()].concat();
    let tuple = |xs: &[usize]| {
        let mut v = b"(".to_vec();
        xs.iter().for_each(|&x| v.extend(int(x)));
        v.push(b't');
        v
    };
    let storage_class = if half { "HalfStorage" } else { "FloatStorage" };
    let key_of = |name: &str| tensors.iter().position(|(n, _, _)| n == name).unwrap();
    let mut p = vec![0x80, 2, b'}', b'('];
    for (i, (name, shape, values)) in tensors.iter().enumerate() {
        let storage = tied.iter().find(|(t, _)| *t == name).map_or(i, |(_, to)| key_of(to));
        let stride: Vec<usize> = (0..shape.len()).map(|d| shape[d + 1..].iter().product()).collect();
        p.extend(unicode(name));
        p.extend(global("torch._utils", "_rebuild_tensor_v2"));
        p.push(b'(');
        p.push(b'(');
        p.extend(unicode("storage"));
        p.extend(global("torch", storage_class));
        p.extend(unicode(&storage.to_string()));
        p.extend(unicode("cpu"));
        p.extend(int(values.len()));
        p.extend([b't', b'Q']);
        p.extend(int(0));
        p.extend(tuple(shape));
        p.extend(tuple(&stride));
        p.push(0x89);
        p.extend(global("collections", "OrderedDict"));
        p.extend([b')', b'R', b't', b'R']);
    }
    p.extend([b'u', b'.']);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(&p).unwrap();
    for (i, (name, _, values)) in tensors.iter().enumerate() {
        if tied.iter().any(|(t, _)| t == name) {
            continue;
        }
        zip.start_file(format!("archive/data/{i}"), stored.with_alignment(64)).unwrap();
        for v in values {
            if half {
                zip.write_all(&half::f16::from_f32(*v).to_le_bytes()).unwrap();
            } else {
                zip.write_all(&v.to_le_bytes()).unwrap();
            }
        }
    }
    zip.finish().unwrap();
}
