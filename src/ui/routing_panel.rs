//! MoE routing: for each layer, which experts every token goes to (heatmap of the gate's
//! probabilities, chosen experts outlined), a token's path through all layers, and each
//! expert's load with a balance figure. Reads the router logits the engine recorded for
//! the token panel's sequence; numbers come from [`crate::analysis::routing`].

use egui::{Color32, RichText, Stroke};
use egui_plot::{Bar, BarChart, Plot};

use super::tokens_panel::TokensState;
use crate::analysis::routing::{self, LayerRouting};
use crate::arch::ArchConfig;

#[derive(Default)]
pub struct RoutingState {
    /// Index into the MoE layers (not the layer number).
    pub layer: usize,
    pub all_layers: bool,
    pub token: Option<usize>,
    cache: Option<CachedRouting>,
}

/// The summary and the (forward count, sequence length) it was computed for.
type CachedRouting = ((u64, usize), std::sync::Arc<Vec<LayerRouting>>);

impl RoutingState {
    /// The routing summary of the token panel's current sequence, recomputed when it changes.
    pub fn layers(&mut self, tokens: &TokensState, cfg: &ArchConfig) -> Option<std::sync::Arc<Vec<LayerRouting>>> {
        let moe = cfg.moe.as_ref()?;
        let snap = tokens.snapshot.as_ref()?;
        let key = (snap.forwards, snap.tokens.len());
        if let Some((k, l)) = &self.cache
            && *k == key
        {
            return Some(l.clone());
        }
        let layers =
            std::sync::Arc::new(routing::summarize(&snap.routing, &snap.shared_gate, moe.top_k, moe.norm_topk_prob));
        self.cache = Some((key, layers.clone()));
        Some(layers)
    }
}

fn color(p: f32) -> Color32 {
    let [r, g, b] = routing::viridis(p);
    Color32::from_rgb(r, g, b)
}

pub fn show(ui: &mut egui::Ui, st: &mut RoutingState, tokens: &mut TokensState, cfg: Option<&ArchConfig>) {
    let Some(cfg) = cfg else {
        ui.label("Routing needs a supported MoE architecture.");
        return;
    };
    let Some(moe) = cfg.moe.as_ref() else {
        ui.label(
            RichText::new(format!(
                "{} is a dense model: every token goes through the same MLP, so there is no routing to show. \
             Open a mixture-of-experts model (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE) to see where each token goes.",
                cfg.architecture
            ))
            .size(17.0),
        );
        return;
    };
    tokens.poll();
    ui.heading(format!("Expert routing · {} experts, top-{}", moe.num_experts, moe.top_k))
        .on_hover_text("The gate (router) scores every expert for each token: G(x) = softmax(x·W_g). The top-k experts run, and their outputs are mixed by the gate weights.");
    let Some(layers) = st.layers(tokens, cfg) else {
        ui.horizontal(|ui| {
            ui.label("Run a prompt to see its routing:");
            let label = ui.label("Prompt");
            ui.add(egui::TextEdit::singleline(&mut tokens.prompt).desired_width(360.0)).labelled_by(label.id);
            if ui.button("Run prompt").clicked() {
                tokens.run_prompt();
            }
            if tokens.busy.is_some() {
                ui.spinner();
                ui.ctx().request_repaint_after(std::time::Duration::from_millis(50));
            }
        });
        return;
    };
    if layers.is_empty() {
        return;
    }
    let snap = tokens.snapshot.as_ref().expect("layers come from a snapshot");
    let labels: Vec<String> =
        snap.pieces.iter().map(|p| if p.special { p.token.clone() } else { p.text.replace('\n', "⏎") }).collect();
    st.layer = st.layer.min(layers.len() - 1);
    ui.horizontal(|ui| {
        let label = ui.label("layer");
        egui::ComboBox::from_id_salt("routing-layer")
            .selected_text(format!("{}", layers[st.layer].layer))
            .show_ui(ui, |ui| {
                for (i, l) in layers.iter().enumerate() {
                    ui.selectable_value(&mut st.layer, i, format!("layer {}", l.layer));
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut st.all_layers, "all layers");
        if ui.button("Copy as JSON").on_hover_text("Every layer's probabilities, choices, weights and load").clicked() {
            ui.ctx().copy_text(serde_json::to_string_pretty(layers.as_ref()).unwrap_or_default());
        }
        ui.label(RichText::new("click a token to follow its path through the layers").weak());
    });
    legend(ui);
    if st.all_layers {
        small_multiples(ui, &layers);
    } else {
        let l = &layers[st.layer];
        heatmap(ui, l, &labels, &mut st.token);
        ui.add_space(6.0);
        load_chart(ui, l);
    }
    if let Some(t) = st.token.filter(|&t| t < labels.len()) {
        ui.separator();
        token_path(ui, &layers, t, &labels[t]);
    }
}

fn legend(ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("gate probability").small());
        let (rect, _) = ui.allocate_exact_size(egui::vec2(200.0, 12.0), egui::Sense::hover());
        for i in 0..50 {
            let x0 = rect.left() + rect.width() * i as f32 / 50.0;
            let r = egui::Rect::from_min_max(
                egui::pos2(x0, rect.top()),
                egui::pos2(x0 + rect.width() / 50.0 + 0.5, rect.bottom()),
            );
            ui.painter().rect_filled(r, 0.0, color(i as f32 / 49.0));
        }
        ui.label(RichText::new("0 … 1 · outlined = chosen (top-k)").small());
    });
}

