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

#[test]
fn module_aggregate_covers_all_its_tensors() {
    let model = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let ckpt = &model.checkpoint;
    let names = [
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    ];
    let views: Vec<DataView> = names
        .iter()
        .map(|n| {
            let t = ckpt.tensor(n).unwrap();
            DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }
        })
        .collect();
    let s = compute_stats(&views, 16, &Control::new()).unwrap();
    assert_eq!(s.count, 3 * 64 * 128);
    assert_eq!(s.histogram.counts.iter().sum::<u64>(), s.count);
}
