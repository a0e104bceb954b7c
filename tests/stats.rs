//! Statistics and histograms of every stored tensor against numpy's, on every fixture.

mod common;

use common::{MODEL_FIXTURES, close, fixture, reference};
use llm_anatomy::analysis::Control;
use llm_anatomy::analysis::stats::{DataView, compute_stats};
use llm_anatomy::arch::ModelFolder;

#[test]
fn every_tensor_matches_numpy_stats_and_histogram() {
    let mut checked = 0;
    for name in MODEL_FIXTURES {
        let model = ModelFolder::open(&fixture(name)).unwrap();
        let ckpt = &model.checkpoint;
        let reference = reference(name);
        let tensors = reference["tensors"].as_object().unwrap();
        assert_eq!(tensors.len(), ckpt.tensors.len(), "{name}: tensor count");
        for (tname, r) in tensors {
            let t = ckpt.tensor(tname).unwrap_or_else(|| panic!("{name}: missing {tname}"));
            assert_eq!(t.dtype.as_str(), r["dtype"].as_str().unwrap());
            let shape: Vec<usize> = serde_json::from_value(r["shape"].clone()).unwrap();
            assert_eq!(t.shape, shape);
            assert_eq!(ckpt.shard_name(t), r["file"].as_str().unwrap());
            let offsets: Vec<usize> = serde_json::from_value(r["data_offsets"].clone()).unwrap();
            assert_eq!([t.data_offsets.0, t.data_offsets.1], [offsets[0], offsets[1]]);

            let s = compute_stats(&[DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }], 32, &Control::new()).unwrap();
            let std = r["std"].as_f64().unwrap();
            for (what, got, want) in [
                ("mean", s.mean, r["mean"].as_f64().unwrap()),
                ("std", s.std, std),
                ("min", s.min, r["min"].as_f64().unwrap()),
                ("max", s.max, r["max"].as_f64().unwrap()),
            ] {
                assert!(close(got, want, 1e-5, 1e-12), "{name} {tname} {what}: {got} vs numpy {want}");
            }
            let hist: Vec<u64> = serde_json::from_value(r["hist32"].clone()).unwrap();
            assert_eq!(s.histogram.counts, hist, "{name} {tname} histogram");
            assert_eq!(s.count as usize, t.numel());
            checked += 1;
        }
    }
    assert!(checked > 150, "checked {checked} tensors");
}

/// A module's figures pool its tensors' elements. Reference: numpy's per-tensor mean, std (ddof 0), min, max and
/// counts in `tiny-llama.reference.json`, pooled by the exact identities μ = Σ nᵢμᵢ / N and
/// σ² = Σ nᵢ(σᵢ² + μᵢ²) / N − μ², min of mins, max of maxes.
#[test]
fn module_aggregate_pools_its_tensors_like_numpy() {
    let model = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let ckpt = &model.checkpoint;
    let reference = reference("tiny-llama");
    let names = [
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        // a norm weight (mean ≈ 1) makes a pooled mean that ignores the counts visibly wrong
        "model.layers.0.post_attention_layernorm.weight",
    ];
    let views: Vec<DataView> = names
        .iter()
        .map(|n| {
            let t = ckpt.tensor(n).unwrap();
            DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }
        })
        .collect();
    let s = compute_stats(&views, 16, &Control::new()).unwrap();
    let (mut n, mut sum, mut sum_sq, mut min, mut max) = (0f64, 0f64, 0f64, f64::INFINITY, f64::NEG_INFINITY);
    for name in names {
        let r = &reference["tensors"][name];
        let shape: Vec<usize> = serde_json::from_value(r["shape"].clone()).unwrap();
        let ni = shape.iter().product::<usize>() as f64;
        let (m, sd) = (r["mean"].as_f64().unwrap(), r["std"].as_f64().unwrap());
        n += ni;
        sum += ni * m;
        sum_sq += ni * (sd * sd + m * m);
        min = min.min(r["min"].as_f64().unwrap());
        max = max.max(r["max"].as_f64().unwrap());
    }
    let mean = sum / n;
    let std = (sum_sq / n - mean * mean).sqrt();
    assert_eq!(s.count as f64, n);
    assert_eq!(s.histogram.counts.iter().sum::<u64>(), s.count);
    for (what, got, want) in [("mean", s.mean, mean), ("std", s.std, std), ("min", s.min, min), ("max", s.max, max)] {
        assert!(close(got, want, 1e-5, 1e-9), "pooled {what}: {got} vs {want} from the per-tensor references");
    }
}
