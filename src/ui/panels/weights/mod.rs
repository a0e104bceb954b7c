//! The centre panel: what is selected, its statistics and its histogram.
//! All numbers come from [`crate::analysis::stats`] via a background job; this file only draws.

pub mod bits;
pub mod blocks;
pub mod lora;

use egui::RichText;
use egui_plot::{Bar, BarChart, Plot};

use crate::analysis::cast::CastTarget;
use crate::analysis::floatbits::Format;
use crate::analysis::stats::TensorStats;
use crate::arch::ROOT;
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help};
use crate::workspace::{Action, Selection, Workspace};

/// The Weights tab's view state: the Bits playground, the cast target, the LoRA textures.
pub struct WeightsPanel {
    pub bits: bits::BitsView,
    pub blocks: blocks::BlockView,
    pub cast_target: CastTarget,
    pub lora: lora::LoraTextures,
}

impl Default for WeightsPanel {
    fn default() -> Self {
        Self {
            bits: bits::BitsView::default(),
            blocks: blocks::BlockView::default(),
            cast_target: CastTarget::Float(Format::BF16),
            lora: lora::LoraTextures::default(),
        }
    }
}

impl super::Panel for WeightsPanel {
    fn id(&self) -> &'static str {
        "weights"
    }

    fn title(&self) -> &'static str {
        tr("Weights")
    }

    fn tooltip(&self) -> &'static str {
        tr("Statistics, histogram and bits of the selected tensor or module")
    }

    fn reset(&mut self) {
        self.bits = bits::BitsView::default();
        self.blocks = blocks::BlockView::default();
        self.lora = lora::LoraTextures::default();
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| match ws.selection.clone() {
            Selection::None => overview(ui, self, ws, actions),
            Selection::Tensor(name) => tensor_page(ui, self, ws, actions, &name),
            Selection::Module(id) => {
                module_header(ui, ws, id);
                ui.separator();
                if let Some(module) = ws.adapted_module(id).map(|m| m.module.clone()) {
                    lora::show(ui, &mut self.lora, ws, actions, &module);
                    ui.separator();
                } else if ws.active.is_some() && id == ROOT {
                    lora::model_wide(ui, ws, actions);
                    ui.separator();
                }
                stats_section(ui, ws, actions);
                ui.separator();
                children_chart(ui, ws, id);
            }
        });
    }
}

fn tensor_page(ui: &mut egui::Ui, p: &mut WeightsPanel, ws: &Workspace, actions: &mut Vec<Action>, name: &str) {
    tensor_header(ui, ws, name);
    let entry = crate::workspace::OverlayEntry { tensor: name.to_string(), second: false };
    let overlaid = ws.overlay.contains(&entry);
    if ui
        .add_enabled(!overlaid, egui::Button::new(tr("+ Overlay histogram")))
        .on_hover_text(tr(
            "Add this tensor to the overlaid histograms in the Compare tab (up to four, from this model or the second one), drawn as densities on one shared range",
        ))
        .clicked()
    {
        actions.push(Action::AddToOverlay(entry));
    }
    ui.separator();
    stats_section(ui, ws, actions);
    ui.separator();
    let numel = ws.model.as_ref().and_then(|m| m.folder.checkpoint.tensor(name)).map(|t| t.numel()).unwrap_or(0);
    // For a quantized tensor the block is what the file stores, so it comes first.
    let quantized = ws
        .model
        .as_ref()
        .and_then(|m| m.folder.checkpoint.gguf_entry(name))
        .is_some_and(|e| e.ggml_type.is_quantized() && e.ggml_type.is_readable());
    if quantized {
        let element = p.bits.source.as_ref().filter(|s| s.0 == name).map(|s| s.1);
        egui::CollapsingHeader::new(RichText::new(tr("Inside a quantization block")).strong())
            .id_salt("blocks-section")
            .default_open(true)
            .show(ui, |ui| blocks::section(ui, &mut p.blocks, element, ws, actions, name));
    }
    egui::CollapsingHeader::new(RichText::new(tr("Bits: FP32 / BF16 / FP16 / FP8 of one weight")).strong())
        .id_salt("bits-section")
        .default_open(true)
        .show(ui, |ui| {
            bits::element_picker(ui, &mut p.bits, ws, name, numel);
            bin_values_list(ui, &mut p.bits, ws, name);
            if p.bits.tensor != name && numel > 0 {
                let index = p.bits.index.min(numel - 1);
                p.bits.inspect(ws, name, index);
            }
            bits::bits_view(ui, &mut p.bits);
        });
    egui::CollapsingHeader::new(RichText::new(tr("Cast the whole tensor: what changes?")).strong())
        .id_salt("cast-section")
        .show(ui, |ui| bits::cast_section(ui, &mut p.cast_target, ws, actions, name));
}

