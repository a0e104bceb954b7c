//! Every kind of broken folder a user can open gives an error naming the file and what was
//! expected, and never a panic. Each broken file is made here, from a good fixture.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::copy_fixture;
use llm_anatomy::analysis::Control;
use llm_anatomy::analysis::stats::{DataView, compute_stats};
use llm_anatomy::arch::ModelFolder;

fn write_safetensors(path: &Path, header: &str, data: &[u8]) {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    fs::write(path, bytes).unwrap();
}

fn open_err(folder: &Path) -> String {
    match ModelFolder::open(folder) {
        Ok(_) => panic!("{} opened but should not have", folder.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_mentions(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "error message lacks `{p}`: {msg}");
    }
}

/// A folder with a config for an unknown architecture, so only the safetensors checks apply.
fn folder_with(header: &str, data: &[u8]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_path_buf();
    fs::write(folder.join("config.json"), r#"{"model_type": "mystery", "architectures": ["MysteryForCausalLM"]}"#)
        .unwrap();
    write_safetensors(&folder.join("model.safetensors"), header, data);
    (dir, folder)
}

#[test]
fn truncated_shard() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let path = folder.join("model.safetensors");
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..bytes.len() - 1000]).unwrap();
    let msg = open_err(&folder);
    assert_mentions(&msg, &["model.safetensors", "truncated", "model.layers.1.self_attn.v_proj.weight"]);
}

#[test]
fn file_shorter_than_the_length_prefix() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    fs::write(dir.path().join("model.safetensors"), [1u8, 2, 3]).unwrap();
    assert_mentions(&open_err(dir.path()), &["model.safetensors", "8-byte header length"]);
}

#[test]
fn header_length_larger_than_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    let mut bytes = 5000u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    assert_mentions(&open_err(dir.path()), &["model.safetensors", "5000", "lying header"]);
}

#[test]
fn absurd_header_length() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(&[0; 64]);
    fs::write(dir.path().join("model.safetensors"), bytes).unwrap();
    assert_mentions(&open_err(dir.path()), &["model.safetensors", "limit"]);
}

#[test]
fn header_not_json() {
    let (_d, folder) = folder_with("{not json at all", &[]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "not valid JSON"]);
}

#[test]
fn offsets_overlap() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let (_d, folder) = folder_with(header, &[0; 12]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "`a`", "`b`", "overlap"]);
}

#[test]
fn offsets_run_past_the_data() {
    let header = r#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
    let (_d, folder) = folder_with(header, &[0; 8]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "`w`", "run past"]);
}

#[test]
fn unknown_dtype() {
    let header = r#"{"w":{"dtype":"F7","shape":[4],"data_offsets":[0,4]}}"#;
    let (_d, folder) = folder_with(header, &[0; 4]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "`w`", "unknown dtype `F7`"]);
}

#[test]
fn shape_times_dtype_differs_from_byte_length() {
    let header = r#"{"w":{"dtype":"BF16","shape":[3,3],"data_offsets":[0,16]}}"#;
    let (_d, folder) = folder_with(header, &[0; 16]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "`w`", "[3, 3]", "18 bytes", "16"]);
}

#[test]
fn index_names_a_missing_shard() {
    let (_d, folder) = copy_fixture("tiny-llama-sharded");
    fs::remove_file(folder.join("model-00002-of-00003.safetensors")).unwrap();
    assert_mentions(&open_err(&folder), &["model.safetensors.index.json", "model-00002-of-00003.safetensors"]);
}

#[test]
fn index_puts_a_tensor_in_the_wrong_shard() {
    let (_d, folder) = copy_fixture("tiny-llama-sharded");
    let path = folder.join("model.safetensors.index.json");
    let text = fs::read_to_string(&path).unwrap().replace(
        r#""lm_head.weight": "model-00003-of-00003.safetensors""#,
        r#""lm_head.weight": "model-00001-of-00003.safetensors""#,
    );
    fs::write(&path, text).unwrap();
    assert_mentions(&open_err(&folder), &["model.safetensors.index.json", "lm_head.weight"]);
}

