//! The LoRA diff view: W, ΔW = (α/r)·B·A and W + ΔW as heatmaps on one colour scale, their
//! histograms, ‖W‖, ‖ΔW‖ and the ratio, and ΔW's singular values (at most r are non-zero).

use egui::{Color32, ColorImage, RichText, TextureHandle, TextureOptions};
use egui_plot::{Bar, BarChart, Legend, Plot};

use crate::analysis::lora_figures::{LoraFigures, PooledGrid};
use crate::analysis::stats::TensorStats;
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help};
use crate::workspace::{Action, LoraKey, Workspace};

/// The four heatmaps of the module on screen, uploaded once per (adapter, module).
#[derive(Default)]
pub struct LoraTextures {
    uploaded: Option<(LoraKey, [TextureHandle; 4])>,
}

/// A diverging blue–white–red colouring of a pooled grid, ±`scale` at full colour.
fn heatmap(grid: &PooledGrid, scale: f32) -> ColorImage {
    let pixels = grid
        .cells
        .iter()
        .map(|&c| {
            let v = (c / scale).clamp(-1.0, 1.0);
            let fade = |c: u8| (255.0 - (255.0 - c as f32) * v.abs()) as u8;
            if v >= 0.0 {
                Color32::from_rgb(fade(200), fade(40), fade(40))
            } else {
                Color32::from_rgb(fade(40), fade(80), fade(200))
            }
        })
        .collect();
    ColorImage::new([grid.width, grid.height], pixels)
}

impl LoraTextures {
    fn get(&mut self, ctx: &egui::Context, key: &LoraKey, view: &LoraFigures) -> &[TextureHandle; 4] {
        if self.uploaded.as_ref().is_none_or(|(k, _)| k != key) {
            let images = [
                heatmap(&view.w, view.scale),
                heatmap(&view.delta, view.scale),
                heatmap(&view.merged, view.scale),
                heatmap(&view.delta, view.delta_scale),
            ];
            let names = ["lora-w", "lora-delta", "lora-merged", "lora-delta-own"];
            let textures = std::array::from_fn(|i| {
                ctx.load_texture(format!("{}-{}", key.1, names[i]), images[i].clone(), TextureOptions::NEAREST)
            });
            self.uploaded = Some((key.clone(), textures));
        }
        &self.uploaded.as_ref().expect("just set").1
    }
}

/// A progress bar while a LoRA job runs (it asks for the job if nothing is there yet), or
/// the job's error. None until the figures are in.
fn figures_or_progress<'a, T>(
    ui: &mut egui::Ui,
    result: Option<&'a Result<T, String>>,
    progress: Option<f32>,
    request: Action,
    actions: &mut Vec<Action>,
) -> Option<&'a T> {
    let note = tr("computing ΔW = B·A and its singular values on a worker…");
    super::super::job_result(ui, result, progress, note, request, actions)
}

