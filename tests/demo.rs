//! The bundled demo model (assets/demo, made by `cargo run --release --bin train-demo`):
//! it opens like any Hub folder, and its learned behaviour is pinned so a regression in
//! the forward pass or the tokenizer shows up here first.

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
