//! Layer sweeps and checkpoint diffs against numpy (float64 over the stored values, BF16
//! widened exactly): `tests/fixtures/sweep-diff.reference.json`, whose `definitions` key says
//! how each figure is computed.

mod common;

use common::{cli_json, close, fixture};

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture("sweep-diff.reference.json")).unwrap()).unwrap()
}

#[test]
fn sweeps_match_numpy() {
    let r = reference();
    for model in ["tiny-llama", "tiny-mixtral"] {
        let path = fixture(model);
        let got = cli_json(&["sweep", path.to_str().unwrap(), "--json"]);
        let want = r["sweep"][model].as_object().unwrap();
        let roles = got["roles"].as_object().unwrap();
        assert_eq!(roles.len(), want.len(), "{model}: roles {:?}", roles.keys().collect::<Vec<_>>());
        for (role, layers) in want {
            let (layers, got_layers) = (layers.as_array().unwrap(), roles[role].as_array().unwrap());
            assert_eq!(got_layers.len(), layers.len(), "{model} {role}");
            for (g, w) in got_layers.iter().zip(layers) {
                assert_eq!(g["layer"], w["layer"]);
                assert_eq!(g["tensor"], w["tensor"]);
                for key in ["mean", "std", "abs_max", "kurtosis", "outlier_frac"] {
                    let (g, w) = (g[key].as_f64().unwrap(), w[key].as_f64().unwrap());
                    assert!(close(g, w, 1e-4, 1e-9), "{model} {role} {key}: {g} vs numpy {w}");
                }
            }
        }
    }
}

#[test]
fn diff_of_a_bf16_copy_matches_numpy() {
    let r = &reference()["diff"]["tiny-llama..tiny-llama-bf16"];
    let (a, b) = (fixture("tiny-llama"), fixture("tiny-llama-bf16"));
    let got = cli_json(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(got["only_in_a"], r["only_in_a"]);
    assert_eq!(got["only_in_b"], r["only_in_b"]);
    let (got, want) = (got["tensors"].as_array().unwrap(), r["tensors"].as_array().unwrap());
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g["tensor"], w["tensor"]);
        assert_eq!(g["changed"], w["changed"], "{}", w["tensor"]);
        assert_eq!(g["numel"], w["numel"]);
        for key in ["fro_diff", "fro_a", "rel", "max_abs_diff"] {
            let (gv, wv) = (g[key].as_f64().unwrap(), w[key].as_f64().unwrap());
            assert!(close(gv, wv, 1e-4, 1e-12), "{} {key}: {gv} vs numpy {wv}", w["tensor"]);
        }
    }
}

/// The histogram of B − A for one tensor of the diff: every element in a bin, the range
/// numpy's over Δ (so its edges reach the largest |Δ| the diff reports), streamed, no copy.
#[test]
fn delta_histogram_covers_every_element_and_the_largest_change() {
    use llm_anatomy::arch::ModelFolder;
    let (a, b) =
        (ModelFolder::open(&fixture("tiny-llama")).unwrap(), ModelFolder::open(&fixture("tiny-llama-bf16")).unwrap());
    let name = "model.layers.0.mlp.down_proj.weight";
    let h = llm_anatomy::analysis::compare::delta_histogram(&a.checkpoint, &b.checkpoint, name, 40).unwrap();
    assert_eq!(h.counts.iter().sum::<u64>(), 64 * 128);
    let r = &reference()["diff"]["tiny-llama..tiny-llama-bf16"]["tensors"];
    let want = r.as_array().unwrap().iter().find(|t| t["tensor"] == name).unwrap()["max_abs_diff"].as_f64().unwrap();
    let reach = h.edges.first().unwrap().abs().max(h.edges.last().unwrap().abs());
    assert!((reach - want).abs() <= 1e-12 * want.max(1.0), "edges reach {reach}, the largest |Δ| is {want}");
}

#[test]
fn different_architectures_list_what_is_only_on_one_side() {
    let (a, b) = (fixture("tiny-llama"), fixture("tiny-qwen2"));
    let got = cli_json(&["diff", a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert!(got["only_in_b"].as_array().unwrap().iter().any(|t| t.as_str().unwrap().ends_with("q_proj.bias")));
}

/// `compare --json`'s shape on the tiny Llama, and its numbers where they are known: a
/// precision against itself has KL 0 and agrees everywhere; F16 round-tripped weights stay
/// close; arithmetic on a model with no quantized weight is refused with the reason.
#[test]
fn precision_compare_json_shape_and_self_comparison() {
    let path = fixture("tiny-llama");
    let p = path.to_str().unwrap();
    let run = |b: &str| {
        cli_json(&[
            "compare",
            p,
            "--prompt",
            "The capital",
            "--precision",
            "stored",
            "--precision",
            b,
            "--max-new",
            "4",
            "--json",
        ])
    };
    let same = run("stored");
    for key in ["prompt", "prompt_ids", "a", "b", "steps", "summary"] {
        assert!(same.get(key).is_some(), "no `{key}` in {same}");
    }
    for key in ["precision", "greedy_ids", "greedy_text", "pieces"] {
        assert!(same["a"].get(key).is_some() && same["b"].get(key).is_some(), "no `{key}`");
    }
    let steps = same["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    for s in steps {
        for key in ["token", "top1_b", "kl", "p_a", "p_b"] {
            assert!(s.get(key).is_some(), "no `{key}` in a step");
        }
        assert_eq!(s["kl"], 0.0);
        assert_eq!(s["token"], s["top1_b"]);
    }
    assert_eq!(same["summary"]["top1_agreement"], 1.0);
    assert!(same["summary"]["first_divergence"].is_null());
    assert_eq!(same["a"]["greedy_ids"], same["b"]["greedy_ids"]);

    let f16 = run("f16");
    assert_eq!(f16["b"]["precision"], "f16");
    let mean_kl = f16["summary"]["mean_kl"].as_f64().unwrap();
    assert!(mean_kl > 0.0 && mean_kl < 1e-3, "F16 weights moved KL by {mean_kl}");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["compare", p, "--prompt", "x", "--precision", "stored", "--precision", "llamacpp"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no weight is quantized"));
    let one = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["compare", p, "--prompt", "x", "--precision", "bf16"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&one.stderr).contains("give exactly two"));
}
