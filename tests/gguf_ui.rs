//! The window on a GGUF file: the tensor header names the GGML type and says the q/k rows
//! were put back in Hugging Face order; statistics run on the dequantized values; the
//! Metadata tab lists the header's keys.

mod common;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use llm_anatomy::ui::AnatomyApp;
use llm_anatomy::workspace::{Action, Selection};

#[test]
fn gguf_tensor_header_stats_and_metadata_tab() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&common::fixture("gguf/families/tiny-mixtral.gguf"));
    assert!(app.ws.problems.is_empty(), "{:?}", app.ws.problems);
    let name = "model.layers.0.self_attn.q_proj.weight";
    app.ws.apply(Action::Select(Selection::Tensor(name.into())));
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .build_ui_state(|ui, app: &mut AnatomyApp| app.ui(ui), app);
    harness.run_steps(2);
    harness.state_mut().ws.wait_for_jobs();
    harness.run_steps(3);
    harness.get_by_label("MixtralForCausalLM(");
    harness.get_by_label("Q4_0 (4.5 bits per weight)");
    harness.get_by_label("blk.0.attn_q.weight");
    harness.get_by_label_contains("shown in Hugging Face order");
    let stats = harness.state().ws.current_stats().unwrap().as_ref().unwrap().clone();
    assert_eq!(stats.count, 64 * 64);
    assert!(stats.std > 0.0);

    harness.get_by_label("Metadata").click();
    harness.run_steps(3);
    harness.get_by_label("llama.expert_count");
    harness.get_by_label_contains("GGUF version 3");
}
