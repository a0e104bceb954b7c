//! UI tests: the real app drawn by egui_kittest, driven by label like a user would.

mod common;

use common::{fixture, reference};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use llm_anatomy::analysis::cast::CastTarget;
use llm_anatomy::ui::AnatomyApp;
use llm_anatomy::workspace::{Action, Selection, Workspace};

fn harness_with(app: AnatomyApp) -> Harness<'static, AnatomyApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .build_ui_state(|ui, app: &mut AnatomyApp| app.ui(ui), app)
}

/// The app with a fixture open, one frame drawn.
fn opened(name: &str) -> Harness<'static, AnatomyApp> {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture(name));
    assert!(app.ws.problems.is_empty(), "{:?}", app.ws.problems);
    let mut harness = harness_with(app);
    harness.run_steps(2);
    harness
}

/// Scrolls a widget into view, then clicks it, as a user would.
fn click(harness: &mut Harness<'static, AnatomyApp>, label: &str) {
    // Scrolling animates: let it finish before pressing, or the press and release land apart.
    harness.get_by_label(label).scroll_to_me();
    harness.run();
    harness.get_by_label(label).click();
    harness.run();
}

/// Lets the workers (statistics, casts, LoRA figures) finish, then draws the result.
fn settle(harness: &mut Harness<'static, AnatomyApp>) {
    harness.step();
    harness.state_mut().ws.wait_for_jobs();
    harness.run_steps(3);
}

#[test]
fn welcome_screen_offers_to_open_a_folder() {
    let mut harness = harness_with(AnatomyApp::default());
    harness.run_steps(2);
    harness.get_by_label("Open model folder…");
}

#[test]
fn open_expand_select_tensor_and_see_histogram() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture("tiny-llama"));
    assert!(app.ws.problems.is_empty(), "{:?}", app.ws.problems);
    let mut harness = harness_with(app);
    harness.run_steps(2);

    // The tree shows print(model)'s lines.
    harness.get_by_label("LlamaForCausalLM(");
    harness.get_by_label("(model): LlamaModel(");
    // Expand the folded decoder layers by clicking their line.
    harness.get_by_label("(0-1): 2 x LlamaDecoderLayer(").click();
    harness.run_steps(3);
    harness.get_by_label("(self_attn): LlamaAttention(").click();
    harness.run_steps(3);
    harness.get_by_label("(q_proj): Linear(in_features=64, out_features=64, bias=False)").click();
    harness.run_steps(3);
    harness.get_by_label_contains("weight  F32  [64, 64]  16.0 KiB  model.safetensors").click();
    settle(&mut harness);

    let name = "model.layers.0.self_attn.q_proj.weight";
    assert_eq!(harness.state().ws.selection, Selection::Tensor(name.into()));
    let r = &reference("tiny-llama")["tensors"][name];
    let std = llm_anatomy::ui::format::num(r["std"].as_f64().unwrap());
    let mean = llm_anatomy::ui::format::num(r["mean"].as_f64().unwrap());
    harness.get_by_label("std");
    harness.get_by_label(&std);
    harness.get_by_label(&mean);
    harness.get_by_label("histogram: 64 bins");
    let stats = harness.state().ws.current_stats().unwrap().as_ref().unwrap().clone();
    assert_eq!(stats.histogram.counts.len(), 64);
    let shape: Vec<u64> = serde_json::from_value(r["shape"].clone()).unwrap();
    assert_eq!(stats.count, shape.iter().product::<u64>());
}

#[test]
fn filter_finds_a_module_by_dotted_name() {
    let mut harness = opened("tiny-mixtral");
    let filter = harness.get_by_label("Filter");
    filter.click();
    harness.run_steps(1);
    harness.get_by_label("Filter").type_text("layers.1.block_sparse_moe.experts.3");
    harness.run_steps(3);
    // Unfolded: the single matching expert shows with its own index.
    harness.get_by_label("(3): MixtralBlockSparseTop2MLP(");
    assert!(harness.query_by_label("(0-3): 4 x MixtralBlockSparseTop2MLP(").is_none());
    harness.get_by_label_contains("(w2): Linear(in_features=128, out_features=64, bias=False)").click();
    harness.run_steps(2);
    let selected = harness.state().ws.selection.clone();
    let Selection::Module(id) = selected else { panic!("expected a module, got {selected:?}") };
    let model = harness.state().ws.model.as_ref().unwrap();
    assert_eq!(model.folder.tree.nodes[id].path, "model.layers.1.block_sparse_moe.experts.3.w2");
}

#[test]
fn selecting_a_module_shows_its_aggregate_and_children() {
    let mut harness = opened("tiny-qwen2");
    harness.get_by_label("(model): Qwen2Model(").click();
    settle(&mut harness);
    harness.get_by_label("parameters per child");
    let stats = harness.state().ws.current_stats().unwrap().as_ref().unwrap().clone();
    // model's tensors: everything but the tied lm_head. Reference: num_parameters() of the `model` child.
    let want = reference("tiny-qwen2")["param_count"]["per_top_level_child"]["model"].as_u64().unwrap();
    assert_eq!(stats.count, want);
}

#[test]
fn a_bad_folder_shows_an_error_and_keeps_the_open_model() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture("tiny-llama"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{").unwrap();
    std::fs::write(dir.path().join("model.safetensors"), [0u8; 4]).unwrap();
    app.ws.open_blocking(dir.path());
    let mut harness = harness_with(app);
    harness.run_steps(2);
    harness.get_by_label_contains("config.json: not valid JSON");
    harness.get_by_label("Whatever was open before is still open.");
    harness.get_by_label("LlamaForCausalLM(");
    harness.get_by_label("OK").click();
    harness.run_steps(2);
    assert!(harness.state().ws.problems.is_empty());
}

#[test]
fn bits_view_flips_the_sign_of_a_real_weight() {
    let name = "model.layers.0.self_attn.q_proj.weight";
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture("tiny-llama"));
    app.ws.apply(Action::Select(Selection::Tensor(name.into())));
    let mut harness = harness_with(app);
    settle(&mut harness);
    // The Bits section is open by default. Reference: torch's casts of element 0 of q_proj in
    // dtype-roundings.json (its FP32 value, and its BF16 and FP8 E4M3 values, which are equal).
    let roundings: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("dtype-roundings.json")).unwrap()).unwrap();
    let r = roundings["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["source"].as_str().is_some_and(|s| s.ends_with("q_proj.weight flat index 0")))
        .unwrap()
        .clone();
    let value = r["f32"].as_f64().unwrap();
    harness.get_by_label(&format!("value = {value}"));
    assert_eq!(r["bf16"], r["f8_e4m3fn"]);
    assert_eq!(harness.get_all_by_label(&format!("{}", r["bf16"].as_f64().unwrap())).count(), 2);
    click(&mut harness, "FP32 bit 31 (sign)");
    harness.get_by_label(&format!("value = {}", -value));
    assert!(harness.state().panels.weights.bits.is_edited());
    // Flipping an FP16 exponent bit changes the value for every format.
    click(&mut harness, "FP16 bit 14 (exponent)");
    assert!(harness.query_by_label(&format!("value = {}", -value)).is_none());
}