fn overview(ui: &mut egui::Ui, _p: &mut WeightsPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    if let Some(active) = &ws.active {
        lora::model_wide(ui, ws, actions);
        let base = ws.model.as_ref().map(|m| m.folder.tree.unique_param_count(ROOT)).unwrap_or(0);
        ui.monospace(crate::arch::peft::trainable_line(&active.adapter, base));
        ui.separator();
    }
    let Some(model) = &ws.model else { return };
    help::note(ui, "overview");
    ui.heading(model.tree.nodes[ROOT].class_name.clone());
    ui.label(tr("Select a module or a tensor in the tree to see its numbers."));
    ui.add_space(8.0);
    if let Some(cfg) = &model.folder.config {
        egui::Grid::new("config").striped(true).show(ui, |ui| {
            // Config keys are code words and stay as they are; the explanations are translated.
            let rows: Vec<(&str, String, &str)> = vec![
                (tr("family"), cfg.family.model_type().to_string(), tr("config.json model_type")),
                ("hidden_size", cfg.hidden_size.to_string(), tr("width of every token's vector between layers")),
                ("num_hidden_layers", cfg.num_layers.to_string(), tr("decoder layers stacked one after another")),
                ("num_attention_heads", cfg.num_heads.to_string(), tr("query heads per attention layer")),
                (
                    "num_key_value_heads",
                    cfg.num_kv_heads.to_string(),
                    tr("key/value heads; fewer than query heads = grouped-query attention (GQA)"),
                ),
                ("head_dim", cfg.head_dim.to_string(), tr("size of each head's query/key/value vectors")),
                ("intermediate_size", cfg.intermediate_size.to_string(), tr("hidden width inside each MLP (SwiGLU)")),
                ("vocab_size", cfg.vocab_size.to_string(), tr("rows of the embedding table = token ids")),
                (
                    "rms_norm_eps",
                    format!("{:e}", cfg.rms_norm_eps),
                    tr("added inside the RMSNorm square root for stability"),
                ),
                (
                    "rope_theta",
                    format!("{}", cfg.rope_theta),
                    tr("base of the rotary position embedding's frequencies"),
                ),
                ("tie_word_embeddings", cfg.tie_word_embeddings.to_string(), tr("lm_head reuses the embedding matrix")),
                ("dtype", cfg.dtype.clone().unwrap_or_else(|| "—".into()), tr("the dtype config.json declares")),
            ];
            for (k, v, tip) in rows {
                ui.label(k).on_hover_text(tip);
                ui.monospace(v);
                ui.end_row();
            }
            if let Some(moe) = &cfg.moe {
                ui.label(tr("experts")).on_hover_text(tr("routed experts per MoE layer, and how many each token uses"));
                ui.monospace(format!("{} (top-{})", moe.num_experts, moe.top_k));
                ui.end_row();
            }
        });
    }
    ui.add_space(8.0);
    ui.collapsing("print(model)", |ui| {
        ui.add(egui::Label::new(RichText::new(&model.repr).monospace()).wrap_mode(egui::TextWrapMode::Extend));
        if ui.button(tr("Copy text")).on_hover_text(tr("Copy the print(model) text to the clipboard")).clicked() {
            ui.ctx().copy_text(model.repr.clone());
        }
    });
}

fn tensor_header(ui: &mut egui::Ui, ws: &Workspace, name: &str) {
    let Some(model) = &ws.model else { return };
    let ckpt = &model.folder.checkpoint;
    let Some(t) = ckpt.tensor(name) else {
        ui.label(trf("No tensor named {}", &[&name]));
        return;
    };
    ui.heading(RichText::new(format::visible(name)).monospace());
    egui::Grid::new("tensor-info").show(ui, |ui| {
        ui.label(tr("dtype"))
            .on_hover_text(tr("The number format each element is stored in, and so how many bytes it takes"));
        ui.monospace(t.dtype.as_str());
        ui.end_row();
        ui.label(tr("shape")).on_hover_text(tr("A Linear weight is [out_features, in_features]"));
        ui.monospace(format::shape(&t.shape));
        ui.end_row();
        ui.label(tr("elements")).on_hover_text(tr("The product of the shape: how many numbers the tensor holds"));
        ui.monospace(t.numel().to_string());
        ui.end_row();
        ui.label(tr("bytes")).on_hover_text(tr("elements × bytes per element of the dtype (BF16: 2, FP32: 4)"));
        ui.monospace(format!("{} ({})", t.byte_len(), format::bytes(t.byte_len() as u64)));
        ui.end_row();
        ui.label(tr("file")).on_hover_text(tr("The shard that stores it, and the byte range after the header"));
        ui.monospace(format!("{}  [{}, {})", ckpt.shard_name(t), t.data_offsets.0, t.data_offsets.1));
        ui.end_row();
        if let Some(e) = ckpt.gguf_entry(name) {
            gguf_rows(ui, t, e);
        }
    });
}

