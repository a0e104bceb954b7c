//! MoE routing: for each layer, which experts every token goes to (heatmap of the gate's
//! probabilities, chosen experts outlined), a token's path through all layers, and each
//! expert's load with a balance figure. Reads the router logits the engine recorded for
//! the token panel's sequence; numbers come from [`crate::analysis::routing`].

use egui::{Color32, RichText, Stroke};
use egui_plot::{Bar, BarChart, Plot};

use crate::analysis::routing::{self, LayerRouting};
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, help, prompt_bar};
use crate::workspace::{Action, Workspace};

/// Which layer and token the user is looking at; the routing itself is derived by the
/// workspace from the engine's snapshot.
#[derive(Default)]
pub struct RoutingPanel {
    /// Index into the MoE layers (not the layer number).
    pub layer: usize,
    pub all_layers: bool,
    pub token: Option<usize>,
}

impl super::Panel for RoutingPanel {
    fn id(&self) -> &'static str {
        "routing"
    }

    fn title(&self) -> &'static str {
        tr("Routing")
    }

    fn tooltip(&self) -> &'static str {
        tr("Mixture-of-experts models: which experts each token is sent to, layer by layer")
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        show(ui, self, ws, actions);
    }
}

fn color(p: f32) -> Color32 {
    let [r, g, b] = routing::viridis(p);
    Color32::from_rgb(r, g, b)
}

fn note(ui: &mut egui::Ui) {
    help::note(ui, "routing");
}

fn show(ui: &mut egui::Ui, st: &mut RoutingPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    let Some(cfg) = ws.model.as_ref().and_then(|m| m.folder.config.as_ref()) else {
        ui.label(tr("Routing needs a supported MoE architecture."));
        note(ui);
        return;
    };
    let Some(moe) = cfg.moe.as_ref() else {
        ui.label(
            RichText::new(trf(
                "{} is a dense model: every token goes through the same MLP, so there is no routing to show. \
                 Open a mixture-of-experts model (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE) to see where each token goes.",
                &[&cfg.architecture],
            ))
            .size(17.0),
        );
        note(ui);
        return;
    };
    ui.heading(trf("Expert routing · {} experts, top-{}", &[&moe.num_experts, &moe.top_k])).on_hover_text(tr(
        "The gate (router) scores every expert for each token: G(x) = softmax(x·W_g). The top-k experts run, and \
         their outputs are mixed by the gate weights.",
    ));
    note(ui);
    let (Some(snap), Some(derived)) = (&ws.engine.snapshot, ws.engine.derived()) else {
        ui.label(tr("Run a prompt to see its routing:"));
        ui.horizontal_wrapped(|ui| {
            prompt_bar::show(ui, ws, actions, 360.0);
            crate::ui::engine_status::show(ui, ws, actions);
        });
        if let Some(e) = &ws.engine.error {
            let text = crate::ui::engine_status::error_text(e);
            ui.label(RichText::new(text).color(ui.visuals().error_fg_color));
        }
        return;
    };
    let layers = &derived.routing;
    if layers.is_empty() {
        return;
    }
    let labels: Vec<String> =
        snap.pieces.iter().map(|p| if p.special { p.token.clone() } else { p.text.replace('\n', "⏎") }).collect();
    // The CSV gets the text itself, not the on-screen form.
    let texts: Vec<String> =
        snap.pieces.iter().map(|p| if p.special { p.token.clone() } else { p.text.clone() }).collect();
    st.layer = st.layer.min(layers.len() - 1);
    ui.horizontal(|ui| {
        let label = ui.label(tr("layer"));
        egui::ComboBox::from_id_salt("routing-layer")
            .selected_text(format!("{}", layers[st.layer].layer))
            .show_ui(ui, |ui| {
                for (i, l) in layers.iter().enumerate() {
                    ui.selectable_value(&mut st.layer, i, trf("layer {}", &[&l.layer]));
                }
            })
            .response
            .labelled_by(label.id);
        ui.checkbox(&mut st.all_layers, tr("all layers"))
            .on_hover_text(tr("One small heatmap per MoE layer, side by side"));
        ui.label(RichText::new(tr("click a token to follow its path through the layers")).weak());
    });
    legend(ui);
    // `llm-anatomy routing --json`'s serialiser.
    let json =
        || serde_json::to_string_pretty(&crate::report::routing_json(&snap.pieces, moe, layers)).unwrap_or_default();
    if st.all_layers {
        let rect = small_multiples(ui, layers);
        let csv = || routing_csv(layers, &texts);
        export::menu(ui, "routing-all-layers", Some(rect), Some(&csv), Some(&json));
    } else {
        let l = &layers[st.layer];
        let rect = heatmap(ui, l, &labels, &mut st.token);
        let csv = || routing_csv(std::slice::from_ref(l), &texts);
        export::menu(ui, &format!("layer{}-routing", l.layer), Some(rect), Some(&csv), Some(&json));
        ui.add_space(6.0);
        load_chart(ui, l);
    }
    if let Some(t) = st.token.filter(|&t| t < labels.len()) {
        ui.separator();
        token_path(ui, layers, t, &labels[t]);
    }
}