#[test]
fn cast_what_if_reports_counts_for_the_selected_tensor() {
    let name = "model.embed_tokens.weight";
    let mut app = AnatomyApp::default();
    let to = CastTarget::Float(llm_anatomy::analysis::floatbits::Format::F8E4M3);
    app.ws.open_blocking(&fixture("tiny-llama"));
    app.ws.apply(Action::Select(Selection::Tensor(name.into())));
    app.panels.weights.cast_target = to;
    let mut harness = harness_with(app);
    settle(&mut harness);
    click(&mut harness, "Cast the whole tensor: what changes?");
    settle(&mut harness);
    let report = harness.state().ws.jobs.casts.get(&(name.to_string(), to)).unwrap().as_ref().unwrap().clone();
    assert_eq!(report.count, 1024 * 64);
    assert_eq!(report.overflow, 0);
    harness.get_by_label("relative error (log₁₀)");
    harness.get_by_label("exponents used (FP32 view)");
    // Quantizing the same tensor to Q4_0 (ggml's reference quantizer): the comparison table
    // then shows both rows, the block format's bits per weight included.
    click(&mut harness, "Q4_0");
    settle(&mut harness);
    let q4 = CastTarget::Block(llm_anatomy::checkpoint::quant::GgmlType::Q4_0);
    let report = harness.state().ws.jobs.casts.get(&(name.to_string(), q4)).unwrap().as_ref().unwrap().clone();
    assert_eq!(report.count, 1024 * 64);
    assert!(report.max_abs_error > 0.0 && report.mean_abs_error < report.max_abs_error);
    harness.get_by_label("4.5");
    harness.get_by_label(&llm_anatomy::ui::format::num(report.max_abs_error));
}

fn r_lora_ratio(module: &str) -> f64 {
    let r = reference("tiny-llama-lora");
    let m = r["modules"].as_array().unwrap().iter().find(|m| m["module"] == module).unwrap().clone();
    m["ratio_delta_over_W"].as_f64().unwrap()
}

fn r_prompt() -> String {
    reference("tiny-llama")["prompts"][0]["text"].as_str().unwrap().to_string()
}

/// How long a step may wait for the engine before the test gives up. Generous: a loaded CI machine (debug
/// build, other jobs on both cores) can be many times slower than a laptop; a hang still fails, with a message.
const ENGINE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Steps the UI until `done` holds. The engine thread answers asynchronously; each `step` polls its events
/// (`Workspace::poll`), so this waits on those events, until `ENGINE_DEADLINE`, not a fixed number of frames.
fn step_until(harness: &mut Harness<'static, AnatomyApp>, what: &str, done: impl Fn(&AnatomyApp) -> bool) {
    let start = std::time::Instant::now();
    loop {
        harness.step();
        if done(harness.state()) {
            harness.run_steps(2);
            return;
        }
        let engine = &harness.state().ws.engine;
        if engine.error.is_some() || start.elapsed() > ENGINE_DEADLINE {
            panic!(
                "no {what} after {:?} (engine status {:?}, error {:?})",
                start.elapsed(),
                engine.status,
                engine.error
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// The distribution the Token panel shows, as the workspace derived it.
fn probs(app: &AnatomyApp) -> Vec<f32> {
    app.ws.engine.derived().expect("a derived distribution").distribution.probs.clone()
}

fn tokens_len(app: &AnatomyApp) -> usize {
    app.ws.engine.snapshot.as_ref().map(|s| s.tokens.len()).unwrap_or(0)
}

#[test]
fn token_panel_steps_and_sliders_reuse_cached_logits() {
    let mut harness = opened("tiny-llama");
    harness.get_by_label("Token probabilities").click();
    harness.run_steps(2);
    // Opening read no weights: the engine loads on the first prompt.
    assert!(harness.state().ws.engine.loaded.is_none());
    // The prompt box starts with "The model has weights", the reference's first prompt.
    assert_eq!(harness.state().ws.prompt, r_prompt());
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the prompt's distribution", |a| a.ws.engine.derived().is_some());
    let r = reference("tiny-llama");
    let prompt_ids: Vec<u32> = serde_json::from_value(r["prompts"][0]["input_ids"].clone()).unwrap();
    let first = &r["prompts"][0]["samplers"]["t1.0"]["top20"][0];
    // The top candidate is the reference's, shown as a bar with its id.
    harness.get_by_label(&format!("candidate {}", first["id"]));
    // At temperature 1 the warped and the raw probability are the same number.
    assert_eq!(harness.get_all_by_label(&format!("{:.4}", first["prob"].as_f64().unwrap())).count(), 2);

    // Step: one more forward pass, one more token.
    harness.get_by_label("Step ▶").click();
    let n = prompt_ids.len();
    step_until(&mut harness, "a generated token", |a| tokens_len(a) == n + 1);
    let forwards = harness.state().ws.engine.forwards();
    assert_eq!(forwards, 2);
    harness.get_by_label("generation");
    let snap = harness.state().ws.engine.snapshot.clone().unwrap();
    let csv = llm_anatomy::ui::panels::tokens::generation_csv(&snap, &harness.state().ws.settings.sampling);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "step,input_ids,text_so_far,next_token,next_id,probability");
    assert_eq!(rows.len(), 2);
    // The row's input ids are the reference's for the prompt, space-separated.
    let ids_text: Vec<String> = prompt_ids.iter().map(|i| i.to_string()).collect();
    assert!(rows[1].starts_with(&format!("0,\"{}\",\"\",", ids_text.join(" "))), "{}", rows[1]);
    assert!(rows[1].contains(&format!(",{},", snap.tokens[11])), "{}", rows[1]);

    // Temperature changes the numbers without running the model again.
    let before = probs(harness.state());
    let recomputes = harness.state().ws.engine.recomputes;
    harness.state_mut().ws.settings.sampling.temperature = 0.3;
    harness.run_steps(3);
    let after = probs(harness.state());
    assert_ne!(before, after);
    // The new value, not just a different one. Reference: softmax(logits / 0.3) computed here from the cached
    // logits (the other warpers are off), which is what transformers' TemperatureLogitsWarper does.
    let s = harness.state().ws.settings.sampling;
    assert!(s.top_k == 0 && s.top_p == 1.0 && s.min_p == 0.0 && s.repetition_penalty == 1.0, "{s:?}");
    let logits = harness.state().ws.engine.snapshot.as_ref().unwrap().logits.clone();
    assert_eq!(after.len(), logits.len());
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) / 0.3).exp()).collect();
    let total: f64 = exps.iter().sum();
    for (id, (&got, e)) in after.iter().zip(&exps).enumerate() {
        assert!((got as f64 - e / total).abs() < 1e-6, "p({id}) at T = 0.3: {got} vs {}", e / total);
    }
    assert!(harness.state().ws.engine.recomputes > recomputes, "the sliders re-ran sampling…");
    assert_eq!(harness.state().ws.engine.forwards(), forwards, "…but not the model");

    // Clicking a candidate (here the third) forces it; step back removes it again.
    let before_forcing = probs(harness.state());
    let third = harness.state().ws.engine.derived().unwrap().distribution.order[2];
    click(&mut harness, &format!("candidate {third}"));
    step_until(&mut harness, "the forced token", |a| tokens_len(a) == n + 2);
    assert_ne!(probs(harness.state()), before_forcing, "a new position, a new distribution");
    assert_eq!(*harness.state().ws.engine.snapshot.as_ref().unwrap().tokens.last().unwrap(), third);
    harness.get_by_label("◀ Step back").click();
    step_until(&mut harness, "the step back", |a| tokens_len(a) == n + 1);
    // Step back restores the exact previous state: the same tokens and, bit for bit, the same distribution
    // (the cached logits of that position under the same sliders), not merely a shorter sequence.
    let snap = harness.state().ws.engine.snapshot.clone().unwrap();
    assert_eq!(snap.tokens[..n], prompt_ids[..]);
    assert_eq!(probs(harness.state()), before_forcing);
}

