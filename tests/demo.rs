//! The bundled demo model (assets/demo, made by `cargo run --release --bin train-demo`):
//! it opens like any Hub folder, and its learned behaviour is pinned so a regression in
//! the forward pass or the tokenizer shows up here first. The pins are its own output (regression pins);
//! `the_demo_matches_an_independent_mixtral_forward` checks it against a reference made without this program.

use llm_anatomy::analysis::routing;
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::demo;
use llm_anatomy::engine::Session;
use llm_anatomy::sampling::SamplingParams;
use llm_anatomy::workspace::Workspace;

fn demo_session() -> Session {
    let folder = ModelFolder::open(&demo::demo_folder()).expect("assets/demo opens");
    Session::load(&folder).expect("the demo runs")
}

fn greedy(s: &mut Session, prompt: &str, chat: bool, n: usize) -> String {
    s.set_prompt(prompt, chat).unwrap();
    let ids = s.generate(n, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
    s.codec.decode(&ids)
}

#[test]
fn the_app_opens_the_demo_when_no_folder_is_given() {
    assert_eq!(Workspace::bundled_demo(), Some(demo::demo_folder()));
    let folder = ModelFolder::open(&demo::demo_folder()).unwrap();
    assert!(folder.notices.is_empty(), "{:?}", folder.notices);
    let repr = folder.repr();
    assert!(repr.starts_with("MixtralForCausalLM("), "{repr}");
    assert!(repr.contains("(0-3): 4 x MixtralDecoderLayer("), "{repr}");
    assert!(repr.contains("(0-3): 4 x MixtralBlockSparseTop2MLP("), "{repr}");
}

#[test]
fn greedy_completions_are_pinned() {
    let mut s = demo_session();
    for (prompt, chat, want) in PINNED {
        let got = greedy(&mut s, prompt, *chat, 10);
        assert!(got.starts_with(want), "{prompt:?} → {got:?}, expected it to start with {want:?}");
    }
}

#[test]
fn routing_uses_more_than_one_expert() {
    let mut s = demo_session();
    s.set_prompt("The capital of Japan is Tokyo. 3 + 4 = 7", false).unwrap();
    let layers = routing::summarize(&s.routing, &s.shared_gate, 2, true);
    assert_eq!(layers.len(), 4);
    for l in &layers {
        let used = l.load.iter().filter(|&&c| c > 0).count();
        assert!(used > 1, "layer {} sends every token to one expert: {:?}", l.layer, l.load);
    }
}

/// The demo teaches sampling: after each fact prompt several continuations are plausible
/// (its corpus says each fact in several ways), so at T = 1 the next token's entropy is
/// between 1 and 3 bits, and the right answer is still the single most likely token.
#[test]
fn demo_prompts_leave_room_for_sampling() {
    let mut s = demo_session();
    let params = SamplingParams { temperature: 1.0, ..Default::default() };
    for (prompt, chat, answer) in SAMPLING_PROMPTS {
        s.set_prompt(prompt, *chat).unwrap();
        let d = llm_anatomy::sampling::distribution(&s.current_logits().unwrap(), &[], &params);
        assert!((1.0..=3.0).contains(&d.entropy_bits), "{prompt:?}: {} bits", d.entropy_bits);
        let top = llm_anatomy::sampling::argmax(&d.probs) as u32;
        assert_eq!(s.codec.decode(&[top]), *answer, "{prompt:?}: the most likely next token");
        let runner_up = d.order.get(1).map(|&i| d.probs[i as usize]).unwrap_or(0.0);
        assert!(runner_up > 0.05, "{prompt:?}: the second candidate has only {runner_up}");
    }
}

const SAMPLING_PROMPTS: &[(&str, bool, &str)] = &[
    ("The capital of France is", false, " Paris"),
    ("The capital of Japan is", false, " Tokyo"),
    ("法国的首都是", false, "巴"),
    ("A banana is", false, " yellow"),
    ("香蕉是", false, "黄"),
    ("The sky is", false, " blue"),
    ("What color is a banana?", true, "A"),
];

/// The Attention panel has something famous to point at on the demo: a head whose every
/// token looks mostly at the token before it, on each of the demo's kinds of text.
#[test]
fn the_demo_has_a_previous_token_head() {
    use llm_anatomy::analysis::attention::{HeadPattern, head_pattern};
    let mut s = demo_session();
    s.set_internals(true).unwrap();
    let texts = [
        "The capital of France is Paris. The capital of Japan is Tokyo.",
        "法国的首都是巴黎。日本的首都是东京。",
        "What color is a banana? A banana is yellow.",
        "A banana is yellow. 3, 4, 5, 6, 7",
    ];
    let mut shares = Vec::new();
    for (layer, head) in (0..4).flat_map(|l| (0..4).map(move |h| (l, h))) {
        let mut worst = f32::INFINITY;
        for text in texts {
            s.set_prompt(text, false).unwrap();
            let internals = s.internals.clone().unwrap();
            let share = match head_pattern(&internals.head_rows(layer, head)) {
                Some(HeadPattern::PreviousToken(share)) => share,
                _ => 0.0,
            };
            worst = worst.min(share);
        }
        shares.push(((layer, head), worst));
    }
    let best = shares.iter().copied().max_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert!(best.1 >= 0.7, "no head attends to the previous token on every text: {shares:?}");
}

/// (prompt, chat template?, what greedy decoding must start with), checked after training.
const PINNED: &[(&str, bool, &str)] = &[
    ("The capital of France is", false, " Paris."),
    ("The capital of Japan is", false, " Tokyo."),
    ("法国的首都是", false, "巴黎。"),
    ("日本的首都是", false, "东京。"),
    ("A banana is", false, " yellow."),
    ("香蕉是", false, "黄色的。"),
    ("The sky is", false, " blue."),
    ("3, 4, 5, 6", false, ", 7, 8"),
    ("3 + 4 =", false, " 7"),
    ("What is the capital of Japan?", true, "The capital of Japan is Tokyo."),
    ("What color is a banana?", true, "A banana is yellow."),
];

#[test]
fn the_demo_adapter_changes_one_fact_and_keeps_the_others() {
    let folder = ModelFolder::open(&demo::demo_folder()).unwrap();
    let adapter = llm_anatomy::lora::LoraAdapter::open(&demo::demo_adapter_folder(), &folder, None).unwrap();
    assert_eq!((adapter.rank, adapter.alpha), (8, 16.0));
    let mut s = Session::load(&folder).unwrap();
    assert!(greedy(&mut s, "A banana is", false, 2).starts_with(" yellow"));
    s.set_adapter(Some((std::sync::Arc::new(adapter), 1.0))).unwrap();
    let with = greedy(&mut s, "A banana is", false, 2);
    assert!(with.starts_with(" blue"), "with the adapter: {with:?}");
    let paris = greedy(&mut s, "The capital of France is", false, 2);
    assert!(paris.starts_with(" Paris"), "other facts survive: {paris:?}");
}

/// The demo checked like every other model, not only against its own pinned output. Reference:
/// `tests/fixtures/demo.reference.json`, made by `tools/make_demo_reference.py` with Hugging Face `tokenizers`
/// (ids), jinja2 (the chat template) and a float64 numpy Mixtral forward written from transformers'
/// modeling_mixtral: input ids identical, last-position logits within 1e-3, every layer's top-2 experts the same
/// with their renormalised weights within 1e-4, and 10 greedy tokens identical.
#[test]
fn the_demo_matches_an_independent_mixtral_forward() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/demo.reference.json");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut s = demo_session();
    let prompts = r["prompts"].as_array().unwrap();
    assert!(!prompts.is_empty());
    for p in prompts {
        let text = p["text"].as_str().unwrap();
        s.set_prompt(text, p["chat"].as_bool().unwrap()).unwrap();
        let ids: Vec<u32> = serde_json::from_value(p["input_ids"].clone()).unwrap();
        assert_eq!(s.tokens, ids, "{text:?}: input ids");

        let want: Vec<f32> = serde_json::from_value(p["last_logits"].clone()).unwrap();
        let got = s.current_logits().unwrap();
        assert_eq!(got.len(), want.len(), "{text:?}: vocabulary");
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "{text:?}: logits differ by up to {worst}");

        let layers = p["router"].as_array().unwrap();
        assert_eq!(s.routing.len(), ids.len(), "{text:?}: routing per position");
        for (pos, record) in s.routing.iter().enumerate() {
            assert_eq!(record.len(), layers.len(), "{text:?}: MoE layers at position {pos}");
            for (layer, want) in record.iter().zip(layers) {
                assert_eq!(layer.0 as u64, want["layer"].as_u64().unwrap());
                let probs = llm_anatomy::sampling::softmax(&layer.1);
                let top = routing::top_k_ids(&probs, 2);
                let want_ids: Vec<usize> = serde_json::from_value(want["topk_ids"][pos].clone()).unwrap();
                assert_eq!(top, want_ids, "{text:?}: layer {} position {pos}", layer.0);
                let want_w: Vec<f32> = serde_json::from_value(want["topk_weights"][pos].clone()).unwrap();
                let total: f32 = top.iter().map(|&e| probs[e]).sum();
                for (&e, w) in top.iter().zip(&want_w) {
                    assert!((probs[e] / total - w).abs() < 1e-4, "{text:?}: layer {} position {pos}", layer.0);
                }
            }
        }

        let greedy: Vec<u32> = serde_json::from_value(p["greedy_ids"].clone()).unwrap();
        let ours = s.generate(greedy.len(), &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        assert_eq!(ours, greedy, "{text:?}: greedy continuation");
        assert_eq!(s.codec.decode(&ours), p["greedy_text"].as_str().unwrap());
    }
}