/// A quoted CSV field.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The heatmap in long format: one row per (layer, position, expert) with the gate
/// probability, whether the expert was chosen and its mixing weight (empty if not chosen);
/// layers with a shared expert add its sigmoid gate per position.
fn routing_csv(layers: &[LayerRouting], texts: &[String]) -> String {
    let shared = layers.iter().any(|l| l.shared_gate.is_some());
    let mut csv = String::from("layer,position,token,expert,probability,selected,weight");
    csv.push_str(if shared { ",shared_gate\n" } else { "\n" });
    for l in layers {
        for (t, probs) in l.probs.iter().enumerate() {
            let token = quote(texts.get(t).map(String::as_str).unwrap_or(""));
            let gate = match &l.shared_gate {
                Some(g) if shared => format!(",{}", g[t]),
                _ if shared => ",".to_string(),
                _ => String::new(),
            };
            for (e, &p) in probs.iter().enumerate() {
                let rank = l.topk[t].iter().position(|&c| c == e);
                let weight = rank.map(|k| l.weights[t][k].to_string()).unwrap_or_default();
                csv.push_str(&format!("{},{t},{token},{e},{p},{},{weight}{gate}\n", l.layer, rank.is_some() as u8));
            }
        }
    }
    csv
}

fn legend(ui: &mut egui::Ui) {
    ui.horizontal(|ui| {
        ui.label(RichText::new(tr("gate probability")).small());
        let (rect, _) = ui.allocate_exact_size(egui::vec2(200.0, 12.0), egui::Sense::hover());
        for i in 0..50 {
            let x0 = rect.left() + rect.width() * i as f32 / 50.0;
            let r = egui::Rect::from_min_max(
                egui::pos2(x0, rect.top()),
                egui::pos2(x0 + rect.width() / 50.0 + 0.5, rect.bottom()),
            );
            ui.painter().rect_filled(r, 0.0, color(i as f32 / 49.0));
        }
        ui.label(RichText::new(tr("0 … 1 · outlined = chosen (top-k)")).small());
    });
}

/// Draws one layer's heatmap; returns its on-screen rect (header and visible rows).
fn heatmap(ui: &mut egui::Ui, l: &LayerRouting, labels: &[String], selected: &mut Option<usize>) -> egui::Rect {
    let n_experts = l.load.len();
    let label_w = 130.0;
    let extra = if l.shared_gate.is_some() { 1 } else { 0 };
    let cell_w = ((ui.available_width() - label_w - 10.0) / (n_experts + extra) as f32).clamp(8.0, 48.0);
    let cell_h = 22.0;
    let header = ui.horizontal(|ui| {
        ui.spacing_mut().item_spacing.x = 0.0;
        ui.add_space(label_w);
        for e in 0..n_experts {
            let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell_w, cell_h), egui::Sense::hover());
            let dormant = l.dormant.contains(&e);
            let color = if dormant { Color32::from_rgb(220, 80, 80) } else { ui.visuals().text_color() };
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                e.to_string(),
                egui::FontId::proportional(13.0),
                color,
            );
            if dormant {
                resp.on_hover_text(trf("expert {}: no token of this text was sent here (dormant)", &[&e]));
            } else {
                resp.on_hover_text(trf("expert {}", &[&e]));
            }
        }
        if extra == 1 {
            ui.label(RichText::new(tr("shared")).small()).on_hover_text(tr(
                "Qwen2-MoE's shared expert runs for every token; its output is scaled by sigmoid(gate·x), shown here",
            ));
        }
    });
    let scroll = egui::ScrollArea::vertical().max_height(420.0).id_salt("heatmap-scroll").show(ui, |ui| {
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
                    let info = trf("layer {} token {} expert {}", &[&l.layer, &t, &e]);
                    resp.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Cell, true, &info));
                    let choice = match rank {
                        Some(k) => trf(
                            "chosen, rank {} of {}, mixing weight {}",
                            &[&(k + 1), &l.topk[t].len(), &format!("{:.4}", l.weights[t][k])],
                        ),
                        None => tr("not chosen").to_string(),
                    };
                    resp.on_hover_text(trf(
                        "token {} {}\nlayer {}, expert {}\ngate probability {}\n{}",
                        &[
                            &t,
                            &format!("{:?}", labels.get(t).map(String::as_str).unwrap_or("")),
                            &l.layer,
                            &e,
                            &format!("{p:.4}"),
                            &choice,
                        ],
                    ));
                }
                if let Some(g) = &l.shared_gate {
                    let (rect, resp) = ui.allocate_exact_size(egui::vec2(cell_w, cell_h), egui::Sense::hover());
                    ui.painter().rect_filled(rect.shrink(0.5), 1.0, color(g[t]));
                    resp.on_hover_text(trf("shared expert gate sigmoid = {}", &[&format!("{:.4}", g[t])]));
                }
            });
        }
    });
    header.response.rect.union(scroll.inner_rect)
}