#[test]
fn engine_events_keep_arriving_while_the_weights_tab_shows() {
    let mut harness = opened("tiny-llama");
    harness.get_by_label("Token probabilities").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the prompt", |a| a.ws.engine.snapshot.is_some());
    let start = tokens_len(harness.state());
    harness.state_mut().panels.tokens.generate_n = 24;
    harness.get_by_label("Generate").click();
    harness.step();
    // Away from the Token panel while the engine generates: the shell still polls it.
    harness.get_by_label("Weights").click();
    harness.run_steps(2);
    assert_eq!(harness.state().ws.settings.view_id(), "weights");
    step_until(&mut harness, "all generated tokens", |a| tokens_len(a) == start + 24);
    assert_eq!(harness.state().ws.settings.view_id(), "weights");
    assert_eq!(harness.state().ws.engine.forwards(), 1 + 24);
}

#[test]
fn routing_heatmap_has_a_cell_per_token_and_expert() {
    let mut harness = opened("tiny-mixtral");
    harness.get_by_label("Routing").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the prompt's routing", |a| a.ws.engine.derived().is_some());
    let tokens = tokens_len(harness.state());
    assert_eq!(tokens, reference("tiny-mixtral")["prompts"][0]["input_ids"].as_array().unwrap().len());
    for t in 0..tokens {
        for e in 0..4 {
            harness.get_by_label(&format!("layer 0 token {t} expert {e}"));
        }
    }
    harness.get_by_label("expert load, layer 0");
    // The token path view opens from a row label.
    harness.get_by_label_contains("  3 ").click();
    harness.run_steps(2);
    harness.get_by_label_contains("path of token 3");
}

#[test]
fn routing_panel_explains_itself_on_a_dense_model() {
    let mut harness = opened("tiny-llama");
    harness.get_by_label("Routing").click();
    harness.run_steps(2);
    harness.get_by_label_contains("is a dense model");
}

#[test]
fn lora_adapter_wraps_the_tree_and_toggles_the_distribution() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture("tiny-llama"));
    app.ws.open_adapter(&fixture("tiny-llama-lora"));
    assert!(app.ws.problems.is_empty(), "{:?}", app.ws.problems);
    let mut harness = harness_with(app);
    harness.run_steps(2);
    harness.get_by_label("PeftModelForCausalLM(");
    harness.get_by_label("(base_model): LoraModel(");
    // Select the adapted q_proj of layer 0 and find the LoRA diff view (computed on a worker).
    harness.state_mut().ws.select_by_name("base_model.model.model.layers.0.self_attn.q_proj");
    harness.run_steps(3);
    settle(&mut harness);
    harness.get_by_label("(q_proj): lora.Linear(");
    harness.get_by_label("LoRA on model.layers.0.self_attn.q_proj");
    // ‖ΔW‖/‖W‖ from the PEFT reference (0.09989), as the panel rounds it to 3 significant digits.
    let ratio = r_lora_ratio("model.layers.0.self_attn.q_proj");
    harness.get_by_label(&format!("{ratio:.4}"));

    harness.get_by_label("Token probabilities").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the adapted distribution", |a| {
        a.ws.engine.snapshot.as_ref().is_some_and(|s| s.base_logits.is_some()) && a.ws.engine.derived().is_some()
    });
    harness.get_by_label("with the adapter vs without");
    let on = probs(harness.state());
    let r = reference("tiny-llama-lora");
    let top = &r["prompts"][0]["samplers"]["t1.0"]["top20"][0];
    assert!((on[top["id"].as_u64().unwrap() as usize] - top["prob"].as_f64().unwrap() as f32).abs() < 1e-4);
    click(&mut harness, "switch off");
    assert!(harness.state().ws.active.as_ref().is_some_and(|a| a.strength == 0.0));
    step_until(&mut harness, "the re-run", |a| a.ws.engine.snapshot.as_ref().is_some_and(|s| s.forwards >= 4));
    let off = probs(harness.state());
    assert_ne!(on, off);
    // Switched off is the base model: all 20 of transformers' top probabilities for the plain tiny-llama, and
    // the adapted ones were PEFT's (checked above), so both ends are pinned to an outside reference.
    let base = reference("tiny-llama")["prompts"][0]["samplers"]["t1.0"]["top20"].clone();
    assert_eq!(base.as_array().unwrap().len(), 20);
    for e in base.as_array().unwrap() {
        let id = e["id"].as_u64().unwrap() as usize;
        assert!((off[id] - e["prob"].as_f64().unwrap() as f32).abs() < 1e-4, "switched off: p({id})");
    }
}