fn module_header(ui: &mut egui::Ui, ws: &Workspace, id: usize) {
    let Some(model) = &ws.model else { return };
    let node = &model.tree.nodes[id];
    let title = if node.path.is_empty() { node.class_name.clone() } else { node.path.clone() };
    ui.heading(RichText::new(format::visible(&title)).monospace());
    ui.label(RichText::new(format!("{}({})", node.class_name, node.extra_repr)).monospace());
    let note = help::teaching_note(node);
    if let Some((_, text)) = note.split_once('\n') {
        ui.label(RichText::new(text).italics());
    }
    ui.label(trf(
        "{} parameters · {} stored",
        &[&format::count(model.param_counts[id]), &format::bytes(model.folder.stored_bytes(id))],
    ))
    .on_hover_text(tr(
        "Parameters: how many numbers this module's tensors hold (a tied tensor counts in each module that uses it). Stored: the bytes those tensors take in the safetensors files, a tied tensor only once.",
    ));
}

fn stats_section(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    help::note(ui, "weights");
    let mut histogram = ws.settings.histogram;
    ui.horizontal(|ui| {
        ui.add(egui::Slider::new(&mut histogram.bins, 1..=512).logarithmic(true).text(tr("bins")))
            .on_hover_text(tr("Number of equal-width bins between min and max (numpy's rule)"));
        ui.checkbox(&mut histogram.log_y, tr("log counts"))
            .on_hover_text(tr("Show log₁₀(1 + count): makes the rare values in the tails visible"));
    });
    if histogram != ws.settings.histogram {
        actions.push(Action::Settings(Box::new(crate::workspace::Settings { histogram, ..ws.settings.clone() })));
    }
    if let Some(p) = ws.stats_progress() {
        super::progress_with_cancel(ui, p, 300.0, Action::CancelStats, actions);
        ui.label(RichText::new(tr("reading the memory-mapped file on worker threads…")).weak());
        return;
    }
    let name = selection_name(ws);
    let stem = format!("{name}-histogram");
    match ws.current_stats() {
        None => {}
        Some(Err(e)) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
            if ui.button(tr("Compute again")).clicked() {
                actions.push(Action::RecomputeStats);
            }
        }
        Some(Ok(stats)) => {
            // Numbers beside the picture: the histogram gets the width, the grid stays compact.
            let json = || stats_json(ws, stats);
            let clicked = ui
                .horizontal_top(|ui| {
                    ui.vertical(|ui| stats_grid(ui, stats));
                    ui.add_space(8.0);
                    ui.vertical(|ui| histogram_plot(ui, stats, ws.settings.histogram.log_y, &stem, &json)).inner
                })
                .inner;
            if let Some(bin) = clicked
                && let Selection::Tensor(tensor) = &ws.selection
            {
                let e = &stats.histogram.edges;
                actions.push(Action::ListBinValues { tensor: tensor.clone(), lo: e[bin], hi: e[bin + 1] });
            }
        }
    }
}

/// The Export menu's JSON: `llm-anatomy stats --json`'s serialiser. A module aggregate
/// names its dotted path, the dtype its tensors share ("mixed" otherwise) and no shape.
fn stats_json(ws: &Workspace, stats: &TensorStats) -> String {
    let name = selection_name(ws);
    let ckpt = ws.model.as_ref().map(|m| &m.folder.checkpoint);
    let infos: Vec<_> =
        ws.tensor_names(&ws.selection).iter().filter_map(|n| ckpt.and_then(|c| c.tensor(n))).cloned().collect();
    let (dtype, shape) = match infos.as_slice() {
        [one] if matches!(ws.selection, Selection::Tensor(_)) => (one.dtype.as_str().to_string(), one.shape.clone()),
        many => {
            let first = many.first().map(|t| t.dtype);
            let same = many.iter().all(|t| Some(t.dtype) == first);
            let dtype = if same { first.map(|d| d.as_str().to_string()).unwrap_or_default() } else { "mixed".into() };
            (dtype, Vec::new())
        }
    };
    serde_json::to_string_pretty(&crate::report::stats_json(&name, &dtype, &shape, stats)).unwrap_or_default()
}

