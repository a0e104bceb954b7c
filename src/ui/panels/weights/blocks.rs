//! Inside one quantization block of a GGUF tensor: its raw fields (F16 scales with their 16
//! bits, unpacked sub-block scales and mins), every code, and the weights they decode to
//! with the formula filled in; and the tensor's block scales and codes as histograms.
//! Blocks come from [`crate::checkpoint::quant_blocks`], the per-tensor figures from
//! [`crate::analysis::blocks`] on a worker; this file only draws.

use egui::{Color32, RichText};
use egui_plot::{Bar, BarChart, Plot};

use crate::checkpoint::Dtype;
use crate::checkpoint::quant_blocks::{Block, Field, block};
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help};
use crate::workspace::{Action, Workspace};

/// Which block is shown, per tensor.
#[derive(Default)]
pub struct BlockView {
    pub tensor: String,
    pub index: usize,
}

/// The block holding flat element `index` (Hugging Face orientation) of a tensor stored as
/// `layout`: llama.cpp's q/k rows are permuted on disk, so the stored row is looked up.
fn block_of_element(index: usize, layout: crate::checkpoint::ggml_dtype::GgmlLayout) -> usize {
    let cols = layout.row_len.max(1) as usize;
    let (row, col) = (index / cols, index % cols);
    let n = layout.ty.block_size().unwrap_or(1).max(1);
    (layout.stored_row(row) * cols + col) / n
}

pub fn section(
    ui: &mut egui::Ui,
    view: &mut BlockView,
    bits_element: Option<usize>,
    ws: &Workspace,
    actions: &mut Vec<Action>,
    tensor: &str,
) {
    let Some(model) = &ws.model else { return };
    let ckpt = &model.folder.checkpoint;
    let (Some(t), Some(entry)) = (ckpt.tensor(tensor), ckpt.gguf_entry(tensor)) else { return };
    let Dtype::Ggml(layout) = t.dtype else { return };
    let ty = entry.ggml_type;
    let bytes = ckpt.bytes(t);
    let Some(size) = ty.bytes_per_block() else { return };
    let blocks = bytes.len() / size;
    if view.tensor != tensor {
        *view = BlockView { tensor: tensor.to_string(), index: 0 };
    }
    help::note(ui, "blocks");
    let summary = ws.jobs.block_summaries.get(&tensor.to_string());
    ui.horizontal_wrapped(|ui| {
        ui.label(tr("block"));
        ui.add(egui::DragValue::new(&mut view.index).range(0..=blocks.saturating_sub(1))).on_hover_text(trf(
            "{} blocks of {} weights, {} bytes each",
            &[&blocks, &ty.block_size().unwrap_or(1), &size],
        ));
        if let Some(i) = bits_element
            && ui
                .button(tr("block of the Bits element"))
                .on_hover_text(tr("The block holding the element shown in the Bits view above"))
                .clicked()
        {
            view.index = block_of_element(i, layout);
        }
        if let Some(Ok(s)) = summary
            && ui
                .button(tr("largest scale"))
                .on_hover_text(tr("The block with the largest |d|: its small weights lose the most to rounding"))
                .clicked()
        {
            view.index = s.largest_scale_block;
        }
    });
    match block(ty, bytes, view.index.min(blocks.saturating_sub(1))) {
        Err(e) => {
            ui.label(RichText::new(e.to_string()).color(ui.visuals().error_fg_color));
        }
        Ok(None) => {}
        Ok(Some(b)) => block_view(ui, &b, b.place(layout), tensor),
    }
    ui.separator();
    let progress = ws.jobs.block_summaries.progress(&tensor.to_string());
    let doing = tr("reading every block's scale and codes…");
    let request = Action::RequestBlockSummary(tensor.to_string());
    if let Some(s) = super::super::job_result(ui, summary, progress, doing, request, actions) {
        summary_plots(ui, s, tensor);
    }
}

