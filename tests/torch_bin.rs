//! Hugging Face folders with `pytorch_model.bin` (or its shards and
//! `pytorch_model.bin.index.json`) instead of safetensors: the same tree, statistics and
//! next-token probabilities as the safetensors fixture with the same weights.
//!
//! The `.bin` files are written here as `torch.save(state_dict)` lays them out
//! (`common::write_torch_state_dict`); that the reader takes torch's own files is checked on
//! the torch-written MiniMind fixtures (`tests/pth.rs`, `tests/minimind.rs`).

mod common;

use common::fixture;
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;

/// tiny-llama's folder with its weights moved into `files` .bin shards.
fn as_torch_bins(files: usize) -> (tempfile::TempDir, std::path::PathBuf) {
    let st = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("tiny-llama-bin");
    std::fs::create_dir(&folder).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        if fixture("tiny-llama").join(f).is_file() {
            std::fs::copy(fixture("tiny-llama").join(f), folder.join(f)).unwrap();
        }
    }
    let ckpt = &st.checkpoint;
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> =
        ckpt.tensors.iter().map(|t| (t.name.clone(), t.shape.clone(), t.dtype.decode_all_f32(ckpt.bytes(t)))).collect();
    let per = tensors.len().div_ceil(files);
    let mut weight_map = serde_json::Map::new();
    for (i, chunk) in tensors.chunks(per).enumerate() {
        let name = if files == 1 {
            "pytorch_model.bin".to_string()
        } else {
            format!("pytorch_model-{:05}-of-{files:05}.bin", i + 1)
        };
        common::write_torch_state_dict(&folder.join(&name), chunk, false, &[]);
        for t in chunk {
            weight_map.insert(t.0.clone(), serde_json::json!(name));
        }
    }
    if files > 1 {
        let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
        std::fs::write(folder.join("pytorch_model.bin.index.json"), index.to_string()).unwrap();
    }
    (dir, folder)
}

#[test]
fn a_pytorch_model_bin_folder_opens_and_runs_as_its_safetensors_twin() {
    let st = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let mut want = Session::load(&st).unwrap();
    want.set_prompt("The model has weights", false).unwrap();
    let want_logits = want.current_logits().unwrap();
    for files in [1, 3] {
        let (_dir, folder) = as_torch_bins(files);
        let bin = ModelFolder::open(&folder).unwrap_or_else(|e| panic!("{files} file(s): {e}"));
        assert_eq!(bin.repr(), st.repr(), "{files} file(s): tree");
        assert_eq!(bin.checkpoint.shards.len(), files);
        let name = "model.layers.0.mlp.down_proj.weight";
        let (a, b) = (bin.checkpoint.tensor(name).unwrap(), st.checkpoint.tensor(name).unwrap());
        assert_eq!(bin.checkpoint.bytes(a), st.checkpoint.bytes(b), "the values, read in place from the zip");
        let mut s = Session::load(&bin).unwrap();
        s.set_prompt("The model has weights", false).unwrap();
        assert_eq!(s.current_logits().unwrap(), want_logits, "{files} file(s): the same next-token logits");
    }
}

/// A `.bin` whose pickle names code is refused by name when the folder opens; nothing runs.
#[test]
fn a_pytorch_model_bin_naming_code_is_refused() {
    let (_dir, folder) = as_torch_bins(1);
    let path = folder.join("pytorch_model.bin");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    std::io::Write::write_all(&mut zip, b"\x80\x02csubprocess\nPopen\n(X\x02\x00\x00\x00lstR.").unwrap();
    zip.finish().unwrap();
    let err = ModelFolder::open(&folder).err().expect("refused").to_string();
    assert!(err.contains("subprocess.Popen") && err.contains("pytorch_model.bin"), "{err}");
}

/// A `.safetensors` file on its own (no config.json): the tree from the names with generic
/// classes, the values readable, inference refused with the reason.
#[test]
fn a_lone_safetensors_file_opens_for_inspection() {
    let file = fixture("tiny-llama").join("model.safetensors");
    let model = ModelFolder::open(&file).unwrap();
    assert!(model.config.is_none());
    assert!(model.notices.iter().any(|n| n.contains("no config.json")), "{:?}", model.notices);
    assert!(model.repr().starts_with("Model(\n"), "{}", model.repr());
    let st = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let name = "model.layers.0.self_attn.q_proj.weight";
    let (a, b) = (model.checkpoint.tensor(name).unwrap(), st.checkpoint.tensor(name).unwrap());
    assert_eq!(model.checkpoint.bytes(a), st.checkpoint.bytes(b));
    let refused = Session::load(&model).err().expect("no config, no inference");
    assert!(refused.contains("tensor names only"), "{refused}");
}