/// The LoRA section for an adapted module.
pub fn show(ui: &mut egui::Ui, textures: &mut LoraTextures, ws: &Workspace, actions: &mut Vec<Action>, module: &str) {
    let (Some(active), Some(key)) = (&ws.active, ws.lora_key(module)) else { return };
    let progress = ws.jobs.lora.progress(&key);
    let request = Action::RequestLoraFigures(module.to_string());
    let Some(view) = figures_or_progress(ui, ws.lora_figures(module), progress, request, actions) else { return };
    let (adapter, strength) = (&active.adapter, active.strength);
    ui.label(RichText::new(trf("LoRA on {}", &[&module])).strong().size(18.0)).on_hover_text(tr(
        "LoRA freezes W and learns two thin matrices: A (r × in) and B (out × r). The layer computes W·x + (α/r)·B·A·x, so the update ΔW = (α/r)·B·A has rank at most r.",
    ));
    help::note(ui, "lora");
    let s = &view.summary;
    egui::Grid::new("lora-grid").num_columns(2).striped(true).show(ui, |ui| {
        let rows = [
            (
                tr("rank r"),
                format!("{}", view.rank),
                tr("Inner size of A and B: ΔW has at most r non-zero singular values"),
            ),
            (
                tr("α, scaling"),
                format!("{} , {}", adapter.alpha, adapter.scaling),
                tr("ΔW = scaling · B·A with scaling = α / r (α / √r with rsLoRA)"),
            ),
            ("‖W‖_F", format::num(s.w_norm), tr("Frobenius norm of the frozen weight")),
            ("‖ΔW‖_F", format::num(s.delta_norm), tr("Frobenius norm of the update")),
            (tr("ratio"), format!("{:.4}", s.ratio), tr("‖ΔW‖ / ‖W‖: how large the change is relative to the weight")),
            (
                tr("strength"),
                format!("{strength:.2}"),
                tr("What the engine multiplies ΔW by (Token probabilities tab)"),
            ),
        ];
        for (k, v, tip) in rows {
            ui.label(k).on_hover_text(tip);
            ui.monospace(v);
            ui.end_row();
        }
    });
    let textures = textures.get(ui.ctx(), &key, view);
    ui.label(
        RichText::new(trf("heatmaps on one colour scale (±{}): red > 0, blue < 0", &[&format::num(view.scale as f64)]))
            .weak(),
    )
    .on_hover_text(tr("Each cell is the mean of a block of weights: rows are output features, columns input features"));
    ui.horizontal(|ui| {
        let own = trf("ΔW, own scale ±{}", &[&format::num(view.delta_scale as f64)]);
        let titles = ["W", "ΔW = (α/r)·B·A", "W + ΔW", own.as_str()];
        let stems = ["W", "dW", "W+dW", "dW-own-scale"];
        for ((tex, title), stem) in textures.iter().zip(titles).zip(stems) {
            ui.vertical(|ui| {
                ui.label(title);
                let image = ui.add(egui::Image::new(tex).fit_to_exact_size(egui::vec2(180.0, 180.0)));
                export::menu(ui, &format!("{module}-{stem}"), Some(image.rect), None, None);
            });
        }
    });
    ui.horizontal(|ui| {
        ui.vertical(|ui| {
            ui.label(RichText::new(tr("W and W + ΔW")).strong())
                .on_hover_text(tr("Histograms of the weight before and after adding the update"));
            let rect = overlay(ui, &view.w_stats, &view.merged_stats);
            let csv = || {
                crate::report::histograms_csv(&[("W", &view.w_stats.histogram), ("W+dW", &view.merged_stats.histogram)])
            };
            export::menu(ui, &format!("{module}-W-and-W+dW-histogram"), Some(rect), Some(&csv), None);
        });
        ui.vertical(|ui| {
            ui.label(RichText::new("ΔW").strong()).on_hover_text(tr("Histogram of the update's values"));
            let rect = bars(ui, "delta-hist", &view.delta_stats, Color32::from_rgb(200, 120, 40));
            let csv = || crate::report::histogram_csv(&view.delta_stats.histogram);
            export::menu(ui, &format!("{module}-dW-histogram"), Some(rect), Some(&csv), None);
        });
    });
    ui.label(RichText::new(tr("singular values of ΔW")).strong()).on_hover_text(tr(
        "A full-rank update would have min(out, in) of them; LoRA's has at most r: the low-rank idea made visible",
    ));
    let sv: Vec<Bar> =
        s.singular_values.iter().enumerate().map(|(i, &v)| Bar::new(i as f64 + 1.0, v).width(0.7)).collect();
    let (_, plot_rect) = export::framed(ui, |ui| {
        Plot::new("sv-plot")
            .height(150.0)
            .allow_scroll(false)
            .x_axis_label(tr("index (largest first)"))
            .y_axis_label("σ")
            .show(ui, |p| p.bar_chart(BarChart::new("σ", sv).color(Color32::from_rgb(120, 90, 190))))
    });
    let csv = || crate::report::singular_values_csv(&s.singular_values);
    export::menu(ui, &format!("{module}-singular-values"), Some(plot_rect), Some(&csv), None);
}