fn load_chart(ui: &mut egui::Ui, l: &LayerRouting) {
    let total: u64 = l.load.iter().sum();
    let share = |c: u64| if total > 0 { c as f64 / total as f64 } else { 0.0 };
    ui.horizontal(|ui| {
        ui.label(RichText::new(trf("expert load, layer {}", &[&l.layer])).strong()).on_hover_text(tr(
            "How many tokens of this text each expert received (each token counts once for each of its top-k experts)",
        ));
        ui.label(trf("coefficient of variation {}", &[&format!("{:.2}", l.load_cv)]))
            .on_hover_text(tr("std / mean of the tokens per expert: 0 = perfectly even"));
        ui.label(trf("load-balancing loss {}", &[&format!("{:.3}", l.aux_loss)])).on_hover_text(tr(
            "Switch Transformer auxiliary loss E · Σ f_e · P_e (as transformers computes it): equal to top-k when the \
             load is perfectly balanced, larger when a few experts take most tokens. Training adds it to keep every \
             expert busy.",
        ));
        if !l.dormant.is_empty() {
            ui.label(
                RichText::new(trf("dormant: {}", &[&format!("{:?}", l.dormant)])).color(Color32::from_rgb(220, 80, 80)),
            )
            .on_hover_text(tr("Experts that received no token of this text"));
        }
    });
    let bars: Vec<Bar> = l
        .load
        .iter()
        .enumerate()
        .map(|(e, &c)| {
            Bar::new(e as f64, c as f64)
                .width(0.8)
                .name(trf("expert {}: {} tokens ({}%)", &[&e, &c, &format!("{:.1}", 100.0 * share(c))]))
                .fill(if c == 0 { Color32::from_rgb(220, 80, 80) } else { Color32::from_rgb(70, 130, 200) })
        })
        .collect();
    let (_, resp_rect) = export::framed(ui, |ui| {
        Plot::new(("load-plot", l.layer))
            .height(160.0)
            .allow_scroll(false)
            .x_axis_label(tr("expert"))
            .y_axis_label(tr("tokens"))
            .show(ui, |p| {
                p.bar_chart(BarChart::new(tr("expert load"), bars).element_formatter(Box::new(|b, _| b.name.clone())))
            })
    });
    let csv = || {
        let mut csv = String::from("expert,tokens,share\n");
        for (e, &c) in l.load.iter().enumerate() {
            csv.push_str(&format!("{e},{c},{}\n", share(c)));
        }
        csv
    };
    export::menu(ui, &format!("layer{}-expert-load", l.layer), Some(resp_rect), Some(&csv), None);
}

/// One small heatmap per layer; returns the rect they cover.
fn small_multiples(ui: &mut egui::Ui, layers: &[LayerRouting]) -> egui::Rect {
    ui.horizontal_wrapped(|ui| {
        for l in layers {
            ui.vertical(|ui| {
                ui.label(RichText::new(trf("layer {}", &[&l.layer])).small());
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
    })
    .response
    .rect
}

fn token_path(ui: &mut egui::Ui, layers: &[LayerRouting], t: usize, label: &str) {
    ui.label(RichText::new(trf("path of token {} {} through the layers", &[&t, &format!("{label:?}")])).strong())
        .on_hover_text(tr(
            "One row per MoE layer: the experts this token was sent to, with the weights that mixed their outputs",
        ));
    egui::Grid::new("token-path").striped(true).show(ui, |ui| {
        for l in layers {
            ui.label(trf("layer {}", &[&l.layer]));
            let parts: Vec<String> = l.topk[t]
                .iter()
                .zip(&l.weights[t])
                .map(|(e, w)| trf("expert {} × {}", &[e, &format!("{w:.3}")]))
                .collect();
            ui.monospace(parts.join("  +  "));
            if let Some(g) = &l.shared_gate {
                ui.monospace(trf("+ shared × {}", &[&format!("{:.3}", g[t])]));
            }
            ui.end_row();
        }
    });
}