#[test]
fn f11_toggles_presenter_mode() {
    let mut harness = harness_with(AnatomyApp::default());
    harness.run_steps(2);
    assert_eq!(harness.ctx.zoom_factor(), 1.0);
    harness.key_press(egui::Key::F11);
    harness.run_steps(2);
    assert!(harness.state().ws.settings.presenter);
    assert_eq!(harness.ctx.zoom_factor(), 1.6);
    harness.key_press(egui::Key::F11);
    harness.run_steps(2);
    assert_eq!(harness.ctx.zoom_factor(), 1.0);
}

#[test]
fn two_adapters_loaded_one_active() {
    let mut harness = opened("tiny-llama");
    harness.state_mut().ws.open_adapter(&fixture("tiny-llama-lora"));
    harness.state_mut().ws.open_adapter(&fixture("tiny-llama-minimind-lora.pth"));
    harness.run_steps(2);
    assert_eq!(harness.state().ws.adapters.len(), 2);
    // The MiniMind one is active: its LoRA modules hang under the base Linears.
    harness.get_by_label("LlamaForCausalLM(");
    assert!(harness.state().ws.active.as_ref().is_some_and(|a| !a.adapter.peft));
    let peft = harness.state().ws.adapters[0].clone();
    harness.state_mut().ws.activate_adapter(Some(peft));
    harness.run_steps(2);
    harness.get_by_label("PeftModelForCausalLM(");
    harness.state_mut().ws.activate_adapter(None);
    harness.run_steps(2);
    harness.get_by_label("LlamaForCausalLM(");
    assert!(harness.state().ws.active.is_none());
    assert_eq!(harness.state().ws.adapters.len(), 2, "deactivating keeps both loaded");
}

#[test]
fn the_demo_shows_every_panel() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&Workspace::bundled_demo().expect("assets/demo is committed"));
    let mut harness = harness_with(app);
    harness.run_steps(2);
    harness.get_by_label("MixtralForCausalLM(");
    harness.get_by_label("Routing").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the demo's routing", |a| a.ws.engine.derived().is_some());
    harness.get_by_label("expert load, layer 0");
}

#[test]
fn the_interface_switches_to_chinese_and_back() {
    let mut app = AnatomyApp::default();
    app.ws.settings.lang = llm_anatomy::ui::i18n::Lang::Zh;
    app.ws.open_blocking(&Workspace::bundled_demo().expect("assets/demo is committed"));
    let mut harness = harness_with(app);
    harness.run_steps(2);
    for label in ["文件", "视图", "权重", "Token 概率", "路由"] {
        harness.get_by_label(label);
    }
    // Every panel draws in Chinese (a glyph missing from the bundled fonts would panic here).
    harness.state_mut().ws.select_by_name("model.layers.0.block_sparse_moe.gate.weight");
    settle(&mut harness);
    harness.get_by_label("Token 概率").click();
    harness.state_mut().ws.run_prompt();
    step_until(&mut harness, "the first step", |a| a.ws.engine.derived().is_some());
    harness.get_by_label("路由").click();
    harness.run_steps(3);
    // The switch names the other language in that language; Ctrl+L does the same.
    harness.get_by_label("English").click();
    harness.run_steps(2);
    harness.get_by_label("File");
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::L);
    harness.run_steps(2);
    harness.get_by_label("文件");
    assert_eq!(harness.state().ws.settings.lang, llm_anatomy::ui::i18n::Lang::Zh);
}

#[test]
fn settings_from_an_older_version_still_load_and_layout_round_trips() {
    use llm_anatomy::workspace::Settings;
    // A settings file written before the language and layout were remembered.
    let old: Settings = serde_json::from_str(r#"{"presenter": true, "dark": false}"#).unwrap();
    assert!(old.presenter && !old.dark);
    assert_eq!(old.histogram.bins, 64);
    // Older versions wrote the panel as a capitalised enum name.
    let older: Settings = serde_json::from_str(r#"{"view": "Routing"}"#).unwrap();
    assert_eq!(older.view_id(), "routing");
    let mut app = AnatomyApp::default();
    let mut s = old;
    s.view = "routing".into();
    s.flat_tree = true;
    s.histogram.bins = 16;
    app.ws.apply(Action::Settings(Box::new(s.clone())));
    let saved: Settings = serde_json::from_str(&serde_json::to_string(&app.ws.settings).unwrap()).unwrap();
    assert_eq!(saved, s);
    assert_eq!(saved.view_id(), "routing");
    assert!(saved.flat_tree);
    assert_eq!(saved.histogram.bins, 16);
}

#[test]
fn export_saves_the_histogram_as_csv_and_the_plot_as_png() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = opened("tiny-llama");
    llm_anatomy::ui::export::set_auto_dir(&harness.ctx, Some(dir.path().to_path_buf()));
    let name = "model.layers.0.self_attn.q_proj.weight";
    harness.state_mut().ws.select_by_name(name);
    settle(&mut harness);

    // The histogram's menu is the first on the page (the cast section has its own below).
    let open_first_export_menu = |harness: &mut Harness<'static, AnatomyApp>| {
        harness.get_all_by_label("Export ▾").next().unwrap().click();
        harness.run();
    };
    open_first_export_menu(&mut harness);
    click(&mut harness, "Save as CSV…");
    let csv = std::fs::read_to_string(dir.path().join(format!("{name}-histogram.csv"))).unwrap();
    assert!(csv.starts_with("bin_start,bin_end,count\n"));
    assert_eq!(csv.lines().count(), 1 + 64);
    let total: u64 = csv.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    assert_eq!(total, 64 * 64);

    // The JSON is `llm-anatomy stats --json`'s, number for number.
    open_first_export_menu(&mut harness);
    click(&mut harness, "Save as JSON…");
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(format!("{name}-histogram.json"))).unwrap())
            .unwrap();
    let path = fixture("tiny-llama");
    let cli = common::cli_json(&["stats", path.to_str().unwrap(), name, "--bins", "64", "--json"]);
    assert_eq!(exported, cli);

    // The PNG is read back from the renderer a frame after the menu closes. kittest has no
    // renderer here, so answer the request with a window-sized picture, as eframe would.
    open_first_export_menu(&mut harness);
    harness.get_by_label("Save as PNG…").click();
    let mut answered = false;
    for _ in 0..6 {
        harness.step();
        let requests: Vec<egui::ScreenshotCallback> = harness
            .output()
            .viewport_output
            .values()
            .flat_map(|v| v.commands.iter())
            .filter_map(|c| match c {
                egui::ViewportCommand::Screenshot(cb) => Some(cb.clone()),
                _ => None,
            })
            .collect();
        for cb in requests {
            cb.complete(std::sync::Arc::new(egui::ColorImage::filled([1400, 900], egui::Color32::DARK_BLUE)));
            answered = true;
        }
    }
    assert!(answered, "no screenshot was requested");
    harness.run_steps(2);
    let png_path = dir.path().join(format!("{name}-histogram.png"));
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png_path).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert!(info.width > 200 && info.width < 1400 && info.height >= 250 && info.height < 900, "{info:?}");
    assert_eq!(harness.state().ws.last_export.as_deref(), Some(png_path.as_path()));
}