fn heatmap(ui: &mut egui::Ui, l: &LayerRouting, labels: &[String], selected: &mut Option<usize>) {
    let n_experts = l.load.len();
    let label_w = 130.0;
    let extra = if l.shared_gate.is_some() { 1 } else { 0 };
    let cell_w = ((ui.available_width() - label_w - 10.0) / (n_experts + extra) as f32).clamp(8.0, 48.0);
    let cell_h = 22.0;
    ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        ui.add_space(label_w);
        for e in 0..n_experts {
            let (rect, _) = ui.allocate_exact_size(egui::vec2(cell_w, cell_h), egui::Sense::hover());
            let color = if l.dormant.contains(&e) { Color32::from_rgb(220, 80, 80) } else { ui.visuals().text_color() };
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                e.to_string(),
                egui::FontId::proportional(13.0),
                color,
            );
        }
        if extra == 1 {
            ui.label(RichText::new("shared").small()).on_hover_text(
                "Qwen2-MoE's shared expert runs for every token; its output is scaled by sigmoid(gate·x), shown here",
            );
        }
    });
    egui::ScrollArea::vertical().max_height(420.0).id_salt("heatmap-scroll").show(ui, |ui| {
        for (t, probs) in l.probs.iter().enumerate() {
            ui.horizontal(|ui| {
                ui.spacing_mut().item_spacing.x = 0.0;
                let text = format!("{t:>3} {}", labels.get(t).map(String::as_str).unwrap_or(""));
                let r = ui.add_sized(
                    [label_w, cell_h],
                    egui::Button::new(RichText::new(text).monospace()).selected(*selected == Some(t)),
                );
                if r.clicked() {
                    *selected = Some(t);
                }
                for (e, &p) in probs.iter().enumerate() {
                    let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell_w, cell_h), egui::Sense::hover());
                    ui.painter().rect_filled(rect.shrink(0.5), 1.0, color(p));
                    let rank = l.topk[t].iter().position(|&c| c == e);
                    if rank.is_some() {
                        ui.painter().rect_stroke(
                            rect.shrink(1.5),
                            1.0,
                            Stroke::new(2.0, Color32::WHITE),
                            egui::StrokeKind::Inside,
                        );
                    }
                    let info = format!("layer {} token {t} expert {e}", l.layer);
                    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Cell, true, &info));
                    resp.on_hover_text(format!(
                        "token {t} {:?}\nlayer {}, expert {e}\ngate probability {p:.4}\n{}",
                        labels.get(t).map(String::as_str).unwrap_or(""),
                        l.layer,
                        match rank {
                            Some(k) => format!(
                                "chosen, rank {} of {}, mixing weight {:.4}",
                                k + 1,
                                l.topk[t].len(),
                                l.weights[t][k]
                            ),
                            None => "not chosen".into(),
                        }
                    ));
                }
                if let Some(g) = &l.shared_gate {
                    let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell_w, cell_h), egui::Sense::hover());
                    ui.painter().rect_filled(rect.shrink(0.5), 1.0, color(g[t]));
                    resp.on_hover_text(format!("shared expert gate sigmoid = {:.4}", g[t]));
                }
            });
        }
    });
}