#[test]
fn config_missing() {
    let (_d, folder) = copy_fixture("tiny-llama");
    fs::remove_file(folder.join("config.json")).unwrap();
    assert_mentions(&open_err(&folder), &["config.json"]);
}

#[test]
fn config_not_json() {
    let (_d, folder) = copy_fixture("tiny-llama");
    fs::write(folder.join("config.json"), "{\"hidden_size\": 64,").unwrap();
    assert_mentions(&open_err(&folder), &["config.json", "not valid JSON"]);
}

#[test]
fn config_contradicts_tensor_shapes() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let path = folder.join("config.json");
    let text = fs::read_to_string(&path).unwrap().replace("\"intermediate_size\": 128", "\"intermediate_size\": 256");
    fs::write(&path, text).unwrap();
    assert_mentions(
        &open_err(&folder),
        &["config.json", "model.layers.0.mlp.gate_proj.weight", "[256, 64]", "[128, 64]"],
    );
}

#[test]
fn config_implies_a_tensor_the_files_lack() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let path = folder.join("config.json");
    let text = fs::read_to_string(&path).unwrap().replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    fs::write(&path, text).unwrap();
    assert_mentions(&open_err(&folder), &["config.json", "model.layers.2."]);
}

#[test]
fn config_with_a_wrongly_typed_key() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let path = folder.join("config.json");
    let text = fs::read_to_string(&path).unwrap().replace("\"hidden_size\": 64", "\"hidden_size\": \"sixty-four\"");
    fs::write(&path, text).unwrap();
    assert_mentions(&open_err(&folder), &["config.json", "hidden_size"]);
}

#[test]
fn folder_without_weights() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), "{}").unwrap();
    assert_mentions(&open_err(dir.path()), &["safetensors"]);
}

#[test]
fn unknown_architecture_opens_with_a_generic_tree() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let path = folder.join("config.json");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"model_type\": \"llama\"", "\"model_type\": \"brandnew\"")
        .replace("LlamaForCausalLM", "BrandNewForCausalLM");
    fs::write(&path, text).unwrap();
    let model = ModelFolder::open(&folder).unwrap();
    assert!(model.config.is_none());
    assert!(model.notices[0].contains("brandnew") && model.notices[0].contains("inference is not available"));
    let repr = model.repr();
    assert!(repr.starts_with("BrandNewForCausalLM(\n"), "{repr}");
    assert!(repr.contains("(0-1): 2 x Module("), "{repr}");
    assert!(repr.contains("(q_proj): Linear(in_features=64, out_features=64, bias=False)"), "{repr}");
    assert!(repr.contains("(embed_tokens): Embedding(1024, 64)"), "{repr}");
    assert_eq!(model.tree.unique_param_count(0), 205_120);
}

#[test]
fn nan_and_inf_weights_open_and_are_counted() {
    let mut data = Vec::new();
    for v in [1.0f32, f32::NAN, f32::INFINITY, -2.0, f32::NEG_INFINITY, 0.0] {
        data.extend_from_slice(&v.to_le_bytes());
    }
    let header = r#"{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}"#;
    let (_d, folder) = folder_with(header, &data);
    let model = ModelFolder::open(&folder).unwrap();
    let t = model.checkpoint.tensor("w").unwrap();
    let s =
        compute_stats(&[DataView { dtype: t.dtype, bytes: model.checkpoint.bytes(t) }], 4, &Control::new()).unwrap();
    assert_eq!((s.nan, s.inf, s.zeros, s.count), (1, 2, 1, 6));
    assert_eq!((s.min, s.max), (-2.0, 1.0));
}