/// The UI thread never computes ΔW: with a LoRA on a 2048×2048 module selected, every frame
/// stays short while the worker runs. The bound is generous (a loaded CI machine); the real
/// figure is printed here and by `cargo bench --bench anatomy`.
#[test]
fn a_frame_never_waits_for_the_lora_figures() {
    let dir = tempfile::tempdir().unwrap();
    let (model, adapter) = common::wide_llama_with_lora(dir.path(), 2048);
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&model);
    app.ws.open_adapter(&adapter);
    assert!(app.ws.problems.is_empty(), "{:?}", app.ws.problems);
    app.ws.select_by_name("base_model.model.model.layers.0.self_attn.q_proj");
    let mut harness = harness_with(app);
    let mut slowest = std::time::Duration::ZERO;
    let mut frames = 0;
    let key = harness.state().ws.lora_key("model.layers.0.self_attn.q_proj").unwrap();
    // The first frame loads the fonts (once per window) and asks for the figures.
    harness.step();
    for _ in 0..2000 {
        let t = std::time::Instant::now();
        harness.step();
        slowest = slowest.max(t.elapsed());
        frames += 1;
        if harness.state().ws.jobs.lora.get(&key).is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let t = std::time::Instant::now();
    harness.run_steps(2);
    slowest = slowest.max(t.elapsed() / 2);
    println!("LoRA on a 2048×2048 module: {frames} frames while the worker ran, slowest {slowest:?}");
    assert!(harness.state().ws.jobs.lora.get(&key).is_some_and(|r| r.is_ok()), "the figures arrived");
    harness.get_by_label("LoRA on model.layers.0.self_attn.q_proj");
    assert!(slowest < std::time::Duration::from_millis(200), "slowest frame {slowest:?}");
}

/// The welcome screen lists models found on this machine; clicking one opens it.
#[test]
fn the_library_on_the_welcome_screen_opens_a_model() {
    let app = AnatomyApp::default();
    let entry = llm_anatomy::library::Entry {
        source: llm_anatomy::library::Source::HuggingFace,
        name: "TinyOrg/tiny-llama".into(),
        revision: "0123".into(),
        path: fixture("tiny-llama"),
        format: "safetensors".into(),
        architecture: Some("LlamaForCausalLM".into()),
        bytes: 822_600,
        missing: vec![],
    };
    let mut harness = harness_with(app);
    harness.run_steps(2);
    // The panel scans this machine on its first frame; once that is done, show our entry.
    step_until(&mut harness, "the scan", |a| !a.ws.is_scanning_library());
    harness.state_mut().ws.library = Some(vec![entry]);
    harness.run_steps(2);
    harness.get_by_label("On this computer");
    harness.get_by_label("TinyOrg/tiny-llama").click();
    step_until(&mut harness, "the model to open", |a| a.ws.model.is_some());
    harness.get_by_label("LlamaForCausalLM(");
}

/// The Compare tab sweeps the layers on a worker and diffs against a second model.
#[test]
fn compare_tab_sweeps_layers_and_diffs_a_bf16_copy() {
    let mut harness = opened("tiny-llama");
    harness.get_by_label("Compare").click();
    harness.run_steps(2);
    step_until(&mut harness, "the sweep", |a| a.ws.jobs.sweep.get(&()).is_some());
    harness.get_by_label("Layer sweep");
    harness.get_by_label("tensor role");
    harness.state_mut().ws.apply(Action::OpenOther(fixture("tiny-llama-bf16")));
    step_until(&mut harness, "the diff", |a| a.ws.current_diff().is_some_and(|d| d.is_ok()));
    let d = harness.state().ws.current_diff().unwrap().as_ref().unwrap().clone();
    assert_eq!(d.tensors.len(), 21);
    harness.get_by_label("model.embed_tokens.weight");
    // With a diff the tree is coloured by change (each tensor row shows its Δ), and can be plain.
    harness.get_by_label("colour by change");
    // One tensor from both models overlaid, as densities on one range.
    use llm_anatomy::workspace::OverlayEntry;
    for second in [false, true] {
        let tensor = "model.layers.0.mlp.down_proj.weight".to_string();
        harness.state_mut().ws.apply(Action::AddToOverlay(OverlayEntry { tensor, second }));
    }
    step_until(&mut harness, "the overlay", |a| a.ws.current_overlay().is_some_and(|o| o.is_ok()));
    let o = harness.state().ws.current_overlay().unwrap().as_ref().unwrap().clone();
    assert_eq!(o.series.len(), 2);
    for s in &o.series {
        let area: f64 = s.density.iter().zip(o.edges.windows(2)).map(|(d, e)| d * (e[1] - e[0])).sum();
        assert!((area - 1.0).abs() < 1e-9, "{}: a density integrates to 1, not {area}", s.label);
    }
    assert!(o.series[1].label.ends_with("(tiny-llama-bf16)"), "{}", o.series[1].label);
    harness.get_by_label("Overlaid histograms");
    harness.get_by_label("log density");
    // A diff row's Δ: the histogram of B − A, on a worker.
    let tensor = "model.norm.weight".to_string();
    harness.state_mut().ws.apply(Action::RequestDeltaHistogram(tensor.clone()));
    step_until(&mut harness, "the Δ histogram", |a| a.ws.delta_histogram(&tensor).is_some_and(|h| h.is_ok()));
    let h = harness.state().ws.delta_histogram(&tensor).unwrap().as_ref().unwrap().clone();
    assert_eq!(h.counts.iter().sum::<u64>(), 64);
    // The precision what-if: the prompt as stored against the weights through Q4_0 (the
    // default for a model with no quantized weight), on a worker.
    harness.state_mut().ws.apply(Action::EditPrompt { text: r_prompt(), chat: false });
    click(&mut harness, "Compare on this prompt");
    settle(&mut harness);
    use llm_anatomy::engine::precision::Precision;
    let q4_0 = Precision::parse("q4_0");
    let key = harness.state().ws.precision_key(Precision::AsStored, q4_0);
    let r = harness.state().ws.jobs.precision.get(&key).expect("the precision report").as_ref().unwrap().clone();
    assert_eq!(r.steps.len(), llm_anatomy::workspace::Workspace::PRECISION_STEPS);
    assert!(r.summary.mean_kl > 0.0, "4-bit weights change the distribution");
    harness.get_by_label("KL(A‖B)");
    harness.get_by_label_contains("mean KL");
}

