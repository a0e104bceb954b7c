//! UI tests: the real app drawn by egui_kittest, driven by label like a user would.

mod common;

use common::{fixture, reference};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
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
    assert_eq!(stats.count, 4096);
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
    // model's tensors: everything but the tied lm_head, i.e. all stored parameters.
    assert_eq!(stats.count, 139_840);
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
    // The Bits section is open by default.
    // Element 0 of q_proj is 0xbf0fa638 (dtype-roundings.json): −0.5611300468444824.
    harness.get_by_label("value = -0.5611300468444824");
    // Its BF16 and FP8 E4M3 values are both −0.5625.
    assert_eq!(harness.get_all_by_label("-0.5625").count(), 2);
    click(&mut harness, "FP32 bit 31 (sign)");
    harness.get_by_label("value = 0.5611300468444824");
    assert!(harness.state().panels.weights.bits.is_edited());
    // Flipping an FP16 exponent bit changes the value for every format.
    click(&mut harness, "FP16 bit 14 (exponent)");
    assert!(harness.query_by_label("value = 0.5611300468444824").is_none());
}

#[test]
fn cast_what_if_reports_counts_for_the_selected_tensor() {
    let name = "model.embed_tokens.weight";
    let mut app = AnatomyApp::default();
    let to = llm_anatomy::analysis::floatbits::Format::F8E4M3;
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
}

fn r_prompt() -> String {
    reference("tiny-llama")["prompts"][0]["text"].as_str().unwrap().to_string()
}

/// Steps the UI until `done` holds (the engine thread answers asynchronously).
fn step_until(harness: &mut Harness<'static, AnatomyApp>, what: &str, done: impl Fn(&AnatomyApp) -> bool) {
    for _ in 0..600 {
        harness.step();
        if done(harness.state()) {
            harness.run_steps(2);
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let engine = &harness.state().ws.engine;
    panic!("timed out waiting for {what} (engine status {:?}, error {:?})", engine.status, engine.error);
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
    let first = &r["prompts"][0]["samplers"]["t1.0"]["top20"][0];
    // The top candidate is the reference's, shown as a bar with its id.
    harness.get_by_label(&format!("candidate {}", first["id"]));
    // At temperature 1 the warped and the raw probability are the same number.
    assert_eq!(harness.get_all_by_label(&format!("{:.4}", first["prob"].as_f64().unwrap())).count(), 2);

    // Step: one more forward pass, one more token.
    harness.get_by_label("Step ▶").click();
    step_until(&mut harness, "a generated token", |a| tokens_len(a) == 12);
    let forwards = harness.state().ws.engine.forwards();
    assert_eq!(forwards, 2);
    harness.get_by_label("generation");
    let snap = harness.state().ws.engine.snapshot.clone().unwrap();
    let csv = llm_anatomy::ui::panels::tokens::generation_csv(&snap, &harness.state().ws.settings.sampling);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows[0], "step,input_ids,text_so_far,next_token,next_id,probability");
    assert_eq!(rows.len(), 2);
    assert!(rows[1].starts_with("0,\"54 529 290 81 358 78 995 945 75 401 85\",\"\","), "{}", rows[1]);
    assert!(rows[1].contains(&format!(",{},", snap.tokens[11])), "{}", rows[1]);

    // Temperature changes the numbers without running the model again.
    let before = probs(harness.state());
    let recomputes = harness.state().ws.engine.recomputes;
    harness.state_mut().ws.settings.sampling.temperature = 0.3;
    harness.run_steps(3);
    let after = probs(harness.state());
    assert_ne!(before, after);
    assert!(harness.state().ws.engine.recomputes > recomputes, "the sliders re-ran sampling…");
    assert_eq!(harness.state().ws.engine.forwards(), forwards, "…but not the model");

    // Clicking a candidate (here the third) forces it; step back removes it again.
    let third = harness.state().ws.engine.derived().unwrap().distribution.order[2];
    click(&mut harness, &format!("candidate {third}"));
    step_until(&mut harness, "the forced token", |a| tokens_len(a) == 13);
    assert_eq!(*harness.state().ws.engine.snapshot.as_ref().unwrap().tokens.last().unwrap(), third);
    harness.get_by_label("◀ Step back").click();
    step_until(&mut harness, "the step back", |a| tokens_len(a) == 12);
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
    assert_eq!(tokens, 11);
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
    harness.get_by_label("0.0999"); // ‖ΔW‖/‖W‖ from the PEFT reference: 0.09989

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
    let base = &reference("tiny-llama")["prompts"][0]["samplers"]["t1.0"]["top20"][0];
    assert!((off[base["id"].as_u64().unwrap() as usize] - base["prob"].as_f64().unwrap() as f32).abs() < 1e-4);
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