#[test]
fn opening_never_writes_to_the_folder() {
    let (_d, folder) = copy_fixture("tiny-llama");
    // Name, modification time and size of every file, in a stable order.
    let listing = || {
        let mut files: Vec<_> = fs::read_dir(&folder)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let meta = e.metadata().unwrap();
                (e.file_name(), meta.modified().unwrap(), meta.len())
            })
            .collect();
        files.sort();
        files
    };
    let before = listing();
    for e in fs::read_dir(&folder).unwrap() {
        let p = e.unwrap().path();
        let mut fp = fs::metadata(&p).unwrap().permissions();
        fp.set_readonly(true);
        fs::set_permissions(&p, fp).unwrap();
    }
    let model = ModelFolder::open(&folder).unwrap();
    let t = model.checkpoint.tensor("lm_head.weight").unwrap();
    compute_stats(&[DataView { dtype: t.dtype, bytes: model.checkpoint.bytes(t) }], 8, &Control::new()).unwrap();
    drop(model);
    let after = listing();
    assert_eq!(before, after);
}

fn set_config_key(folder: &Path, key: &str, value: serde_json::Value) {
    let path = folder.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    cfg[key] = value;
    fs::write(&path, cfg.to_string()).unwrap();
}

/// Sizes that would decide allocations are checked against the tensors first: an error that
/// names the key, not an allocation that aborts the process.
#[test]
fn layer_and_expert_counts_the_tensors_do_not_carry() {
    for n in [serde_json::json!(1_000_000_000u64), serde_json::json!(3)] {
        let (_d, folder) = copy_fixture("tiny-llama");
        set_config_key(&folder, "num_hidden_layers", n.clone());
        let msg = open_err(&folder);
        assert_mentions(&msg, &["config.json", "num_hidden_layers", "2 decoder layers"]);
    }
    let (_d, folder) = copy_fixture("tiny-llama");
    set_config_key(&folder, "num_hidden_layers", serde_json::json!(1e18));
    assert_mentions(&open_err(&folder), &["config.json", "num_hidden_layers"]);
    let (_d, folder) = copy_fixture("tiny-mixtral");
    set_config_key(&folder, "num_local_experts", serde_json::json!(1_000_000_000u64));
    assert_mentions(&open_err(&folder), &["config.json", "1000000000 experts", "hold 4"]);
}

/// A config that is a pipe or a device would block or never end: refused before reading.
#[test]
fn config_that_is_a_fifo_or_a_device() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let config = folder.join("config.json");
    fs::remove_file(&config).unwrap();
    let status = std::process::Command::new("mkfifo").arg(&config).status().unwrap();
    assert!(status.success());
    assert_mentions(&open_err(&folder), &["config.json", "not a regular file"]);
    fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    assert_mentions(&open_err(&folder), &["config.json", "not a regular file"]);
}

#[test]
fn side_files_have_a_size_cap() {
    let (_d, folder) = copy_fixture("tiny-llama");
    let config = folder.join("config.json");
    let f = fs::OpenOptions::new().write(true).open(&config).unwrap();
    f.set_len(llm_anatomy::checkpoint::side_file::MAX_SIDE_FILE + 1).unwrap(); // sparse: no data written
    assert_mentions(&open_err(&folder), &["config.json", "at most"]);
}

#[test]
fn a_json_file_that_is_not_a_tokenizer_says_so() {
    let (_d, folder) = copy_fixture("tiny-llama");
    fs::write(folder.join("tokenizer.json"), r#"{"hello": "world"}"#).unwrap();
    let model = ModelFolder::open(&folder).unwrap();
    let err = llm_anatomy::engine::Session::load(&model).err().expect("no tokenizer");
    assert_mentions(&err, &["tokenizer.json", "not a tokenizers tokenizer.json"]);
}

/// A chat template is code from the folder: an endless loop or a gigabyte of output is an
/// error, not a hang or an allocation.
#[test]
fn hostile_chat_templates_stop() {
    for (template, expect) in [
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "steps"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
            "bytes",
        ),
    ] {
        let (_d, folder) = copy_fixture("tiny-llama");
        let cfg_path = folder.join("tokenizer_config.json");
        let mut cfg: serde_json::Value = serde_json::from_str(&fs::read_to_string(&cfg_path).unwrap()).unwrap();
        cfg["chat_template"] = serde_json::json!(template);
        fs::write(&cfg_path, cfg.to_string()).unwrap();
        let codec = llm_anatomy::engine::TextCodec::load(&folder).unwrap();
        let err = codec.prompt_ids("hi", true).unwrap_err();
        assert!(err.contains(expect), "{template}: {err}");
    }
}