/// The Attention and Logit lens tabs record the internals on demand and show them for the
/// Token panel's sequence; the lens's last layer is the model's own distribution.
#[test]
fn attention_and_lens_tabs_look_inside_the_forward_pass() {
    let mut harness = opened("tiny-llama");
    harness.get_by_label("Attention").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the recorded internals", |a| {
        a.ws.engine.snapshot.as_ref().is_some_and(|s| s.internals.as_ref().is_some_and(|i| i.len() == 11))
    });
    harness.get_by_label("every head of the layer");
    harness.get_by_label("Logit lens").click();
    step_until(&mut harness, "the lens", |a| a.ws.engine.lens.is_some());
    harness.run_steps(2);
    let lens = harness.state().ws.engine.lens.clone().unwrap().1;
    assert_eq!(lens.position, 10);
    assert_eq!(lens.probs.len(), 3, "embedding + 2 layers");
    let model = harness.state().ws.engine.derived().unwrap().distribution.raw_probs.clone();
    let last = lens.probs.last().unwrap();
    assert_eq!(last.len(), model.len());
    assert!(last.iter().zip(&model).all(|(a, b)| (a - b).abs() < 1e-5), "the last layer's lens is the output");
    harness.get_by_label("residual stream norm ‖h‖ per layer and token");
}

/// With an adapter attached, both tabs offer the base model's pass beside the adapted one;
/// the base lens is asked for and shown when "base" is picked.
#[test]
fn attention_and_lens_show_base_or_adapted() {
    let mut harness = opened("tiny-llama");
    harness.state_mut().ws.apply(Action::OpenAdapter(fixture("tiny-llama-lora")));
    harness.get_by_label("Logit lens").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the base internals", |a| {
        a.ws.engine.snapshot.as_ref().is_some_and(|s| s.base_internals.as_ref().is_some_and(|i| !i.is_empty()))
    });
    harness.get_by_label("show the model");
    harness.get_by_label("base").click();
    step_until(&mut harness, "the base lens", |a| a.ws.engine.lens.as_ref().is_some_and(|(_, l)| l.base));
    assert!(harness.state().ws.show_base);
    harness.get_by_label("Attention").click();
    harness.run_steps(2);
    harness.get_by_label("every head of the layer");
}

