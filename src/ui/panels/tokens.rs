//! Step-by-step token probabilities: prompt → tokens → the next-token distribution, reshaped
//! live by temperature / top-k / top-p / min-p (on cached logits: the model is not re-run),
//! a seeded draw, click-a-candidate to force it, step back, and the generation table.

use egui::{Color32, RichText};

use crate::engine::{Snapshot, TextCodec};
use crate::sampling::{self, Distribution, Removed, SamplingParams};
use crate::ui::engine_status::{self, error_text};
use crate::ui::i18n::{tr, trf};
use crate::ui::{export, format, help, prompt_bar};
use crate::workspace::{Action, Workspace};

/// The token panel's own view state; the sequence, sliders and adapter live in the workspace.
pub struct TokensPanel {
    pub top_n: usize,
    pub generate_n: usize,
    /// The strength slider's position while it is dragged (sent to the engine on release).
    dragged_strength: Option<f64>,
}

impl Default for TokensPanel {
    fn default() -> Self {
        Self { top_n: 12, generate_n: 8, dragged_strength: None }
    }
}

impl super::Panel for TokensPanel {
    fn id(&self) -> &'static str {
        "tokens"
    }

    fn title(&self) -> &'static str {
        tr("Token probabilities")
    }

    fn tooltip(&self) -> &'static str {
        tr("Run a prompt and step through generation one token at a time")
    }

    fn reset(&mut self) {
        self.dragged_strength = None;
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        show(ui, self, ws, actions);
    }
}

/// Why a candidate is greyed out, in the UI's language.
fn removed_label(r: Removed) -> &'static str {
    match r {
        Removed::TopK => tr("removed by top-k"),
        Removed::TopP => tr("removed by top-p"),
        Removed::MinP => tr("removed by min-p"),
        Removed::Greedy => tr("greedy keeps only the top token"),
    }
}

fn show(ui: &mut egui::Ui, st: &mut TokensPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    if ws.model.is_none() || !ws.engine.can_run() {
        match &ws.engine.error {
            Some(e) => ui.label(RichText::new(error_text(e)).color(ui.visuals().error_fg_color)),
            None => ui.label(tr("Open a model folder to see its next-token probabilities.")),
        };
        help::note(ui, "tokens");
        return;
    }
    let arch = ws.engine.loaded.as_ref().map(|l| l.architecture.clone()).unwrap_or_else(|| {
        ws.model.as_ref().and_then(|m| m.folder.config.as_ref()).map(|c| c.architecture.clone()).unwrap_or_default()
    });
    ui.heading(trf("Next-token probabilities · {}", &[&arch]));
    help::note(ui, "tokens");
    // Keyboard: Space = step, Backspace = step back (when no text field has focus).
    let typing = ui.ctx().egui_wants_keyboard_input();
    if !typing && ws.engine.snapshot.is_some() {
        if ui.input(|i| i.key_pressed(egui::Key::Space)) {
            actions.push(Action::Generate(1));
        }
        if ui.input(|i| i.key_pressed(egui::Key::Backspace)) {
            actions.push(Action::StepBack);
        }
    }
    ui.horizontal_wrapped(|ui| {
        prompt_bar::show(ui, ws, actions, 420.0);
        engine_status::show(ui, ws, actions);
    });
    if let Some(e) = &ws.engine.error {
        ui.label(RichText::new(error_text(e)).color(ui.visuals().error_fg_color));
    }
    let (Some(snap), Some(codec)) = (ws.engine.snapshot.clone(), ws.engine.loaded.as_ref().map(|l| &l.codec)) else {
        ui.label(tr("Type a prompt and press Run prompt."));
        return;
    };
    adapter_controls(ui, st, ws, actions);
    token_chips(ui, &snap);
    step_buttons(ui, st, &snap, actions);
    ui.separator();
    sliders(ui, st, ws, actions);
    ui.separator();
    let Some(derived) = ws.engine.derived() else { return };
    let d = &derived.distribution;
    if let Some(warning) = crate::sampling::non_finite_warning(&snap.logits) {
        let text = trf("warning: {}", &[&warning]);
        ui.label(RichText::new(text).color(ui.visuals().error_fg_color).strong());
    }
    let step = (snap.tokens.len() - snap.prompt_len) as u64;
    let u = sampling::uniform(ws.settings.sampling.seed, step);
    let drawn = sampling::draw(d, u);
    if let Some(id) = candidates(ui, st, &ws.settings.sampling, codec, d, drawn, u) {
        actions.push(Action::Force(id));
    }
    if let Some((base, moved)) = &derived.comparison {
        ui.separator();
        compare(ui, codec, base, d, moved);
    }
    ui.separator();
    generation_table(ui, &snap, &derived.chosen_probs);
}