/// The selected tensor's name, or the selected module's dotted path (its class for the root):
/// the start of export file names.
fn selection_name(ws: &Workspace) -> String {
    match &ws.selection {
        Selection::Tensor(name) => name.clone(),
        Selection::Module(id) => ws.model.as_ref().map(|m| m.node_name(*id)).unwrap_or_default(),
        Selection::None => String::new(),
    }
}

fn stats_grid(ui: &mut egui::Ui, s: &TensorStats) {
    egui::Grid::new("stats").striped(true).num_columns(2).show(ui, |ui| {
        // (label, value, tooltip, shown in red when the checkpoint has NaN or Inf)
        let rows: [(&str, String, &str, bool); 10] = [
            (tr("count"), s.count.to_string(), tr("number of elements"), false),
            (tr("mean"), format::num(s.mean), tr("average of the finite values"), false),
            (tr("std"), format::num(s.std), tr("population standard deviation (ddof = 0)"), false),
            (tr("min"), format::num(s.min), tr("smallest finite value"), false),
            (tr("max"), format::num(s.max), tr("largest finite value"), false),
            (
                tr("abs max"),
                format::num(s.abs_max),
                tr("largest |x|: what decides whether a cast to FP16/FP8 overflows"),
                false,
            ),
            (tr("zeros"), s.zeros.to_string(), tr("elements exactly 0"), false),
            ("NaN", s.nan.to_string(), tr("not-a-number values: a broken checkpoint if not 0"), true),
            ("Inf", s.inf.to_string(), tr("±infinity values: a broken checkpoint if not 0"), true),
            (tr("sparsity"), format!("{:.3}%", 100.0 * s.sparsity()), tr("share of exact zeros"), false),
        ];
        for (k, v, tip, alarm) in rows {
            ui.label(k).on_hover_text(tip);
            let mut text = RichText::new(v).monospace();
            if alarm && (s.nan + s.inf) > 0 {
                text = text.color(ui.visuals().error_fg_color);
            }
            ui.label(text);
            ui.end_row();
        }
    });
}

/// Draws the histogram and its export menu; returns the bin the user clicked, if any.
fn histogram_plot(
    ui: &mut egui::Ui,
    s: &TensorStats,
    log_y: bool,
    stem: &str,
    json: &dyn Fn() -> String,
) -> Option<usize> {
    let edges = s.histogram.edges.clone();
    let counts = s.histogram.counts.clone();
    let bars: Vec<Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let h = if log_y { (1.0 + c as f64).log10() } else { c as f64 };
            Bar::new((edges[i] + edges[i + 1]) / 2.0, h).width(edges[i + 1] - edges[i])
        })
        .collect();
    let (fmt_edges, fmt_counts) = (edges.clone(), counts.clone());
    let chart = BarChart::new("histogram", bars).color(egui::Color32::from_rgb(70, 130, 200)).element_formatter(
        Box::new(move |bar, _| {
            let i = fmt_edges.partition_point(|&e| e <= bar.argument).saturating_sub(1).min(fmt_counts.len() - 1);
            let close = if i + 1 == fmt_counts.len() { "]" } else { ")" };
            let range = format!("[{}, {}{close}", format::num(fmt_edges[i]), format::num(fmt_edges[i + 1]));
            format!("{range}\n{}", trf("count {}", &[&fmt_counts[i]]))
        }),
    );
    ui.label(RichText::new(trf("histogram: {} bins", &[&counts.len()])).strong());
    let (plot, plot_rect) = export::framed(ui, |ui| {
        Plot::new("histogram-plot")
            .height(280.0)
            // Base-5 ticks (…, 0.04, 0.2, 1, …): base 10 puts them too close for their labels.
            .x_grid_spacer(egui_plot::log_grid_spacer(5))
            .allow_scroll(false)
            .allow_drag(false)
            .y_axis_label(if log_y { tr("log₁₀(1 + count)") } else { tr("count") })
            .x_axis_label(tr("value"))
            .show(ui, |plot| {
                plot.bar_chart(chart);
                let x = plot.pointer_coordinate().map(|p| p.x);
                if plot.response().clicked() { x } else { None }
            })
    });
    let clicked_bin = plot.inner.and_then(|x| {
        (x >= edges[0] && x <= edges[edges.len() - 1])
            .then(|| edges.partition_point(|&e| e <= x).saturating_sub(1).min(counts.len() - 1))
    });
    ui.horizontal(|ui| {
        let csv = || crate::report::histogram_csv(&s.histogram);
        // The same serialiser as `llm-anatomy stats --json`.
        export::menu(ui, stem, Some(plot_rect), Some(&csv), Some(json));
        ui.label(RichText::new(tr("click a bar to list the values in it")).weak());
    });
    clicked_bin
}