/// Values that would make every logit NaN, or an activation the engine does not compute,
/// open for inspection but refuse to run, naming the key.
#[test]
fn configs_that_cannot_run_as_written_say_why() {
    for (key, value, expect) in [
        ("hidden_act", serde_json::json!("gelu_pytorch_tanh"), "hidden_act"),
        ("rms_norm_eps", serde_json::json!(-1e-5), "rms_norm_eps"),
        ("rope_parameters", serde_json::json!({"rope_type": "default", "rope_theta": 0.0}), "rope_theta"),
    ] {
        let (_d, folder) = copy_fixture("tiny-llama");
        set_config_key(&folder, key, value);
        let model = ModelFolder::open(&folder).unwrap();
        assert!(model.notices.iter().any(|n| n.contains(expect)), "{key}: {:?}", model.notices);
        let blocker = model.config.as_ref().unwrap().inference_blocker().unwrap();
        assert!(blocker.contains(expect), "{blocker}");
    }
}

/// A 1 MB tensor name lists (it panicked in the table's column width), and a header that is a
/// huge JSON array is refused at its first byte instead of being parsed into gigabytes.
#[test]
fn huge_names_and_array_headers() {
    let name = "x".repeat(1 << 20);
    let (_d, folder) =
        folder_with(&format!(r#"{{"{name}": {{"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}}}"#), &[0; 4]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["tensors", folder.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let array = format!("[{}]", vec!["0"; 5_000_000].join(","));
    let (_d, folder) = folder_with(&array, &[]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "not an object of tensor entries"]);
}

/// A weights file with no tensors is what is wrong, not the config that names layers.
#[test]
fn safetensors_without_tensors_is_blamed_itself() {
    let (_d, folder) = copy_fixture("tiny-llama");
    write_safetensors(&folder.join("model.safetensors"), "{}", &[]);
    assert_mentions(&open_err(&folder), &["model.safetensors", "holds no tensors"]);
}

/// Past the position limit, `generate` prints what it made, then says why it stopped.
#[test]
fn generate_keeps_the_tokens_made_before_the_position_limit() {
    let (_d, folder) = copy_fixture("tiny-llama");
    set_config_key(&folder, "max_position_embeddings", serde_json::json!(16));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["generate", folder.to_str().unwrap(), "--prompt", "The model has weights", "--max-new", "20", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed["new_ids"].as_array().unwrap().len(), 16 - 11);
    assert!(String::from_utf8_lossy(&out.stderr).contains("stopped after 5 new tokens"));
}

/// What safetensors' own validator refuses but this program reads anyway is said, not
/// hidden: a name repeated in the header (the last entry is used), bytes between two
/// tensors and bytes after the last one. The tree panel and `tree` print these notices.
#[test]
fn repeated_header_names_and_uncovered_bytes_are_noticed() {
    let dir = tempfile::tempdir().unwrap();
    // `a` twice (the second, at 0..16, wins), then `b` at 24..40: 8 bytes between, 8 after.
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[24,40]}}"#;
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(vec![0u8; 48]);
    std::fs::write(dir.path().join("model.safetensors"), &bytes).unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"architectures": ["WeirdForCausalLM"], "model_type": "weird"}"#)
        .unwrap();
    let model = llm_anatomy::arch::ModelFolder::open(dir.path()).unwrap();
    let a = model.checkpoint.tensor("a").unwrap();
    assert_eq!(a.shape, vec![4], "the last entry of a repeated name is used");
    let notices = model.notices.join("\n");
    assert!(notices.contains("model.safetensors: `a` appears more than once in the header"), "{notices}");
    assert!(notices.contains("8 bytes between `a` and `b` belong to no tensor"), "{notices}");
    assert!(notices.contains("8 bytes after the last tensor belong to no tensor"), "{notices}");
}