fn step_buttons(ui: &mut egui::Ui, st: &mut TokensPanel, snap: &Snapshot, actions: &mut Vec<Action>) {
    ui.horizontal(|ui| {
        if ui.button(tr("Step ▶")).on_hover_text(tr("Draw one token with the settings below (Space)")).clicked() {
            actions.push(Action::Generate(1));
        }
        if ui.button(tr("Generate")).on_hover_text(tr("Draw this many tokens, one step after another")).clicked() {
            actions.push(Action::Generate(st.generate_n));
        }
        let label = ui.label(tr("tokens:"));
        ui.add(egui::DragValue::new(&mut st.generate_n).range(1..=256)).labelled_by(label.id);
        if ui.button(tr("Stop")).on_hover_text(tr("Stop generating after the current step")).clicked() {
            actions.push(Action::StopGenerating);
        }
        if ui
            .add_enabled(snap.tokens.len() > snap.prompt_len, egui::Button::new(tr("◀ Step back")))
            .on_hover_text(tr("Forget the last token (Backspace)"))
            .clicked()
        {
            actions.push(Action::StepBack);
        }
        if ui.button(tr("Reset")).on_hover_text(tr("Back to the prompt alone")).clicked() {
            actions.push(Action::RunPrompt);
        }
        ui.label(RichText::new(trf("forward passes: {}", &[&snap.forwards])).weak())
            .on_hover_text(tr("How many times the model has run: once for the prompt, then once per new token"));
    });
}

/// Adapter on/off and strength: ΔW is multiplied by the strength (0 = the base model).
fn adapter_controls(ui: &mut egui::Ui, st: &mut TokensPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    let Some(active) = &ws.active else { return };
    let strength = active.strength;
    ui.horizontal(|ui| {
        let mut s = st.dragged_strength.unwrap_or(strength) as f32;
        let label = ui.label(RichText::new(tr("LoRA strength")).strong()).on_hover_text(tr(
            "The engine adds strength × ΔW to every adapted weight: 0 = base model, 1 = as trained, 2 = exaggerated",
        ));
        let slider = ui.add(egui::Slider::new(&mut s, 0.0..=2.0).step_by(0.05)).labelled_by(label.id);
        let off = ui.button(if strength == 0.0 { tr("adapter off") } else { tr("switch off") }).clicked();
        let on = ui.button("1.0").on_hover_text(tr("As trained")).clicked();
        let new = if off {
            Some(0.0)
        } else if on {
            Some(1.0)
        } else if slider.drag_stopped() || (slider.changed() && !slider.dragged()) {
            Some(s as f64)
        } else {
            None
        };
        if let Some(v) = new {
            st.dragged_strength = None;
            actions.push(Action::SetAdapterStrength(v));
        } else if slider.dragged() {
            // Show the slider's position while dragging; the engine re-runs on release.
            st.dragged_strength = Some(s as f64);
        }
    });
}

/// Base vs adapted next-token distributions under the same sliders, and who moved most.
fn compare(ui: &mut egui::Ui, codec: &TextCodec, base: &Distribution, adapted: &Distribution, moved: &[(u32, f32)]) {
    ui.label(RichText::new(tr("with the adapter vs without")).strong())
        .on_hover_text(tr("The same prompt and step, run once with ΔW added and once without"));
    egui::Grid::new("compare").striped(true).num_columns(4).show(ui, |ui| {
        for h in [tr("token"), tr("base"), tr("adapted"), tr("change")] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for &(id, delta) in moved {
            let p = codec.piece(id);
            ui.monospace(if p.special { p.token.clone() } else { visible(&p.text) });
            ui.monospace(format!("{:.4}", base.probs[id as usize]));
            ui.monospace(format!("{:.4}", adapted.probs[id as usize]));
            let color = if delta > 0.0 { Color32::from_rgb(80, 180, 90) } else { Color32::from_rgb(220, 90, 80) };
            ui.label(RichText::new(format!("{delta:+.4}")).monospace().color(color));
            ui.end_row();
        }
    });
}

