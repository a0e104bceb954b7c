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

/// The quantization-block section on a permuted Q4_0 q_proj: the block of the element the
/// Bits view shows holds that element's value (llama.cpp's row order undone), the largest
/// scale button goes to the summary's block, and the fields and formula are drawn.
#[test]
fn quantization_block_section_follows_the_bits_element_and_the_largest_scale() {
    let mut app = AnatomyApp::default();
    app.ws.open_blocking(&common::fixture("gguf/families/tiny-mixtral.gguf"));
    let name = "model.layers.0.self_attn.q_proj.weight";
    app.ws.apply(Action::Select(Selection::Tensor(name.into())));
    // Row 1 of Hugging Face order is not row 1 on disk (llama.cpp interleaves each head's rows).
    let element = 64 + 37;
    let mut harness = Harness::builder()
        .with_size(egui::vec2(1400.0, 2400.0))
        .with_max_steps(200)
        .build_ui_state(|ui, app: &mut AnatomyApp| app.ui(ui), app);
    harness.run_steps(2);
    {
        let app = harness.state_mut();
        let ws = &app.ws;
        app.panels.weights.bits.inspect(ws, name, element);
    }
    harness.state_mut().ws.wait_for_jobs();
    harness.run_steps(3);
    harness.get_by_label("Inside a quantization block");
    assert!(harness.query_all_by_label_contains("w = d·(q − 8)").count() > 1, "the formula, and filled in");
    harness.get_by_label("block of the Bits element").click();
    harness.run_steps(2);
    let app = harness.state();
    let index = app.panels.weights.blocks.index;
    let ckpt = &app.ws.model.as_ref().unwrap().folder.checkpoint;
    let t = ckpt.tensor(name).unwrap();
    let b = llm_anatomy::checkpoint::quant_blocks::block(
        llm_anatomy::checkpoint::quant::GgmlType::Q4_0,
        ckpt.bytes(t),
        index,
    )
    .unwrap()
    .unwrap();
    assert_eq!(b.values[element % 32] as f64, app.panels.weights.bits.stored, "block {index}");
    let summary = app.ws.jobs.block_summaries.get(&name.to_string()).unwrap().as_ref().unwrap().clone();
    assert_eq!(summary.blocks, 64 * 64 / 32);
    assert_eq!(summary.codes.iter().map(|(_, n)| n).sum::<u64>(), 64 * 64);
    harness.get_by_label("largest scale").click();
    harness.run_steps(2);
    assert_eq!(harness.state().panels.weights.blocks.index, summary.largest_scale_block);
    harness.get_by_label("block scales d");
}
