//! torch.save files through the project's own restricted unpickler: real MiniMind and LoRA
//! files read as torch wrote them, and hostile pickles refused by name, with nothing run.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::fixture;
use llm_anatomy::checkpoint::pickle::{self, PickleError};

fn minimind_reference() -> serde_json::Value {
    let path = fixture("minimind/tiny-minimind-v1.reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The state dict torch wrote: every key in file order, shapes, dtypes, tied storages, and the
/// statistics of the values read in place.
#[test]
fn minimind_state_dict_reads_as_torch_wrote_it() {
    let r = minimind_reference();
    let sd = &r["state_dict_file"];
    let pth = pickle::open(&fixture("minimind/tiny-minimind-v1/full_sft_64.pth")).unwrap();
    let want: Vec<&str> = sd["key_order"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    let got: Vec<&str> = pth.tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(got, want);
    let refs = sd["tensors"].as_array().unwrap();
    assert_eq!(refs.len(), pth.tensors.len());
    for (t, r) in pth.tensors.iter().zip(refs) {
        assert_eq!(t.name, r["key"].as_str().unwrap());
        let shape: Vec<usize> = r["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
        assert_eq!(t.shape, shape, "{}", t.name);
        assert_eq!(t.storage, r["pickle"]["storage_key"].as_str().unwrap(), "{}", t.name);
        let v = t.dtype.decode_all_f32(pth.bytes(t));
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let min = v.iter().copied().fold(f32::INFINITY, f32::min) as f64;
        assert!(common::close(mean, r["mean"].as_f64().unwrap(), 1e-6, 1e-9), "{}: mean {mean}", t.name);
        assert_eq!(min, r["min"].as_f64().unwrap(), "{}", t.name);
    }
}

#[test]
fn minimind_lora_opens_through_the_same_reader() {
    let pth = pickle::open(&fixture("minimind/tiny-minimind-v1/lora/lora_identity_64.pth")).unwrap();
    assert!(!pth.tensors.is_empty());
    assert!(pth.tensors.iter().all(|t| t.name.contains(".lora.")), "{:?}", pth.tensors);
}

/// A torch.save-shaped zip around a hand-written pickle, with one 16-byte float storage `0`.
fn torch_zip(dir: &Path, name: &str, pickle: &[u8]) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    zip.write_all(pickle).unwrap();
    zip.start_file("archive/data/0", stored).unwrap();
    zip.write_all(&[0u8; 16]).unwrap();
    zip.finish().unwrap();
    path
}

/// Protocol-2 pickle pieces.
fn global(module: &str, name: &str) -> Vec<u8> {
    [b"c".as_slice(), module.as_bytes(), b"\n", name.as_bytes(), b"\n"].concat()
}

fn unicode(s: &str) -> Vec<u8> {
    [b"X".as_slice(), &(s.len() as u32).to_le_bytes(), s.as_bytes()].concat()
}

/// `{name: _rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())}` with the
/// storage class and the rebuild's arguments given.
fn state_dict(storage_class: (&str, &str), size: &[u64], stride: &[u64], extra_args: bool) -> Vec<u8> {
    let tuple = |xs: &[u64]| {
        let mut v = b"(".to_vec();
        for &x in xs {
            v.push(b'J');
            v.extend_from_slice(&(x as u32).to_le_bytes());
        }
        v.push(b't');
        v
    };
    let mut p = vec![0x80, 2, b'}', b'('];
    p.extend(unicode("w"));
    p.extend(global("torch._utils", "_rebuild_tensor_v2"));
    p.push(b'(');
    // persistent id ('storage', class, '0', 'cpu', 4)
    p.push(b'(');
    p.extend(unicode("storage"));
    p.extend(global(storage_class.0, storage_class.1));
    p.extend(unicode("0"));
    p.extend(unicode("cpu"));
    p.extend([b'K', 4, b't', b'Q']);
    p.extend([b'K', 0]);
    if extra_args {
        p.extend(tuple(size));
        p.extend(tuple(stride));
        p.push(0x89);
        p.extend(global("collections", "OrderedDict"));
        p.extend([b')', b'R']);
    }
    p.extend([b't', b'R', b'u', b'.']);
    p
}

#[test]
fn a_well_formed_hand_written_state_dict_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = torch_zip(dir.path(), "ok.pth", &state_dict(("torch", "FloatStorage"), &[2, 2], &[2, 1], true));
    let pth = pickle::open(&path).unwrap();
    assert_eq!(pth.tensors.len(), 1);
    assert_eq!(pth.tensors[0].shape, vec![2, 2]);
}

/// What `torch.load(weights_only=True)` refuses, we refuse, naming the global; nothing runs.
#[test]
fn globals_that_name_code_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "os.system",
            [vec![0x80, 2], global("os", "system"), unicode("touch /tmp/pwned"), vec![0x85, b'R', b'.']].concat(),
        ),
        ("posix.system", [vec![0x80, 2], global("posix", "system"), unicode("id"), vec![0x85, b'R', b'.']].concat()),
        ("builtins.eval", [vec![0x80, 2], global("builtins", "eval"), unicode("1+1"), vec![0x85, b'R', b'.']].concat()),
        ("subprocess.Popen", state_dict(("subprocess", "Popen"), &[2, 2], &[2, 1], true)),
    ];
    for (name, pickle_bytes) in cases {
        let path = torch_zip(dir.path(), &format!("{name}.pth"), &pickle_bytes);
        let err = pickle::open(&path).err().unwrap_or_else(|| panic!("{name} was accepted"));
        assert!(matches!(err, PickleError::ForeignGlobal { .. }), "{name}: {err}");
        let message = err.to_string();
        assert!(message.contains(name) && message.contains(&*path.to_string_lossy()), "{message}");
    }
    assert!(!Path::new("/tmp/pwned").exists());
}