fn block_view(ui: &mut egui::Ui, b: &Block, (row, col): (usize, usize), tensor: &str) {
    ui.label(RichText::new(trf("block {}: {}", &[&b.index, &b.formula])).strong().monospace());
    ui.label(trf(
        "row {}, columns {}…{} (Hugging Face orientation)",
        &[&row, &col, &(col + b.values.len().max(1) - 1)],
    ));
    egui::Grid::new("block-fields").striped(true).num_columns(3).show(ui, |ui| {
        for (name, field) in &b.fields {
            ui.monospace(*name);
            match field {
                Field::Half { value, bits } => {
                    ui.monospace(format::num(*value as f64));
                    half_bits(ui, *bits);
                }
                Field::Ints(v) => {
                    ui.monospace(format!("{v:?}"));
                    ui.label(RichText::new(tr("unpacked from 6-bit (K-quant) or 4-bit fields")).weak());
                }
                Field::Bits(x) => {
                    ui.monospace(format!("{x:#010x}"));
                    ui.monospace(format!("{x:032b}"));
                }
            }
            ui.end_row();
        }
    });
    ui.add_space(4.0);
    ui.label(RichText::new(tr("codes (hover one for its weight)")).strong());
    let per_row = 16;
    egui::Grid::new("block-codes").spacing([6.0, 2.0]).show(ui, |ui| {
        for (j, q) in b.codes.iter().enumerate() {
            let tip = b.filled(j).unwrap_or_default();
            ui.monospace(format!("{q:>4}")).on_hover_text(trf("weight {}: {}", &[&j, &tip]));
            if (j + 1) % per_row == 0 {
                ui.end_row();
            }
        }
    });
    ui.add_space(4.0);
    ui.label(RichText::new(tr("decoded weights")).strong());
    for j in 0..b.values.len().min(4) {
        if let Some(text) = b.filled(j) {
            ui.monospace(format!("[{j}] {text}"));
        }
    }
    // `llm-anatomy blocks --json`'s serialiser.
    let json = || serde_json::to_string_pretty(&crate::report::block_json(tensor, b, (row, col))).unwrap_or_default();
    export::menu(ui, &format!("{tensor}-block-{}", b.index), None, None, Some(&json));
}

/// An F16's 16 bits, sign | exponent | fraction, coloured as the Bits view colours them.
fn half_bits(ui: &mut egui::Ui, bits: u16) {
    let s = format!("{bits:016b}");
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        for (part, colour) in [
            (&s[..1], Color32::from_rgb(200, 70, 70)),
            (&s[1..6], Color32::from_rgb(60, 120, 200)),
            (&s[6..], Color32::from_rgb(220, 150, 40)),
        ] {
            ui.label(RichText::new(part).monospace().color(colour));
        }
    })
    .response
    .on_hover_text(tr("F16: 1 sign, 5 exponent, 10 fraction bits"));
}

fn summary_plots(ui: &mut egui::Ui, s: &crate::analysis::blocks::BlockSummary, tensor: &str) {
    ui.label(trf(
        "{}: {} blocks, {} bits per weight; the largest |d| is block {}: d = {}",
        &[&s.ggml_type, &s.blocks, &s.bits_per_weight, &s.largest_scale_block, &format::num(s.largest_scale as f64)],
    ));
    ui.horizontal_top(|ui| {
        let e = &s.scales.edges;
        let bars: Vec<Bar> = s
            .scales
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar::new((e[i] + e[i + 1]) / 2.0, c as f64).width(e[i + 1] - e[i]))
            .collect();
        let blue = Color32::from_rgb(60, 120, 200);
        small_bar_plot(ui, ("block-scales", "scales", tr("block scales d")), bars, ("d", tr("blocks")), blue);
        let bars: Vec<Bar> = s.codes.iter().map(|&(q, n)| Bar::new(q as f64, n as f64).width(0.8)).collect();
        let orange = Color32::from_rgb(220, 150, 40);
        small_bar_plot(ui, ("block-codes-plot", "codes", tr("codes q")), bars, ("q", tr("weights")), orange);
    });
    let json = || serde_json::to_string_pretty(s).unwrap_or_default();
    export::menu(ui, &format!("{tensor}-blocks"), None, None, Some(&json));
}

/// One of the two histograms side by side: a titled, fixed-size bar chart (plot id, chart
/// name, title; x and y axis labels).
fn small_bar_plot(
    ui: &mut egui::Ui,
    (id, name, title): (&str, &str, &str),
    bars: Vec<Bar>,
    (x, y): (&str, &str),
    colour: Color32,
) {
    ui.vertical(|ui| {
        ui.label(RichText::new(title).strong());
        Plot::new(id)
            .height(180.0)
            .width(360.0)
            .allow_scroll(false)
            .allow_drag(false)
            .x_axis_label(x)
            .y_axis_label(y)
            .show(ui, |p| p.bar_chart(BarChart::new(name, bars).color(colour)));
    });
}
