//! The workspace alone, with no window: what the panels rely on, driven by actions.

mod common;

use common::{fixture, reference};
use llm_anatomy::workspace::{Action, Selection, Workspace};

/// Polls the engine's events until `done` holds, as the shell would once per frame. The deadline is generous (a
/// loaded CI machine running a debug build); a hang or an engine error still fails, saying what was awaited.
fn poll_until(ws: &mut Workspace, what: &str, done: impl Fn(&Workspace) -> bool) {
    let start = std::time::Instant::now();
    loop {
        ws.poll();
        if done(ws) {
            return;
        }
        if ws.engine.error.is_some() || start.elapsed() > std::time::Duration::from_secs(120) {
            panic!(
                "no {what} after {:?} (engine status {:?}, error {:?})",
                start.elapsed(),
                ws.engine.status,
                ws.engine.error
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn select_a_tensor_and_get_its_statistics_from_a_job() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    assert!(ws.problems.is_empty(), "{:?}", ws.problems);
    // Opening read headers only: nothing is loaded for inference yet.
    assert!(ws.engine.loaded.is_none() && !ws.engine.is_load_sent());
    let name = "model.layers.0.mlp.down_proj.weight";
    ws.apply(Action::Select(Selection::Tensor(name.into())));
    poll_until(&mut ws, "the statistics", |ws| ws.current_stats().is_some());
    let stats = ws.current_stats().unwrap().as_ref().unwrap();
    let r = &reference("tiny-llama")["tensors"][name];
    assert_eq!(stats.count, 64 * 128);
    assert!(common::close(stats.mean, r["mean"].as_f64().unwrap(), 1e-6, 1e-9));
    assert!(common::close(stats.std, r["std"].as_f64().unwrap(), 1e-6, 1e-9));
    assert_eq!(stats.histogram.counts.len(), ws.settings.histogram.bins);
}

#[test]
fn attach_and_detach_an_adapter() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    ws.apply(Action::OpenAdapter(fixture("tiny-llama-lora")));
    assert!(ws.problems.is_empty(), "{:?}", ws.problems);
    let model = ws.model.as_ref().unwrap();
    assert_eq!(model.tree.nodes[0].class_name, "PeftModelForCausalLM");
    let q = model.tree.find("base_model.model.model.layers.0.self_attn.q_proj").unwrap();
    assert_eq!(ws.adapted_module(q).unwrap().module, "model.layers.0.self_attn.q_proj");
    // The LoRA figures come from a worker and match PEFT's ‖ΔW‖ / ‖W‖.
    ws.apply(Action::RequestLoraFigures("model.layers.0.self_attn.q_proj".into()));
    ws.wait_for_jobs();
    let figures = ws.lora_figures("model.layers.0.self_attn.q_proj").unwrap().as_ref().unwrap();
    let peft = &reference("tiny-llama-lora")["modules"][0];
    assert_eq!(peft["module"], "model.layers.0.self_attn.q_proj");
    let (ratio, delta) = (peft["ratio_delta_over_W"].as_f64().unwrap(), peft["fro_delta"].as_f64().unwrap());
    assert!(common::close(figures.summary.ratio, ratio, 1e-5, 1e-9), "{} vs {ratio}", figures.summary.ratio);
    assert!(common::close(figures.summary.delta_norm, delta, 1e-5, 1e-9));
    ws.apply(Action::UnloadActiveAdapter);
    assert!(ws.active.is_none() && ws.adapters.is_empty());
    assert_eq!(ws.model.as_ref().unwrap().tree.nodes[0].class_name, "LlamaForCausalLM");
    assert!(ws.lora_figures("model.layers.0.self_attn.q_proj").is_none());
}

#[test]
fn a_prompt_runs_through_the_engine_client() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    let r = reference("tiny-llama");
    let prompt = &r["prompts"][0];
    ws.apply(Action::EditPrompt { text: prompt["text"].as_str().unwrap().into(), chat: false });
    ws.apply(Action::RunPrompt);
    poll_until(&mut ws, "the first distribution", |ws| ws.engine.derived().is_some());
    let snap = ws.engine.snapshot.as_ref().unwrap();
    let ids: Vec<u32> = prompt["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
    assert_eq!(snap.tokens, ids);
    let d = &ws.engine.derived().unwrap().distribution;
    let top20 = prompt["samplers"]["t1.0"]["top20"].as_array().unwrap();
    assert_eq!(d.order.len(), d.probs.len());
    assert_eq!(top20.len(), 20, "the reference's top 20");
    for (got, want) in d.order.iter().zip(top20) {
        assert_eq!(*got as u64, want["id"].as_u64().unwrap());
        assert!((d.probs[*got as usize] - want["prob"].as_f64().unwrap() as f32).abs() < 1e-4);
    }
    // Generation goes on whatever the window shows; step back is a truncation.
    ws.apply(Action::Generate(3));
    poll_until(&mut ws, "three tokens", |ws| {
        ws.engine.snapshot.as_ref().is_some_and(|s| s.tokens.len() == ids.len() + 3)
    });
    ws.apply(Action::StepBack);
    poll_until(&mut ws, "the step back", |ws| {
        ws.engine.snapshot.as_ref().is_some_and(|s| s.tokens.len() == ids.len() + 2)
    });
    assert_eq!(ws.engine.forwards(), 4);
}

#[test]
fn opening_another_model_forgets_the_old_engine_state() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    ws.apply(Action::RunPrompt);
    poll_until(&mut ws, "the prompt", |ws| ws.engine.snapshot.is_some());
    ws.open_blocking(&fixture("tiny-qwen2"));
    assert!(ws.engine.snapshot.is_none() && ws.engine.loaded.is_none());
    ws.apply(Action::RunPrompt);
    poll_until(&mut ws, "the new model's prompt", |ws| {
        ws.engine.loaded.as_ref().is_some_and(|l| l.architecture == "Qwen2ForCausalLM") && ws.engine.snapshot.is_some()
    });
}

#[test]
fn unknown_names_and_adapters_without_a_model_are_problems_not_panics() {
    let mut ws = Workspace::default();
    ws.apply(Action::OpenAdapter(fixture("tiny-llama-lora")));
    assert_eq!(ws.problems, vec![llm_anatomy::workspace::Problem::AdapterWithoutModel]);
    ws.apply(Action::DismissProblems);
    ws.open_blocking(&fixture("tiny-llama"));
    ws.apply(Action::SelectByName("model.no.such.thing".into()));
    assert!(matches!(ws.problems.as_slice(), [llm_anatomy::workspace::Problem::UnknownName(_)]));
    assert_eq!(ws.selection, Selection::None);
}

/// Generate runs on the engine thread and Stop ends it after the current token. Reference for the tokens:
/// transformers' 12 greedy tokens for the prompt (greedy = temperature 0), which every generated prefix must follow.
#[test]
fn generate_streams_greedy_tokens_and_stop_ends_it() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    let r = reference("tiny-llama");
    let prompt_ids: Vec<u32> = serde_json::from_value(r["prompts"][0]["input_ids"].clone()).unwrap();
    let greedy: Vec<u32> = serde_json::from_value(r["prompts"][0]["greedy_ids"].clone()).unwrap();
    ws.settings.sampling.temperature = 0.0;
    ws.apply(Action::RunPrompt);
    poll_until(&mut ws, "the prompt", |ws| ws.engine.snapshot.is_some() && !ws.engine.is_busy());
    assert_eq!(ws.engine.snapshot.as_ref().unwrap().tokens, prompt_ids);

    ws.apply(Action::Generate(greedy.len()));
    poll_until(&mut ws, "the greedy tokens", |ws| {
        ws.engine.snapshot.as_ref().is_some_and(|s| s.tokens.len() == prompt_ids.len() + greedy.len())
    });
    assert_eq!(ws.engine.snapshot.as_ref().unwrap().tokens[prompt_ids.len()..], greedy[..]);

    // A long generation, stopped once it has started: it ends well short of what was asked, and stays ended.
    let before = ws.engine.snapshot.as_ref().unwrap().tokens.len();
    let asked = 400;
    ws.apply(Action::Generate(asked));
    poll_until(&mut ws, "the first of many tokens", |ws| {
        ws.engine.snapshot.as_ref().is_some_and(|s| s.tokens.len() > before)
    });
    ws.apply(Action::StopGenerating);
    poll_until(&mut ws, "the engine to stop", |ws| !ws.engine.is_busy());
    let stopped = ws.engine.snapshot.as_ref().unwrap().tokens.len();
    assert!(stopped < before + asked, "Stop did not stop: {} of {asked} made", stopped - before);
    std::thread::sleep(std::time::Duration::from_millis(200));
    ws.poll();
    assert_eq!(ws.engine.snapshot.as_ref().unwrap().tokens.len(), stopped, "nothing arrives after Stop");
    assert!(ws.engine.error.is_none(), "{:?}", ws.engine.error);
}

/// With an adapter attached, a module can still be selected by its base-model name.
#[test]
fn base_names_select_inside_the_peft_tree() {
    let mut ws = Workspace::default();
    ws.open_blocking(&fixture("tiny-llama"));
    ws.apply(Action::OpenAdapter(fixture("tiny-llama-lora")));
    ws.apply(Action::SelectByName("model.layers.0.mlp".into()));
    assert!(ws.problems.is_empty(), "{:?}", ws.problems);
    let Selection::Module(id) = ws.selection else { panic!("{:?}", ws.selection) };
    assert_eq!(ws.model.as_ref().unwrap().tree.nodes[id].path, "base_model.model.model.layers.0.mlp");
}
