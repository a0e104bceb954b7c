//! Models where people already have them: a Hugging Face cache (snapshots symlinked into
//! blobs), an Ollama store (manifests naming sha256 blobs) and an LM Studio folder, laid out
//! here the way those tools lay them out, then found, described and opened by name.

mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use llm_anatomy::library::{self, Source};

const HASH: &str = "0123456789abcdef0123456789abcdef01234567";

/// `models--ORG--NAME` holding tiny-llama as the hub client stores it.
fn hf_cache(root: &Path, with_incomplete: bool) -> PathBuf {
    let hub = root.join("hub");
    let repo = hub.join("models--TinyOrg--tiny-llama");
    let (blobs, snap) = (repo.join("blobs"), repo.join("snapshots").join(HASH));
    fs::create_dir_all(&blobs).unwrap();
    fs::create_dir_all(&snap).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), HASH).unwrap();
    for (i, entry) in fs::read_dir(common::fixture("tiny-llama")).unwrap().enumerate() {
        let entry = entry.unwrap();
        let blob = blobs.join(format!("blob{i}"));
        fs::copy(entry.path(), &blob).unwrap();
        symlink(format!("../../blobs/blob{i}"), snap.join(entry.file_name())).unwrap();
    }
    if with_incomplete {
        fs::write(blobs.join("deadbeef.incomplete"), b"partial").unwrap();
    }
    hub
}

#[test]
fn hf_cache_snapshots_are_found_and_open_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hf_cache(dir.path(), true);
    let found = library::scan_hf(&hub);
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!((e.source, e.name.as_str(), e.revision.as_str()), (Source::HuggingFace, "TinyOrg/tiny-llama", HASH));
    assert_eq!(e.format, "safetensors");
    assert_eq!(e.architecture.as_deref(), Some("LlamaForCausalLM"));
    assert_eq!(e.bytes, fs::metadata(common::fixture("tiny-llama/model.safetensors")).unwrap().len());
    assert!(e.missing.iter().any(|m| m.contains("interrupted")), "{:?}", e.missing);
    let snap = library::resolve_hf(&hub, "TinyOrg/tiny-llama").unwrap();
    assert_eq!(snap, hub.join("models--TinyOrg--tiny-llama/snapshots").join(HASH));
    assert_eq!(library::resolve_hf(&hub, &format!("TinyOrg/tiny-llama@{HASH}")).unwrap(), snap);
    // The CLI opens it by name, through the symlinks, with no network.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .env("HF_HUB_CACHE", &hub)
        .args(["tree", "TinyOrg/tiny-llama"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("LlamaForCausalLM("));
}

#[test]
fn a_name_not_in_the_cache_lists_close_matches() {
    let dir = tempfile::tempdir().unwrap();
    let hub = hf_cache(dir.path(), false);
    let err = library::resolve_hf(&hub, "TinyOrg/tiny-lama").unwrap_err();
    assert!(err.contains("never downloads") && err.contains("close matches: TinyOrg/tiny-llama"), "{err}");
}

#[test]
fn a_shard_the_index_names_but_the_snapshot_lacks_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("hub/models--A--sharded/snapshots").join(HASH);
    fs::create_dir_all(&snap).unwrap();
    for entry in fs::read_dir(common::fixture("tiny-llama-sharded")).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().to_string_lossy().contains("00002") {
            fs::copy(entry.path(), snap.join(entry.file_name())).unwrap();
        }
    }
    let found = library::scan_hf(&dir.path().join("hub"));
    assert!(found[0].missing.iter().any(|m| m.contains("model-00002-of-00003.safetensors")), "{:?}", found[0].missing);
}

#[test]
fn ollama_manifests_name_their_gguf_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("ollama");
    let manifest = store.join("manifests/registry.ollama.ai/library/smol/latest");
    fs::create_dir_all(manifest.parent().unwrap()).unwrap();
    fs::create_dir_all(store.join("blobs")).unwrap();
    let digest = "sha256:4f5e";
    fs::write(store.join("blobs/sha256-4f5e"), b"GGUF....").unwrap();
    fs::write(
        &manifest,
        serde_json::json!({"layers": [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:aaaa"},
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest}
        ]})
        .to_string(),
    )
    .unwrap();
    let found = library::scan_ollama(&store);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].name.as_str(), found[0].format.as_str()), ("smol:latest", "gguf"));
    assert_eq!(library::resolve_ollama(&store, "smol").unwrap(), store.join("blobs/sha256-4f5e"));
    assert!(library::resolve_ollama(&store, "smal").unwrap_err().contains("close matches: smol:latest"));
}

#[test]
fn lm_studio_ggufs_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("lmstudio/bartowski/SmolLM2-GGUF");
    fs::create_dir_all(&repo).unwrap();
    fs::write(repo.join("SmolLM2-Q4_K_M.gguf"), b"GGUF").unwrap();
    let found = library::scan_lmstudio(&dir.path().join("lmstudio"));
    assert_eq!(found[0].name, "bartowski/SmolLM2-GGUF/SmolLM2-Q4_K_M.gguf");
}