fn token_chips(ui: &mut egui::Ui, snap: &Snapshot) {
    ui.label(
        RichText::new(trf(
            "{} tokens ({} prompt + {} generated)",
            &[&snap.tokens.len(), &snap.prompt_len, &(snap.tokens.len() - snap.prompt_len)],
        ))
        .weak(),
    );
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = egui::vec2(3.0, 3.0);
        for (i, p) in snap.pieces.iter().enumerate() {
            let generated = i >= snap.prompt_len;
            let fill = if p.special {
                Color32::from_rgb(110, 70, 140)
            } else if generated {
                Color32::from_rgb(40, 110, 70)
            } else {
                Color32::from_rgb(50, 70, 110)
            };
            let text = if p.special { p.token.clone() } else { visible(&p.text) };
            let chip = egui::Frame::new().fill(fill).corner_radius(4.0).inner_margin(egui::Margin::symmetric(4, 2));
            let mut tip = trf(
                "id {}\nvocabulary entry {}\nbytes {}",
                &[
                    &p.id,
                    &format!("{:?}", p.token),
                    &p.text.bytes().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "),
                ],
            );
            if p.special {
                tip.push('\n');
                tip.push_str(tr("special token"));
            }
            chip.show(ui, |ui| {
                ui.vertical(|ui| {
                    ui.label(RichText::new(text).color(Color32::WHITE).monospace());
                    ui.label(RichText::new(p.id.to_string()).small().color(Color32::from_gray(200)));
                });
            })
            .response
            .on_hover_text(tip);
        }
    });
}

/// Makes spaces and newlines visible in a chip.
fn visible(s: &str) -> String {
    s.replace(' ', "␣").replace('\n', "⏎")
}

fn sliders(ui: &mut egui::Ui, st: &mut TokensPanel, ws: &Workspace, actions: &mut Vec<Action>) {
    /// A labelled row: the label is the control's accessible name, and it teaches on hover.
    fn row(ui: &mut egui::Ui, name: &str, tip: &str, add: impl FnOnce(&mut egui::Ui) -> egui::Response) {
        let label = ui.label(name).on_hover_text(tip);
        add(ui).labelled_by(label.id);
        ui.end_row();
    }
    let mut params = ws.settings.sampling;
    let p = &mut params;
    egui::Grid::new("sampling-sliders").num_columns(2).show(ui, |ui| {
        row(
            ui,
            tr("temperature"),
            tr("Divides the logits: < 1 sharpens the distribution, > 1 flattens it, 0 = always the top token (greedy)"),
            |ui| ui.add(egui::Slider::new(&mut p.temperature, 0.0..=3.0).step_by(0.05)),
        );
        row(ui, "top-k", tr("Keep only the k most likely tokens (0 = off)"), |ui| {
            ui.add(egui::Slider::new(&mut p.top_k, 0..=200))
        });
        row(ui, "top-p", tr("Keep the smallest set of top tokens whose probabilities add up to p (1 = off)"), |ui| {
            ui.add(egui::Slider::new(&mut p.top_p, 0.0..=1.0).step_by(0.01))
        });
        row(ui, "min-p", tr("Drop tokens less likely than min-p × the top token's probability (0 = off)"), |ui| {
            ui.add(egui::Slider::new(&mut p.min_p, 0.0..=1.0).step_by(0.01))
        });
        row(ui, tr("repetition penalty"), tr("Makes tokens already in the text less likely (1 = off)"), |ui| {
            ui.add(egui::Slider::new(&mut p.repetition_penalty, 1.0..=2.0).step_by(0.05))
        });
        row(ui, tr("seed"), tr("The random draws replay exactly for the same seed"), |ui| {
            ui.add(egui::DragValue::new(&mut p.seed))
        });
        row(ui, tr("candidates shown"), tr("How many of the most likely tokens to list"), |ui| {
            ui.add(egui::Slider::new(&mut st.top_n, 3..=50))
        });
    });
    if params != ws.settings.sampling {
        let settings = crate::workspace::Settings { sampling: params, ..ws.settings.clone() };
        actions.push(Action::Settings(Box::new(settings)));
    }
}

