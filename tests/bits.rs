//! Casts must be bit-identical to torch's `.to(dtype)` for every reference value.

mod common;

use std::process::Command;

use common::fixture;
use llm_anatomy::analysis::floatbits::{Class, Format, cast, decode};

fn reference_values() -> Vec<serde_json::Value> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("dtype-roundings.json")).unwrap()).unwrap();
    v["values"].as_array().unwrap().clone()
}

fn parse_hex(s: &str) -> u32 {
    u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
}

fn json_value(v: &serde_json::Value) -> f64 {
    match v {
        serde_json::Value::String(s) if s == "NaN" => f64::NAN,
        serde_json::Value::String(s) if s == "Infinity" => f64::INFINITY,
        serde_json::Value::String(s) if s == "-Infinity" => f64::NEG_INFINITY,
        other => other.as_f64().unwrap(),
    }
}

#[test]
fn every_reference_value_casts_bit_identically_to_torch() {
    let values = reference_values();
    assert_eq!(values.len(), 64);
    for v in &values {
        let source = v["source"].as_str().unwrap();
        let x = f32::from_bits(parse_hex(v["f32_hex"].as_str().unwrap()));
        for (format, key) in [
            (Format::F32, "f32"),
            (Format::BF16, "bf16"),
            (Format::F16, "f16"),
            (Format::F8E4M3, "f8_e4m3fn"),
            (Format::F8E5M2, "f8_e5m2"),
        ] {
            let want_bits = parse_hex(v[format!("{key}_hex")].as_str().unwrap());
            let got = cast(x, format);
            assert_eq!(
                got.bits,
                want_bits,
                "{source}: {} of {x:e}: got {:#x}, torch {want_bits:#x}",
                format.name(),
                got.bits
            );
            let want_value = json_value(&v[key]);
            if want_value.is_nan() {
                assert_eq!(got.class, Class::Nan, "{source} {key}");
            } else {
                assert_eq!(got.value, want_value, "{source} {key}");
                assert_eq!(got.value.is_sign_negative(), want_value.is_sign_negative(), "{source} {key} sign");
            }
            // Decoding torch's bits gives torch's value.
            let d = decode(format, want_bits);
            if !want_value.is_nan() {
                assert_eq!(d.value, want_value, "{source} {key} decode");
            }
        }
    }
}