fn load_chart(ui: &mut egui::Ui, l: &LayerRouting) {
    let total: u64 = l.load.iter().sum();
    ui.horizontal(|ui| {
        ui.label(RichText::new(format!("expert load, layer {}", l.layer)).strong());
        ui.label(format!("coefficient of variation {:.2}", l.load_cv))
            .on_hover_text("std / mean of the tokens per expert: 0 = perfectly even");
        ui.label(format!("load-balancing loss {:.3}", l.aux_loss))
            .on_hover_text("Switch Transformer auxiliary loss E · Σ f_e · P_e (as transformers computes it): equal to top-k when the load is perfectly balanced, larger when a few experts take most tokens. Training adds it to keep every expert busy.");
        if !l.dormant.is_empty() {
            ui.label(RichText::new(format!("dormant: {:?}", l.dormant)).color(Color32::from_rgb(220, 80, 80)))
                .on_hover_text("Experts that received no token of this text");
        }
    });
    let bars: Vec<Bar> = l
        .load
        .iter()
        .enumerate()
        .map(|(e, &c)| {
            let share = if total > 0 { 100.0 * c as f64 / total as f64 } else { 0.0 };
            Bar::new(e as f64, c as f64)
                .width(0.8)
                .name(format!("expert {e}: {c} tokens ({share:.1}%)"))
                .fill(if c == 0 { Color32::from_rgb(220, 80, 80) } else { Color32::from_rgb(70, 130, 200) })
        })
        .collect();
    Plot::new(("load-plot", l.layer))
        .height(160.0)
        .allow_scroll(false)
        .x_axis_label("expert")
        .y_axis_label("tokens")
        .show(ui, |p| p.bar_chart(BarChart::new("load", bars).element_formatter(Box::new(|b, _| b.name.clone()))));
}

fn small_multiples(ui: &mut egui::Ui, layers: &[LayerRouting]) {
    ui.horizontal_wrapped(|ui| {
        for l in layers {
            ui.vertical(|ui| {
                ui.label(RichText::new(format!("layer {}", l.layer)).small());
                let n_e = l.load.len().max(1);
                let cell = (120.0 / n_e as f32).clamp(2.0, 12.0);
                let h = (l.probs.len() as f32 * cell.min(6.0)).max(6.0);
                let (rect, _) = ui.allocate_exact_size(egui::vec2(n_e as f32 * cell, h), egui::Sense::hover());
                let ch = h / l.probs.len().max(1) as f32;
                for (t, probs) in l.probs.iter().enumerate() {
                    for (e, &p) in probs.iter().enumerate() {
                        let r = egui::Rect::from_min_size(
                            egui::pos2(rect.left() + e as f32 * cell, rect.top() + t as f32 * ch),
                            egui::vec2(cell, ch),
                        );
                        ui.painter().rect_filled(r, 0.0, color(p));
                    }
                }
            });
        }
    });
}

fn token_path(ui: &mut egui::Ui, layers: &[LayerRouting], t: usize, label: &str) {
    ui.label(RichText::new(format!("path of token {t} {label:?} through the layers")).strong()).on_hover_text(
        "One row per MoE layer: the experts this token was sent to, with the weights that mixed their outputs",
    );
    egui::Grid::new("token-path").striped(true).show(ui, |ui| {
        for l in layers {
            ui.label(format!("layer {}", l.layer));
            let parts: Vec<String> =
                l.topk[t].iter().zip(&l.weights[t]).map(|(e, w)| format!("expert {e} × {w:.3}")).collect();
            ui.monospace(parts.join("  +  "));
            if let Some(g) = &l.shared_gate {
                ui.monospace(format!("+ shared × {:.3}", g[t]));
            }
            ui.end_row();
        }
    });
}