/// Returns the plot's rect on screen.
fn bars(ui: &mut egui::Ui, id: &str, s: &TensorStats, color: Color32) -> egui::Rect {
    let e = &s.histogram.edges;
    let b: Vec<Bar> = s
        .histogram
        .counts
        .iter()
        .enumerate()
        .map(|(i, &c)| Bar::new((e[i] + e[i + 1]) / 2.0, c as f64).width(e[i + 1] - e[i]))
        .collect();
    export::framed(ui, |ui| {
        Plot::new(id)
            .height(160.0)
            .width(320.0)
            .allow_scroll(false)
            .show(ui, |p| p.bar_chart(BarChart::new(id, b).color(color)))
    })
    .1
}

/// Returns the plot's rect on screen.
fn overlay(ui: &mut egui::Ui, w: &TensorStats, merged: &TensorStats) -> egui::Rect {
    let to_bars = |s: &TensorStats| -> Vec<Bar> {
        let e = &s.histogram.edges;
        s.histogram
            .counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Bar::new((e[i] + e[i + 1]) / 2.0, c as f64).width(e[i + 1] - e[i]))
            .collect()
    };
    export::framed(ui, |ui| {
        Plot::new("overlay-hist").height(160.0).width(320.0).allow_scroll(false).legend(Legend::default()).show(
            ui,
            |p| {
                p.bar_chart(BarChart::new("W", to_bars(w)).color(Color32::from_rgba_unmultiplied(70, 130, 200, 140)));
                p.bar_chart(
                    BarChart::new("W + ΔW", to_bars(merged)).color(Color32::from_rgba_unmultiplied(220, 120, 40, 140)),
                );
            },
        )
    })
    .1
}

/// ‖ΔW‖/‖W‖ for every adapted module, one bar each.
pub fn model_wide(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    let Some(active) = &ws.active else { return };
    let progress = ws.jobs.lora_table.progress(&active.epoch);
    let Some(views) = figures_or_progress(ui, ws.lora_table(), progress, Action::RequestLoraTable, actions) else {
        return;
    };
    help::note(ui, "lora-model-wide");
    ui.label(RichText::new(tr("‖ΔW‖ / ‖W‖ per adapted module")).strong())
        .on_hover_text(tr("Where the adapter changes the model most"));
    let short: Vec<String> = views
        .iter()
        .map(|v| v.module.trim_start_matches("model.layers.").replace(".self_attn", "").replace(".mlp", ""))
        .collect();
    let bars: Vec<Bar> =
        views.iter().enumerate().map(|(i, v)| Bar::new(i as f64, v.ratio).name(&v.module).width(0.7)).collect();
    let (_, plot_rect) = export::framed(ui, |ui| {
        Plot::new("lora-model-wide")
            .height(180.0)
            .allow_scroll(false)
            .x_axis_formatter(format::category_axis(short))
            .y_axis_label("‖ΔW‖ / ‖W‖")
            .show(ui, |p| {
                p.bar_chart(
                    BarChart::new("ratio", bars)
                        .color(Color32::from_rgb(200, 120, 40))
                        .element_formatter(Box::new(|b, _| format!("{}\n{:.4}", b.name, b.value))),
                )
            })
    });
    let csv = || {
        let mut csv = String::from("module,delta_norm,weight_norm,ratio\n");
        for s in views.iter() {
            csv.push_str(&format!("{},{},{},{}\n", s.module, s.delta_norm, s.w_norm, s.ratio));
        }
        csv
    };
    // `llm-anatomy lora --json`'s serialiser.
    let json = || serde_json::to_string_pretty(&crate::report::lora_json(&active.adapter, views)).unwrap_or_default();
    export::menu(ui, "lora-model-wide", Some(plot_rect), Some(&csv), Some(&json));
}
