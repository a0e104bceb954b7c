//! The Export menu and the CLI share `report`'s serialisers: computed in-process the way the
//! window computes them, the JSON must equal what `llm-anatomy … --json` prints.

mod common;

use common::{cli_json, fixture};
use llm_anatomy::analysis::Control;
use llm_anatomy::analysis::cast::{CastTarget, cast_report};
use llm_anatomy::analysis::floatbits::{self, Format};
use llm_anatomy::analysis::stats::{DataView, Histogram, compute_stats};
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::report::{self, BitsOrigin, ExponentRange};

const TENSOR: &str = "model.layers.0.self_attn.q_proj.weight";

#[test]
fn stats_json_in_process_equals_the_cli() {
    let path = fixture("tiny-llama-bf16");
    let model = ModelFolder::open(&path).unwrap();
    let info = model.checkpoint.require(TENSOR).unwrap();
    let view = DataView { dtype: info.dtype, bytes: model.checkpoint.bytes(info) };
    let stats = compute_stats(&[view], 32, &Control::new()).unwrap();
    let ours = report::stats_json(&info.name, info.dtype.as_str(), &info.shape, &stats);
    assert_eq!(ours, cli_json(&["stats", path.to_str().unwrap(), TENSOR, "--json"]));
    // A module aggregate has no single shape: the same keys, with an empty one.
    let module = report::stats_json("model.layers.0", "mixed", &[], &stats);
    assert_eq!(module["shape"], serde_json::json!([]));
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&module), keys(&ours));
}

#[test]
fn cast_and_bits_json_in_process_equal_the_cli() {
    let path = fixture("tiny-llama");
    let p = path.to_str().unwrap();
    let model = ModelFolder::open(&path).unwrap();
    let ckpt = &model.checkpoint;
    let info = ckpt.require(TENSOR).unwrap();
    let view = DataView { dtype: info.dtype, bytes: ckpt.bytes(info) };
    let r = cast_report(&[view], CastTarget::Float(Format::F8E4M3), &Control::new()).unwrap();
    let ours = report::cast_json(&info.name, info.dtype.as_str(), &r);
    assert_eq!(ours, cli_json(&["cast", p, TENSOR, "--to", "f8e4m3", "--json"]));

    let value = ckpt.element(info, 7).unwrap();
    let origin = BitsOrigin { tensor: TENSOR, stored_dtype: info.dtype.as_str(), index: 7 };
    let ours = report::bits_json(&floatbits::breakdown(value), Some(origin));
    assert_eq!(ours, cli_json(&["bits", "--tensor", p, TENSOR, "--index", "7", "--json"]));
    assert_eq!(report::bits_json(&floatbits::breakdown(-2.5), None), cli_json(&["bits", "-2.5", "--json"]));
}

#[test]
fn csv_builders_keep_the_panels_columns() {
    let h = Histogram { edges: vec![-1.0, 0.0, 0.5], counts: vec![3, 4] };
    assert_eq!(report::histogram_csv(&h), "bin_start,bin_end,count\n-1,0,3\n0,0.5,4\n");
    assert_eq!(
        report::histograms_csv(&[("W", &h), ("W+dW", &h)]),
        "series,bin_start,bin_end,count\nW,-1,0,3\nW,0,0.5,4\nW+dW,-1,0,3\nW+dW,0,0.5,4\n"
    );
    assert_eq!(report::singular_values_csv(&[2.5, 1.0]), "index,singular_value\n1,2.5\n2,1\n");
    assert_eq!(report::children_csv(&["mlp".into()], &[12]), "child,parameters\nmlp,12\n");
    assert_eq!(report::leading_singular_values(&[3.0]), vec![3.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn exponent_ranges_follow_the_target_format() {
    use ExponentRange::*;
    // E4M3: normal exponents -6..=8 (no ∞, so the top exponent is usable), subnormals down to 2^-9.
    let e4m3: Vec<_> =
        [9, 8, -6, -7, -9, -10].iter().map(|&e| ExponentRange::of(CastTarget::Float(Format::F8E4M3), e)).collect();
    assert_eq!(e4m3, [Overflow, Normal, Normal, Subnormal, Subnormal, Underflow]);
    // BF16 has f32's exponent range: everything an f32 can hold is normal or subnormal.
    assert_eq!(ExponentRange::of(CastTarget::Float(Format::BF16), 127), Normal);
    assert_eq!(ExponentRange::of(CastTarget::Float(Format::BF16), -126), Normal);
    assert_eq!(ExponentRange::of(CastTarget::Float(Format::BF16), -133), Subnormal);
    assert_eq!(ExponentRange::of(CastTarget::Float(Format::F16), 16), Overflow);
    assert_eq!(ExponentRange::Subnormal.as_str(), "subnormal");
}