/// The Routing panel's JSON export is `llm-anatomy routing --json`'s, value for value, and its CSV carries the
/// same numbers (one row per layer, token and expert). Reference: the CLI, itself checked against transformers'
/// router outputs in tests/routing.rs.
#[test]
fn routing_exports_round_trip_against_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = opened("tiny-mixtral");
    llm_anatomy::ui::export::set_auto_dir(&harness.ctx, Some(dir.path().to_path_buf()));
    harness.get_by_label("Routing").click();
    harness.run_steps(2);
    let prompt = harness.state().ws.prompt.clone();
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the prompt's routing", |a| a.ws.engine.derived().is_some());
    let path = fixture("tiny-mixtral");
    let cli = common::cli_json(&["routing", path.to_str().unwrap(), "--prompt", &prompt, "--json"]);

    for (item, ext) in [("Save as JSON…", "json"), ("Save as CSV…", "csv")] {
        harness.get_all_by_label("Export ▾").next().unwrap().click();
        harness.run();
        click(&mut harness, item);
        assert!(dir.path().join(format!("layer0-routing.{ext}")).exists(), "{item}: {:?}", dir.path().read_dir());
    }
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("layer0-routing.json")).unwrap()).unwrap();
    // Same shape, keys, ids and strings; numbers equal to 1e-6 (two forward passes in two processes: a kernel
    // free to reorder a parallel sum may differ in the last bits, the serialiser may not).
    same_json(&exported, &cli, "$");

    let csv = std::fs::read_to_string(dir.path().join("layer0-routing.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("layer,position,token,expert,probability,selected,weight"));
    let layer0 = cli["layers"].as_array().unwrap().iter().find(|l| l["layer"] == 0).unwrap();
    let (tokens, experts) = (cli["tokens"].as_array().unwrap().len(), cli["num_experts"].as_u64().unwrap() as usize);
    let rows: Vec<Vec<String>> = lines.map(split_csv).collect();
    assert_eq!(rows.len(), tokens * experts, "one row per token and expert");
    for row in rows {
        let (t, e): (usize, usize) = (row[1].parse().unwrap(), row[3].parse().unwrap());
        assert_eq!(row[0], "0");
        let p: f64 = row[4].parse().unwrap();
        let want = layer0["probs"][t][e].as_f64().unwrap();
        assert!((p - want).abs() <= 1e-6, "token {t} expert {e}: {p} vs {want}");
        let topk: Vec<usize> = serde_json::from_value(layer0["topk"][t].clone()).unwrap();
        let rank = topk.iter().position(|&c| c == e);
        assert_eq!(row[5], if rank.is_some() { "1" } else { "0" }, "token {t} expert {e}");
        if let Some(k) = rank {
            let w: f64 = row[6].parse().unwrap();
            assert!((w - layer0["weights"][t][k].as_f64().unwrap()).abs() < 1e-6);
        }
    }
}

/// Asserts two JSON values are the same tree: equal keys, lengths, strings and bools; numbers within 1e-6.
fn same_json(a: &serde_json::Value, b: &serde_json::Value, at: &str) {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: length");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same_json(x, y, &format!("{at}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>(), "{at}: keys");
            for (k, x) in x {
                same_json(x, &y[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

/// Splits one CSV line, honouring double-quoted fields with "" escapes.
fn split_csv(line: &str) -> Vec<String> {
    let (mut fields, mut cur, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// In-memory eframe storage, as the window's would be on disk.
#[derive(Default)]
struct MemoryStorage(std::collections::HashMap<String, String>);

impl eframe::Storage for MemoryStorage {
    fn get_string(&self, key: &str) -> Option<String> {
        self.0.get(key).cloned()
    }
    fn set_string(&mut self, key: &str, value: String) {
        self.0.insert(key.to_string(), value);
    }
    fn remove_string(&mut self, key: &str) {
        self.0.remove(key);
    }
    fn flush(&mut self) {}
}

/// Settings and recent folders persist through eframe's storage: what `save` writes is read back, field for
/// field, by the same `eframe::get_value` the window's start-up uses.
#[test]
fn settings_and_recent_folders_persist_through_eframe_storage() {
    use eframe::App;
    use llm_anatomy::workspace::Settings;
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&fixture("tiny-llama"));
    let mut s = app.ws.settings.clone();
    s.presenter = true;
    s.dark = !s.dark;
    s.view = "routing".into();
    s.histogram.bins = 16;
    s.sampling.temperature = 0.7;
    s.sampling.top_p = 0.9;
    s.sampling.seed = 1234;
    s.lang = llm_anatomy::ui::i18n::Lang::Zh;
    app.ws.apply(Action::Settings(Box::new(s.clone())));
    let mut storage = MemoryStorage::default();
    app.save(&mut storage);
    let saved: Settings = eframe::get_value(&storage, "settings").expect("settings saved under their key");
    assert_eq!(saved, s);
    let recent: Vec<std::path::PathBuf> = eframe::get_value(&storage, "recent_folders").expect("recent folders saved");
    assert_eq!(recent, app.ws.recent);
    assert!(recent.iter().any(|p| p.ends_with("tiny-llama")), "{recent:?}");
}

/// The window's start options (`--select`, `--prompt`, `--adapter`, `--view`, `--lang`), through the same
/// `AnatomyApp::new` the window calls, with remembered settings in its storage. Reference for the prompt's
/// result: PEFT's next-token probabilities for tiny-llama with the adapter (tiny-llama-lora.reference.json).
#[test]
fn start_options_open_select_attach_run_and_show() {
    use llm_anatomy::ui::StartOptions;
    use llm_anatomy::ui::i18n::Lang;
    use llm_anatomy::workspace::Settings;
    let mut remembered = Settings { presenter: true, ..Settings::default() };
    remembered.histogram.bins = 16;
    remembered.lang = Lang::En;
    let mut storage = MemoryStorage::default();
    eframe::set_value(&mut storage, "settings", &remembered);
    let ctx = egui::Context::default();
    let mut cc = eframe::CreationContext::_new_kittest(ctx);
    cc.storage = Some(&storage);
    let r = reference("tiny-llama-lora");
    let prompt = r["prompts"][0]["text"].as_str().unwrap().to_string();
    let app = AnatomyApp::new(
        &cc,
        StartOptions {
            path: Some(fixture("tiny-llama")),
            // With an adapter the tree is PEFT's, so the module goes by its wrapped name. (The checkpoint name
            // `model.layers.0.mlp` is refused as unknown in this combination: reported, not fixed here.)
            select: Some("base_model.model.model.layers.0.mlp".into()),
            prompt: Some(prompt.clone()),
            adapter: Some(fixture("tiny-llama-lora")),
            view: Some("routing".into()),
            lang: Some(Lang::Zh),
            export_dir: None,
            compare_with: None,
        },
    );
    // Remembered settings load; the command line's language wins over the remembered one.
    assert!(app.ws.settings.presenter);
    assert_eq!(app.ws.settings.histogram.bins, 16);
    assert_eq!(app.ws.settings.lang, Lang::Zh);
    assert_eq!(app.ws.settings.view_id(), "routing", "--view wins over the Token panel --prompt would open");
    assert_eq!(app.ws.prompt, prompt);
    let mut harness = harness_with(app);
    step_until(&mut harness, "the folder, the adapter and the prompt", |a| {
        a.ws.model.is_some()
            && a.ws.active.is_some()
            && a.ws.engine.snapshot.as_ref().is_some_and(|s| s.base_logits.is_some())
            && a.ws.engine.derived().is_some()
    });
    let ws = &harness.state().ws;
    assert!(ws.problems.is_empty(), "{:?}", ws.problems);
    let Selection::Module(id) = ws.selection.clone() else { panic!("expected a module, got {:?}", ws.selection) };
    let shown = ws.model.as_ref().unwrap();
    let path = shown.tree.nodes.get(id).map(|n| n.path.clone());
    assert!(path.as_deref().is_some_and(|p| p.ends_with("model.layers.0.mlp")), "{path:?}");
    let ids: Vec<u32> = serde_json::from_value(r["prompts"][0]["input_ids"].clone()).unwrap();
    assert_eq!(ws.engine.snapshot.as_ref().unwrap().tokens, ids);
    let p = &ws.engine.derived().unwrap().distribution.probs;
    for e in r["prompts"][0]["samplers"]["t1.0"]["top20"].as_array().unwrap() {
        let id = e["id"].as_u64().unwrap() as usize;
        assert!((p[id] - e["prob"].as_f64().unwrap() as f32).abs() < 1e-4, "p({id}) with the adapter");
    }
}

/// The Token panel's next-token CSV carries `probs --json`'s numbers for the same prompt and sliders, row for
/// row, and its rows are transformers' top candidates under T = 0.7, top-p = 0.9 (tiny-llama.reference.json).
#[test]
fn next_token_csv_export_round_trips_against_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = opened("tiny-llama");
    llm_anatomy::ui::export::set_auto_dir(&harness.ctx, Some(dir.path().to_path_buf()));
    {
        let s = &mut harness.state_mut().ws.settings.sampling;
        s.temperature = 0.7;
        s.top_p = 0.9;
    }
    harness.get_by_label("Token probabilities").click();
    harness.run_steps(2);
    harness.get_by_label("Run prompt").click();
    step_until(&mut harness, "the prompt's distribution", |a| a.ws.engine.derived().is_some());
    harness.get_all_by_label("Export ▾").next().unwrap().click();
    harness.run();
    click(&mut harness, "Save as CSV…");
    let csv = std::fs::read_to_string(dir.path().join("next-token.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("rank,token_id,token,probability_raw,probability,cumulative,removed_by"));
    let rows: Vec<Vec<String>> = lines.map(split_csv).collect();
    let shown = harness.state().panels.tokens.top_n;
    assert_eq!(rows.len(), shown, "the rows the panel shows");

    let path = fixture("tiny-llama");
    let prompt = r_prompt();
    let top = rows.len().to_string();
    let args = ["probs", path.to_str().unwrap(), "--prompt", &prompt, "--temperature", "0.7", "--top-p", "0.9"];
    let cli = common::cli_json(&[&args[..], &["--top", &top, "--json"]].concat());
    let cands = cli["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), rows.len());
    for (rank, (row, c)) in rows.iter().zip(cands).enumerate() {
        assert_eq!(row[0], (rank + 1).to_string());
        assert_eq!(row[1], c["id"].to_string(), "rank {rank}");
        for (col, key) in [(3, "raw_prob"), (4, "prob")] {
            let (got, want) = (row[col].parse::<f64>().unwrap(), c[key].as_f64().unwrap());
            assert!((got - want).abs() <= 1e-6, "rank {rank} {key}: {got} vs {want}");
        }
        assert_eq!(row[6].is_empty(), c["prob"].as_f64().unwrap() > 0.0, "removed_by iff probability 0");
    }
    let want = reference("tiny-llama")["prompts"][0]["samplers"]["t0.7_p0.9"].clone();
    let kept = rows.iter().filter(|r| r[6].is_empty()).count() as u64;
    assert_eq!(kept, want["n_kept"].as_u64().unwrap().min(shown as u64), "tokens kept by top-p");
    for e in want["top20"].as_array().unwrap().iter().take(shown) {
        let row = rows
            .iter()
            .find(|r| r[1].parse::<u64>().ok() == e["id"].as_u64())
            .expect("transformers' top candidates are shown");
        let p: f64 = row[4].parse().unwrap();
        assert!((p - e["prob"].as_f64().unwrap()).abs() < 1e-4, "p({}) vs transformers", e["id"]);
    }
}

/// `--export-dir DIR` (the start option): every Export ▾ › Save as … writes straight into
/// DIR, with no dialog, and the file is the CLI's JSON (`stats --json`) for the same tensor.
#[test]
fn export_dir_start_option_saves_exports_into_the_folder() {
    use llm_anatomy::ui::StartOptions;
    let dir = tempfile::tempdir().unwrap();
    let name = "model.embed_tokens.weight";
    let mut harness = harness_with(AnatomyApp::default());
    // The app made as eframe makes it, on the window's own context.
    let cc = eframe::CreationContext::_new_kittest(harness.ctx.clone());
    let options = StartOptions {
        path: Some(fixture("tiny-llama")),
        select: Some(name.into()),
        prompt: None,
        adapter: None,
        view: None,
        lang: None,
        export_dir: Some(dir.path().to_path_buf()),
        // --compare-with: the second model opens and the selected tensor is overlaid from both.
        compare_with: Some(fixture("tiny-llama-bf16")),
    };
    *harness.state_mut() = AnatomyApp::new(&cc, options);
    step_until(&mut harness, "the statistics", |a| a.ws.current_stats().is_some_and(|s| s.is_ok()));
    let ws = &harness.state().ws;
    assert_eq!(ws.other_path.as_deref(), Some(fixture("tiny-llama-bf16").as_path()));
    assert_eq!(ws.overlay.len(), 2, "the selected tensor from both models");
    harness.run_steps(3);
    harness.get_all_by_label("Export ▾").next().unwrap().click();
    harness.run();
    click(&mut harness, "Save as JSON…");
    let file = dir.path().join(format!("{name}-histogram.json"));
    let exported: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let path = fixture("tiny-llama");
    let bins = harness.state().ws.settings.histogram.bins.to_string();
    let cli = common::cli_json(&["stats", path.to_str().unwrap(), name, "--bins", &bins, "--json"]);
    assert_eq!(exported, cli);
}

/// A tensor name with an ANSI escape and a newline in it (a hostile checkpoint) is drawn
/// with visible escapes, in the tree and in the tensor's heading: the raw control bytes never
/// reach a label.
#[test]
fn control_characters_in_tensor_names_show_as_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let name = "layers.0.\u{1b}[31mred\nweight";
    common::write_f32_safetensors(&dir.path().join("model.safetensors"), &[(name, vec![2, 2])], |_, i| i as f32);
    std::fs::write(dir.path().join("config.json"), r#"{"architectures": ["WeirdForCausalLM"], "model_type": "weird"}"#)
        .unwrap();
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(dir.path());
    assert!(app.ws.model.is_some(), "{:?}", app.ws.problems);
    app.ws.apply(Action::Select(Selection::Tensor(name.into())));
    let mut harness = harness_with(app);
    settle(&mut harness);
    assert!(
        harness.query_all_by_label_contains("layers.0.\\u{1b}[31mred\\nweight").count() >= 2,
        "tree, heading, bits"
    );
    let raw: Vec<String> = harness
        .query_all_by_label_contains("\u{1b}")
        .map(|n| format!("{n:?}").chars().take(300).collect::<String>())
        .collect();
    assert!(raw.is_empty(), "a raw ESC reached a label: {raw:?}");
}

/// File ▸ Open from library lists the models the library scan found and opens the one
/// clicked (here a Hugging Face snapshot entry pointing at the tiny Llama fixture).
#[test]
fn file_menu_opens_a_model_from_the_library() {
    use llm_anatomy::library::{Entry, Source};
    let mut harness = opened("tiny-qwen2");
    harness.state_mut().ws.library = Some(vec![Entry {
        source: Source::HuggingFace,
        name: "tiny/llama".into(),
        revision: "main".into(),
        path: fixture("tiny-llama"),
        format: "safetensors".into(),
        architecture: Some("LlamaForCausalLM".into()),
        bytes: 1234,
        missing: vec![],
    }]);
    harness.run();
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label("Open from library").hover();
    harness.run();
    harness.get_by_label_contains("tiny/llama").click();
    step_until(&mut harness, "the library model", |a| {
        a.ws.model.as_ref().is_some_and(|m| m.folder.checkpoint.folder.ends_with("tiny-llama"))
    });
}

/// MiniMind is a course taught in Chinese: the note linking its tree lines to
/// named_modules() follows the interface language, like every other teaching note.
#[test]
fn the_minimind_tree_note_follows_the_language() {
    let mut app = AnatomyApp::default();
    app.ws.settings.lang = llm_anatomy::ui::i18n::Lang::Zh;
    app.ws.open_blocking(&fixture("minimind/tiny-minimind-v1"));
    let mut harness = harness_with(app);
    harness.run_steps(2);
    harness.get_by_label_contains("这棵树就是 MiniMind 自己的 print(model)");
    harness.get_by_label("MiniMindLM(");
    harness.state_mut().ws.settings.lang = llm_anatomy::ui::i18n::Lang::En;
    harness.run_steps(2);
    harness.get_by_label_contains("This tree is MiniMind's own print(model)");
}