#[test]
fn bits_cli_json_matches_the_contract() {
    let v = common::cli_json(&["bits", "-2.5", "--json"]);
    assert_eq!(v["input"], -2.5);
    for key in ["f32", "bf16", "f16", "f8_e4m3", "f8_e5m2"] {
        let f = &v[key];
        for field in ["value", "hex", "sign", "exponent_bits", "mantissa_bits", "exponent", "class"] {
            assert!(f.get(field).is_some(), "{key}.{field} missing");
        }
        assert_eq!(f["value"], -2.5);
        assert_eq!(f["sign"], 1);
        assert_eq!(f["exponent"], 1);
        assert_eq!(f["class"], "normal");
    }
    assert_eq!(v["f32"]["hex"], "0xc0200000");
    assert_eq!(v["f32"]["exponent_bits"], "10000000");
    assert_eq!(v["f32"]["mantissa_bits"], "01000000000000000000000");
    assert_eq!(v["bf16"]["hex"], "0xc020");
    assert_eq!(v["f16"]["hex"], "0xc100");
    assert_eq!(v["f8_e4m3"]["hex"], "0xc2");
    assert_eq!(v["f8_e5m2"]["hex"], "0xc1");

    let out = Command::new(env!("CARGO_BIN_EXE_llm-anatomy")).args(["bits", "70000", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["f16"]["class"], "inf");
    assert_eq!(v["f8_e4m3"]["value"], 448.0);
    let out = Command::new(env!("CARGO_BIN_EXE_llm-anatomy")).args(["bits", "nan", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["bf16"]["value"].is_null());
    assert_eq!(v["bf16"]["class"], "nan");
    assert_eq!(v["bf16"]["hex"], "0xffff");
}

#[test]
fn bits_of_a_tensor_element() {
    // Reference row: tiny-llama q_proj flat index 0 = 0xbf0fa638.
    let path = fixture("tiny-llama");
    let v = common::cli_json(&[
        "bits",
        "--tensor",
        path.to_str().unwrap(),
        "model.layers.0.self_attn.q_proj.weight",
        "--index",
        "0",
        "--json",
    ]);
    assert_eq!(v["f32"]["hex"], "0xbf0fa638");
    assert_eq!(v["bf16"]["hex"], "0xbf10");
    assert_eq!(v["f16"]["hex"], "0xb87d");
    assert_eq!(v["f8_e4m3"]["hex"], "0xb1");
    assert_eq!(v["f8_e5m2"]["hex"], "0xb8");
    // An index past the end is an error, not a panic.
    let out = Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["bits", "--tensor", path.to_str().unwrap(), "model.norm.weight", "--index", "64"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("64"));
}

#[test]
fn cast_cli_reports_counts() {
    let path = fixture("tiny-llama");
    let v = common::cli_json(&["cast", path.to_str().unwrap(), "model.norm.weight", "--to", "bf16", "--json"]);
    assert_eq!(v["count"], 64);
    assert_eq!(v["overflow"], 0);
    assert_eq!(v["underflow"], 0);
    assert!(v["max_abs_error"].as_f64().unwrap() > 0.0);
    // BF16 keeps 8 significant bits: the relative error is at most 2^-8.
    assert!(v["max_rel_error"].as_f64().unwrap() <= 2f64.powi(-8));
    for key in ["exact", "subnormal", "mean_abs_error", "mean_rel_error", "rel_error_histogram", "exponent_histogram"] {
        assert!(v.get(key).is_some(), "{key} missing");
    }
}

/// A tiny-llama copy whose `model.norm.weight` (64 F32 values) is overwritten with `values`.
fn with_norm_weight(values: &[f32; 64]) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, folder) = common::copy_fixture("tiny-llama");
    let path = folder.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let t = &header["model.norm.weight"];
    assert_eq!((t["dtype"].as_str(), t["shape"].clone()), (Some("F32"), serde_json::json!([64])));
    let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
    for (i, v) in values.iter().enumerate() {
        bytes[start + 4 * i..start + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&path, bytes).unwrap();
    (dir, folder)
}

/// Counts on a tensor whose answer is known by construction (and was checked once with Python's IEEE half
/// `struct.pack('<e', x)`, which raises on overflow and rounds half to even):
/// 16 × k/4 (exact in FP16), 16 × 70000 + 1000k (past FP16's 65504: overflow), 16 × k·2⁻²⁴ (FP16 subnormals,
/// exactly representable, so also exact), 8 × 1e-9 (below half of 2⁻²⁴: flushed to zero), 8 × 0.1 + 0.01k
/// (rounded). E4M3 has no infinity and saturates at 448: everything ≥ 448 counts as an overflow there.
#[test]
fn cast_counts_on_a_tensor_built_to_have_known_answers() {
    let mut values = [0f32; 64];
    for k in 0..16 {
        values[k] = 0.25 * (k + 1) as f32;
        values[16 + k] = 70000.0 + 1000.0 * k as f32;
        values[32 + k] = (k + 1) as f32 * 2f32.powi(-24);
    }
    for k in 0..8 {
        values[48 + k] = 1e-9;
        values[56 + k] = 0.1 + 0.01 * k as f32;
    }
    let (_dir, folder) = with_norm_weight(&values);
    let p = folder.to_str().unwrap();
    let v = common::cli_json(&["cast", p, "model.norm.weight", "--to", "f16", "--json"]);
    let got = |k: &str| v[k].as_u64().unwrap();
    assert_eq!(
        [got("count"), got("exact"), got("overflow"), got("subnormal"), got("underflow"), got("non_finite_input")],
        [64, 32, 16, 16, 8, 0],
        "{v}"
    );
    // A flush to zero loses the whole value.
    assert_eq!(v["max_rel_error"], 1.0);
    // FP32 exponents of the non-zero inputs: 16 + 16 + 16 + 8 + 8 = 64 values in the histogram.
    let exps: Vec<u64> = serde_json::from_value(v["exponent_histogram"]["counts"].clone()).unwrap();
    assert_eq!(exps.iter().sum::<u64>(), 64);
    // 1e-9: floor(log2 1e-9) = -30, eight of them.
    let e: Vec<i64> = serde_json::from_value(v["exponent_histogram"]["exponents"].clone()).unwrap();
    assert_eq!(exps[e.iter().position(|&x| x == -30).unwrap()], 8);

    let v8 = common::cli_json(&["cast", p, "model.norm.weight", "--to", "f8e4m3", "--json"]);
    assert_eq!(v8["overflow"], 16, "E4M3 clamps the 16 values above 448");
}