/// The values found in the last clicked histogram bin, as chips that open their bits.
fn bin_values_list(ui: &mut egui::Ui, bits: &mut bits::BitsView, ws: &Workspace, tensor: &str) {
    let Some(key) = ws.bin_query.clone().filter(|k| k.0 == tensor) else { return };
    let Some(result) = ws.jobs.bin_values.get(&key).cloned() else {
        ui.spinner();
        return;
    };
    match result {
        Err(e) => {
            ui.label(RichText::new(e).color(ui.visuals().error_fg_color));
        }
        Ok(found) => {
            let (lo, hi) = (f64::from_bits(key.1), f64::from_bits(key.2));
            ui.label(trf("values in [{}, {}]:", &[&format::num(lo), &format::num(hi)]));
            ui.horizontal_wrapped(|ui| {
                for (index, value) in found {
                    if ui.small_button(format!("#{index} = {}", format::num(value))).clicked() {
                        bits.inspect(ws, tensor, index);
                    }
                }
            });
        }
    }
}

fn children_chart(ui: &mut egui::Ui, ws: &Workspace, id: usize) {
    let Some(model) = &ws.model else { return };
    let tree = &model.tree;
    let children = &tree.nodes[id].children;
    if children.is_empty() {
        return;
    }
    help::note(ui, "children");
    ui.label(RichText::new(tr("parameters per child")).strong())
        .on_hover_text(tr("Where this module's parameters live"));
    let names: Vec<String> = children.iter().map(|&c| tree.nodes[c].key.clone()).collect();
    let counts: Vec<u64> = children.iter().map(|&c| model.param_counts[c]).collect();
    let bars: Vec<Bar> =
        counts.iter().enumerate().map(|(i, &n)| Bar::new(i as f64, n as f64).name(&names[i]).width(0.7)).collect();
    let label_names = names.clone();
    let chart = BarChart::new("parameters", bars)
        .color(egui::Color32::from_rgb(200, 140, 60))
        .element_formatter(Box::new(|bar, _| trf("{}\n{} parameters", &[&bar.name, &bar.value])));
    let (_, plot_rect) = export::framed(ui, |ui| {
        Plot::new("children-plot")
            .height(220.0)
            .allow_scroll(false)
            .x_axis_formatter(format::category_axis(label_names))
            .show(ui, |plot| plot.bar_chart(chart))
    });
    let csv = || crate::report::children_csv(&names, &counts);
    export::menu(ui, &format!("{}-children", model.node_name(id)), Some(plot_rect), Some(&csv), None);
}

/// GGUF tensors: the GGML type, its cost per weight, the name in the file, and whether the
/// rows shown were put back from llama.cpp's q/k order.
fn gguf_rows(ui: &mut egui::Ui, t: &crate::checkpoint::TensorInfo, e: &crate::checkpoint::gguf::GgufEntry) {
    ui.label(tr("GGML type")).on_hover_text(tr("The block format llama.cpp stores the tensor in"));
    let bpw = e.ggml_type.bits_per_weight().map_or("?".to_string(), |b| format!("{b}"));
    ui.monospace(trf("{} ({} bits per weight)", &[&e.ggml_type, &bpw]));
    ui.end_row();
    ui.label(tr("GGUF name"));
    let expert = e.expert.map(|x| trf(", expert {}", &[&x])).unwrap_or_default();
    ui.monospace(format!("{}{expert}", e.gguf_name));
    ui.end_row();
    if e.unpermuted {
        ui.label(tr("row order"));
        ui.label(tr("llama.cpp stores these q/k rows permuted for its rope kernel; shown in Hugging Face order, as transformers un-permutes them on load"));
        ui.end_row();
    }
    if let Some(err) = t.dtype.not_readable() {
        ui.label(tr("values"));
        ui.label(err.to_string());
        ui.end_row();
    }
}