#[test]
fn malformed_pickles_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let too_few = [
        vec![0x80, 2, b'}', b'('],
        unicode("w"),
        global("torch._utils", "_rebuild_tensor_v2"),
        vec![b')', b'R', b'u', b'.'],
    ]
    .concat();
    let empty_param = [
        vec![0x80, 2, b'}', b'('],
        unicode("w"),
        global("torch._utils", "_rebuild_parameter"),
        vec![b')', b'R', b'u', b'.'],
    ]
    .concat();
    let empty_from_type = [
        vec![0x80, 2, b'}', b'('],
        unicode("w"),
        global("torch._tensor", "_rebuild_from_type_v2"),
        vec![b')', b'R', b'u', b'.'],
    ]
    .concat();
    let mut deep = vec![0x80, 2, b')'];
    deep.extend(std::iter::repeat_n(0x85u8, 300_000));
    deep.push(b'.');
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("too few rebuild arguments", too_few),
        ("empty _rebuild_parameter", empty_param),
        ("empty _rebuild_from_type_v2", empty_from_type),
        ("short storage tuple", state_dict(("torch", "FloatStorage"), &[2, 2], &[2, 1], false)),
        ("shape past the storage", state_dict(("torch", "FloatStorage"), &[4096, 4096], &[4096, 1], true)),
        (
            "overflowing shape",
            state_dict(
                ("torch", "FloatStorage"),
                &[u32::MAX as u64, u32::MAX as u64, u32::MAX as u64],
                &[1, 1, 1],
                true,
            ),
        ),
        ("nested 300,000 deep", deep),
        ("truncated", vec![0x80, 2, b'X', 0xff, 0xff, 0xff, 0x7f]),
        ("unknown opcode", vec![0x80, 2, 0xfe]),
    ];
    for (what, bytes) in cases {
        let path = torch_zip(dir.path(), "bad.pth", &bytes);
        let err = pickle::open(&path).err().unwrap_or_else(|| panic!("{what}: accepted"));
        assert!(err.to_string().contains("bad.pth"), "{what}: {err}");
    }
}

#[test]
fn files_that_are_not_torch_zips_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = dir.path().join("legacy.pth");
    std::fs::write(&legacy, [0x80, 2, 0x8a, 0x0a]).unwrap();
    assert!(pickle::open(&legacy).err().unwrap().to_string().contains("pre-1.6"));
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, "hello").unwrap();
    assert!(pickle::open(&text).err().unwrap().to_string().contains("not a zip"));
    assert!(pickle::open(dir.path()).err().unwrap().to_string().contains("not a regular file"));
}