/// A quoted CSV field.
fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The candidates on screen as CSV: rank, id, text, raw and warped probability, running
/// total, and the warper that removed it (empty if kept).
fn candidates_csv(codec: &TextCodec, d: &Distribution, n: usize) -> String {
    let mut csv = String::from("rank,token_id,token,probability_raw,probability,cumulative,removed_by\n");
    let mut cumulative = 0f32;
    for (rank, &id) in d.order.iter().take(n).enumerate() {
        let i = id as usize;
        cumulative += d.probs[i];
        let piece = codec.piece(id);
        let text = if piece.special { piece.token.clone() } else { piece.text.clone() };
        let removed = match d.removed[i] {
            Some(Removed::TopK) => "top-k",
            Some(Removed::TopP) => "top-p",
            Some(Removed::MinP) => "min-p",
            Some(Removed::Greedy) => "greedy",
            None => "",
        };
        csv.push_str(&format!(
            "{},{id},{},{},{},{cumulative},{removed}\n",
            rank + 1,
            quote(&text),
            d.raw_probs[i],
            d.probs[i]
        ));
    }
    csv
}

/// The candidate bars; returns a token the user clicked to force.
fn candidates(
    ui: &mut egui::Ui,
    st: &TokensPanel,
    params: &SamplingParams,
    codec: &TextCodec,
    d: &Distribution,
    drawn: u32,
    u: f64,
) -> Option<u32> {
    let mut forced = None;
    ui.horizontal(|ui| {
        ui.label(RichText::new(tr("next token")).strong());
        let drawn_piece = codec.piece(drawn);
        ui.label(trf(
            "entropy {} bits · {} tokens kept · draw u = {} → {} ({})",
            &[&format!("{:.2}", d.entropy_bits), &d.kept, &format!("{u:.3}"), &visible(&drawn_piece.text), &drawn],
        ))
        .on_hover_text(tr(
            "Entropy: how uncertain the model is (0 = certain). The draw picks the token where the cumulative \
             probability passes u.",
        ));
    });
    let bar_width = 320.0;
    let mut cumulative = 0f32;
    let mut threshold_marked = false;
    let grid = egui::Grid::new("candidates").striped(true).num_columns(6).show(ui, |ui| {
        ui.label(RichText::new(tr("token")).weak());
        ui.label(RichText::new(tr("id")).weak());
        ui.label(RichText::new(tr("probability")).weak())
            .on_hover_text(tr("After the penalty and the warpers: what the draw uses (grey bar: the raw probability)"));
        ui.label(RichText::new(tr("raw")).weak())
            .on_hover_text(tr("softmax of the logits with no temperature or filtering"));
        ui.label(RichText::new(tr("cumulative")).weak());
        ui.label("");
        ui.end_row();
        for &id in d.order.iter().take(st.top_n) {
            let i = id as usize;
            let p = d.probs[i];
            cumulative += p;
            let removed = d.removed[i];
            let piece = codec.piece(id);
            let label = if piece.special { piece.token.clone() } else { visible(&piece.text) };
            let mut rt = RichText::new(label).monospace();
            if removed.is_some() {
                rt = rt.color(ui.visuals().weak_text_color()).strikethrough();
            }
            let b = ui.add(egui::Button::new(rt)).on_hover_text(match removed {
                Some(r) => trf("{} — click to force it anyway", &[&removed_label(r)]),
                None => tr("click to make this the next token").into(),
            });
            let b_label = trf("candidate {}", &[&id]);
            b.widget_info(|| egui::WidgetInfo::labeled(egui::Role::Button, true, &b_label));
            if b.clicked() {
                forced = Some(id);
            }
            ui.monospace(id.to_string());
            ui.horizontal(|ui| {
                let (rect, _) = ui.allocate_exact_size(egui::vec2(bar_width, 16.0), egui::Sense::hover());
                ui.painter().rect_filled(rect, 2.0, ui.visuals().extreme_bg_color);
                let raw_w = rect.width() * d.raw_probs[i].clamp(0.0, 1.0);
                ui.painter().rect_filled(
                    egui::Rect::from_min_size(rect.min, egui::vec2(raw_w, rect.height())),
                    2.0,
                    Color32::from_gray(90),
                );
                let w = rect.width() * p.clamp(0.0, 1.0);
                let color = if id == drawn { Color32::from_rgb(230, 160, 40) } else { Color32::from_rgb(70, 130, 200) };
                ui.painter().rect_filled(
                    egui::Rect::from_min_size(rect.min, egui::vec2(w, rect.height() * 0.7)),
                    2.0,
                    color,
                );
                ui.monospace(format!("{:.4}", p));
            });
            ui.monospace(format!("{:.4}", d.raw_probs[i]));
            let mut cum = RichText::new(format!("{cumulative:.3}")).monospace();
            if params.top_p < 1.0 && !threshold_marked && cumulative >= params.top_p && removed.is_none() {
                cum = cum.color(Color32::from_rgb(230, 160, 40));
                threshold_marked = true;
            }
            ui.label(cum).on_hover_text(trf(
                "top-p = {}: the kept set ends where the cumulative probability reaches it",
                &[&format!("{:.2}", params.top_p)],
            ));
            ui.label(match (id == drawn, removed) {
                (true, _) => RichText::new(tr("◀ the draw")).color(Color32::from_rgb(230, 160, 40)),
                (false, Some(r)) => RichText::new(removed_label(r)).weak(),
                _ => RichText::new(""),
            });
            ui.end_row();
        }
    });
    let csv = || candidates_csv(codec, d, st.top_n);
    export::menu(ui, "next-token", Some(grid.response.rect), Some(&csv), None);
    forced
}

/// One line of the generation table.
struct Row<'a> {
    step: usize,
    /// The ids fed to the model before this step's token.
    ids: &'a [u32],
    so_far: String,
    next: &'a crate::engine::Piece,
    prob: f32,
}

fn rows<'a>(snap: &'a Snapshot, probs: &'a [f32]) -> impl Iterator<Item = Row<'a>> + 'a {
    probs.iter().enumerate().map(move |(step, &prob)| {
        let upto = snap.prompt_len + step;
        Row {
            step,
            ids: &snap.tokens[..upto],
            so_far: snap.pieces[snap.prompt_len..upto].iter().map(|p| p.text.as_str()).collect(),
            next: &snap.pieces[upto],
            prob,
        }
    })
}

fn csv_of(snap: &Snapshot, probs: &[f32]) -> String {
    let mut csv = String::from("step,input_ids,text_so_far,next_token,next_id,probability\n");
    for r in rows(snap, probs) {
        let ids: Vec<String> = r.ids.iter().map(|i| i.to_string()).collect();
        csv.push_str(&format!(
            "{},{},{},{},{},{}\n",
            r.step,
            quote(&ids.join(" ")),
            quote(&r.so_far),
            quote(&r.next.text),
            r.next.id,
            r.prob
        ));
    }
    csv
}

/// The generation table as CSV, with the probabilities under `params`.
pub fn generation_csv(snap: &Snapshot, params: &SamplingParams) -> String {
    csv_of(snap, &crate::workspace::engine_client::chosen_probs(snap, params))
}

fn generation_table(ui: &mut egui::Ui, snap: &Snapshot, probs: &[f32]) {
    if snap.history.is_empty() {
        return;
    }
    ui.horizontal(|ui| {
        ui.label(RichText::new(tr("generation")).strong()).on_hover_text(tr(
            "One row per generated token: the ids the model read, the text so far, and the token it chose with its \
             probability under the current sliders",
        ));
        let csv = || csv_of(snap, probs);
        export::menu(ui, "generation", None, Some(&csv), None);
    });
    egui::Grid::new("generation-table").striped(true).num_columns(4).show(ui, |ui| {
        for h in [tr("step"), tr("input ids"), tr("text so far"), tr("next token (p)")] {
            ui.label(RichText::new(h).weak());
        }
        ui.end_row();
        for r in rows(snap, probs) {
            ui.monospace(r.step.to_string());
            let shown: Vec<String> = r.ids.iter().rev().take(8).rev().map(|i| i.to_string()).collect();
            ui.monospace(format!("{}[{}]", if r.ids.len() > 8 { "… " } else { "" }, shown.join(", ")));
            ui.label(visible(&r.so_far));
            ui.monospace(format!("{} {} ({})", visible(&r.next.text), r.next.id, format::num(r.prob as f64)));
            ui.end_row();
        }
    });
}
