//! The module tree, line for line as `print(model)` shows it, with parameter counts, and
//! each module's tensors underneath. A filter unfolds repeats and shows only what matches;
//! the flat view lists `state_dict()` keys as stored.

use std::collections::{HashMap, HashSet};

use egui::collapsing_header::CollapsingState;
use egui::{Id, RichText};

use crate::arch::{ModuleTree, Node, ROOT};
use crate::ui::format;
use crate::ui::help::{self, teaching_note};
use crate::ui::i18n::{tr, trf};
use crate::workspace::{Action, Selection, TreeView, Workspace};

#[derive(Default)]
pub struct TreePanel {
    pub filter: String,
    /// The last reveal request of the workspace that this panel acted on.
    revealed: Option<u64>,
    /// Which instance a folded group (`(0-29): 30 x …`) shows, by (list node, group start).
    pub instance: HashMap<(usize, usize), usize>,
    visible: Option<(String, HashSet<usize>)>,
    /// Lines clicked last frame: opened on this one, so a click selects and expands.
    to_open: HashSet<Id>,
    /// With a diff against a second model, tensor rows are coloured by their relative
    /// change unless this is set.
    pub hide_change: bool,
}

/// Loads a line's open/closed state, opening it if it was clicked last frame.
fn load_state(ui: &egui::Ui, state: &mut TreePanel, salt: Id, default_open: bool) -> CollapsingState {
    let mut s = CollapsingState::load_with_default_open(ui.ctx(), salt, default_open);
    if state.to_open.remove(&salt) {
        s.set_open(true);
    }
    s
}

/// Draws the panel; returns a new selection when the user clicks something.
impl super::Panel for TreePanel {
    fn id(&self) -> &'static str {
        "tree"
    }

    fn title(&self) -> &'static str {
        tr("Modules")
    }

    fn tooltip(&self) -> &'static str {
        tr("The module tree as print(model) shows it")
    }

    /// A new tree: nothing open or filtered (the flat/tree choice is a setting and stays).
    fn reset(&mut self) {
        *self = Self { revealed: self.revealed, ..Self::default() };
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
        let Some(model) = &ws.model else { return };
        // Filtering by a revealed name is what shows it, folded repeats unfolded.
        if let Some((n, name)) = &ws.reveal
            && self.revealed != Some(*n)
        {
            self.revealed = Some(*n);
            self.filter = name.clone();
        }
        let mut flat = ws.settings.flat_tree;
        let diff = match ws.current_diff() {
            Some(Ok(d)) => Some(d.tensors.iter().map(|t| (t.tensor.clone(), t.rel)).collect::<HashMap<_, _>>()),
            _ => None,
        };
        if let Some(selection) = show(ui, model, self, &ws.selection, &mut flat, diff.as_ref()) {
            actions.push(Action::Select(selection));
        }
        if flat != ws.settings.flat_tree {
            let settings = crate::workspace::Settings { flat_tree: flat, ..ws.settings.clone() };
            actions.push(Action::Settings(Box::new(settings)));
        }
    }
}

fn show(
    ui: &mut egui::Ui,
    model: &TreeView,
    state: &mut TreePanel,
    selection: &Selection,
    flat: &mut bool,
    diff: Option<&HashMap<String, f64>>,
) -> Option<Selection> {
    let mut picked = None;
    help::note(ui, "tree");
    if diff.is_some() {
        ui.horizontal(|ui| {
            let mut colour = !state.hide_change;
            ui.checkbox(&mut colour, tr("colour by change")).on_hover_text(tr(
                "Colour each tensor by ‖B − A‖ / ‖A‖ against the second model (Compare tab): grey unchanged, blue 1e-6, red ≥ 1",
            ));
            state.hide_change = !colour;
            if colour {
                for (label, rel) in [("0", 0.0), ("1e-6", 1e-6), ("1e-3", 1e-3), ("≥ 1", 1.0)] {
                    ui.colored_label(change_colour(rel), format!("■ {label}"));
                }
            }
        });
    }
    let change = diff.filter(|_| !state.hide_change);
    ui.horizontal(|ui| {
        let label = ui.label(tr("Filter"));
        ui.add(
            egui::TextEdit::singleline(&mut state.filter)
                .hint_text(tr("filter, e.g. layers.1.mlp"))
                .desired_width(220.0)
                .id(Id::unique("tree-filter")),
        )
        .labelled_by(label.id)
        .on_hover_text(tr("Shows only modules and tensors whose dotted name contains this text"));
        if !state.filter.is_empty() && ui.small_button("✖").on_hover_text(tr("Clear the filter")).clicked() {
            state.filter.clear();
        }
        ui.checkbox(flat, "state_dict").on_hover_text(tr(
            "The flat list of stored tensor names (state_dict() keys), as the safetensors files hold them",
        ));
    });
    for notice in &model.folder.notices {
        ui.label(RichText::new(notice).small().color(ui.visuals().warn_fg_color));
    }
    if let Some(note) = model.folder.config.as_ref().and_then(|c| help::family_note(c.family)) {
        ui.label(RichText::new(note).small().weak());
    }
    ui.separator();
    let filter = state.filter.trim().to_string();
    if *flat {
        flat_list(ui, model, &filter, selection, &mut picked);
        return picked;
    }
    let tree = &model.tree;
    egui::ScrollArea::both().auto_shrink([false, false]).show(ui, |ui| {
        ui.style_mut().override_text_style = Some(egui::TextStyle::Monospace);
        let root = &tree.nodes[ROOT];
        let title = format!("{}(", root.class_name);
        let resp = row(ui, selection == &Selection::Module(ROOT), &title, model.param_counts[ROOT]);
        if resp.clicked() {
            picked = Some(Selection::Module(ROOT));
        }
        let mut ctx = Ctx { model, tree, selection, picked: &mut picked, change };
        ui.indent("root", |ui| {
            if filter.is_empty() {
                for &c in &root.children {
                    ctx.node(ui, c, &tree.nodes[c].key.clone(), Id::unique(("tree", c)), state);
                }
            } else {
                let visible = visible_set(state, tree, &filter);
                for &c in &root.children {
                    ctx.filtered(ui, c, visible);
                }
                if visible.len() <= 1 {
                    ui.label(RichText::new(trf("nothing matches “{}”", &[&filter])).italics());
                }
            }
        });
        ui.label(")");
    });
    picked
}

struct Ctx<'a> {
    model: &'a TreeView,
    tree: &'a ModuleTree,
    selection: &'a Selection,
    picked: &'a mut Option<Selection>,
    /// Relative change per tensor, when the tree is coloured by a diff.
    change: Option<&'a HashMap<String, f64>>,
}

/// Grey for unchanged, then blue (1e-6) through purple to red (≥ 1) on a log scale.
fn change_colour(rel: f64) -> egui::Color32 {
    if rel.is_nan() || rel <= 0.0 {
        return egui::Color32::from_gray(140);
    }
    let t = ((rel.log10() + 6.0) / 6.0).clamp(0.0, 1.0) as f32;
    let lerp = |a: f32, b: f32| (a + (b - a) * t) as u8;
    egui::Color32::from_rgb(lerp(70.0, 235.0), lerp(130.0, 60.0), lerp(230.0, 50.0))
}

impl Ctx<'_> {
    /// One node in the folded, print(model)-shaped view. `key` is what the line starts with
    /// (`q_proj`, `0-29`); `salt` keeps open/closed state stable when a group switches instance.
    fn node(&mut self, ui: &mut egui::Ui, id: usize, key: &str, salt: Id, state: &mut TreePanel) {
        let node = &self.tree.nodes[id];
        let selected = self.selection == &Selection::Module(id);
        let count = self.model.param_counts[id];
        if node.children.is_empty() && node.params.is_empty() {
            let text = format!("({key}): {}({})", node.class_name, node.extra_repr);
            if row(ui, selected, &text, count).on_hover_text(teaching_note(node)).clicked() {
                *self.picked = Some(Selection::Module(id));
            }
            return;
        }
        let text = if node.children.is_empty() {
            format!("({key}): {}({})", node.class_name, node.extra_repr)
        } else {
            format!("({key}): {}(", node.class_name)
        };
        let default_open = node.path.split('.').count() < 2 || node.is_list;
        let mut clicked = false;
        let moe_note = self.moe_note(node);
        load_state(ui, state, salt, default_open)
            .show_header(ui, |ui| {
                if row(ui, selected, &text, count).on_hover_text(teaching_note(node)).clicked() {
                    *self.picked = Some(Selection::Module(id));
                    clicked = true;
                }
                if let Some(note) = &moe_note {
                    ui.label(RichText::new(note).weak().italics());
                }
            })
            .body(|ui| {
                self.tensors(ui, node);
                if node.is_list {
                    self.list_children(ui, id, salt, state);
                } else {
                    for &c in &node.children {
                        let k = self.tree.nodes[c].key.clone();
                        self.node(ui, c, &k, salt.with(&k), state);
                    }
                }
            });
        if clicked {
            state.to_open.insert(salt);
        }
    }

    /// "8 experts, top-2" beside a sparse MoE block.
    fn moe_note(&self, node: &Node) -> Option<String> {
        let moe = self.model.folder.config.as_ref()?.moe.as_ref()?;
        node.class_name.ends_with("SparseMoeBlock").then(|| trf("{} experts, top-{}", &[&moe.num_experts, &moe.top_k]))
    }

    fn list_children(&mut self, ui: &mut egui::Ui, list: usize, salt: Id, state: &mut TreePanel) {
        let node = &self.tree.nodes[list];
        let groups = self.model.fold_groups.get(&list).cloned().unwrap_or_default();
        for (start, end) in groups {
            if start == end {
                let c = node.children[start];
                self.node(ui, c, &start.to_string(), salt.with(start), state);
                continue;
            }
            let n = end - start + 1;
            let chosen = *state.instance.entry((list, start)).or_insert(start);
            let child = node.children[chosen];
            let class = &self.tree.nodes[child].class_name;
            let group_salt = salt.with(("group", start));
            let text = format!("({start}-{end}): {n} x {class}(");
            let each = self.model.param_counts[child];
            let mut clicked = false;
            load_state(ui, state, group_salt, false)
                .show_header(ui, |ui| {
                    let r = row(ui, self.selection == &Selection::Module(child), &text, each * n as u64)
                        .on_hover_text(trf(
                            "{} modules whose print(model) text is identical are folded into one, as PyTorch prints them. Click to inspect instance {}; expand to pick another.",
                            &[&n, &chosen],
                        ));
                    if r.clicked() {
                        *self.picked = Some(Selection::Module(child));
                        clicked = true;
                    }
                })
                .body(|ui| {
                    let mut pick = chosen;
                    ui.horizontal(|ui| {
                        let label = ui.label(RichText::new(tr("showing")).weak());
                        ui.add(egui::DragValue::new(&mut pick).range(start..=end).prefix("#"))
                            .labelled_by(label.id)
                            .on_hover_text(tr("The tensors below belong to this instance of the repeated module"));
                        ui.label(RichText::new(trf("({} each)", &[&format::count(each)])).weak());
                    });
                    state.instance.insert((list, start), pick);
                    let child = node.children[pick];
                    let child_node = &self.tree.nodes[child];
                    self.tensors(ui, child_node);
                    for &c in &child_node.children {
                        let k = self.tree.nodes[c].key.clone();
                        self.node(ui, c, &k, group_salt.with(&k), state);
                    }
                });
            if clicked {
                state.to_open.insert(group_salt);
            }
        }
    }

    /// The tensors a module owns directly, one selectable row each.
    fn tensors(&mut self, ui: &mut egui::Ui, node: &Node) {
        let ckpt = &self.model.folder.checkpoint;
        for p in &node.params {
            let Some(t) = ckpt.tensor(&p.tensor) else { continue };
            // Under a PEFT wrapper the path gains `base_model.model.` and `.base_layer`;
            // only a different tensor than the module's own is a tie.
            let own = node.path.strip_prefix("base_model.model.").unwrap_or(&node.path).trim_end_matches(".base_layer");
            let tied = if p.tensor != format!("{own}.{}", p.local) {
                trf("  → tied to {}", &[&p.tensor])
            } else {
                String::new()
            };
            let text = format!(
                "{}  {}  {}  {}  {}{}",
                format::visible(&p.local),
                t.dtype,
                format::shape(&t.shape),
                format::bytes(t.byte_len() as u64),
                ckpt.shard_name(t),
                format::visible(&tied)
            );
            let selected = self.selection == &Selection::Tensor(p.tensor.clone());
            let (text, colour) = match self.change.map(|c| c.get(&p.tensor)) {
                Some(Some(&rel)) => (format!("{text}  Δ {}", format::num(rel)), change_colour(rel)),
                _ => (text, ui.visuals().hyperlink_color),
            };
            let r = ui.selectable_label(selected, RichText::new(text).color(colour)).on_hover_text(trf(
                "{}\nClick for statistics and the histogram of its values.",
                &[&format::visible(&p.tensor)],
            ));
            if r.clicked() {
                *self.picked = Some(Selection::Tensor(p.tensor.clone()));
            }
        }
    }

    /// Unfolded view restricted to `visible`, everything open.
    fn filtered(&mut self, ui: &mut egui::Ui, id: usize, visible: &HashSet<usize>) {
        if !visible.contains(&id) {
            return;
        }
        let node = &self.tree.nodes[id];
        let text = if node.children.is_empty() {
            format!("({}): {}({})", node.key, node.class_name, node.extra_repr)
        } else {
            format!("({}): {}(", node.key, node.class_name)
        };
        let selected = self.selection == &Selection::Module(id);
        CollapsingState::load_with_default_open(ui.ctx(), Id::unique(("filtered", id)), true)
            .show_header(ui, |ui| {
                if row(ui, selected, &text, self.model.param_counts[id]).clicked() {
                    *self.picked = Some(Selection::Module(id));
                }
            })
            .body(|ui| {
                self.tensors(ui, node);
                for &c in &node.children {
                    self.filtered(ui, c, visible);
                }
            });
    }
}

/// One tree line: the print(model) text, then the parameter count in a quieter colour.
/// Modules a LoRA adapter wraps (`lora.Linear`, MiniMind's `LoRA`) stand out in orange.
fn row(ui: &mut egui::Ui, selected: bool, text: &str, params: u64) -> egui::Response {
    ui.horizontal(|ui| {
        let adapted = text.contains("): lora.Linear(") || text.contains("): LoRA(");
        let text = format::visible(text);
        let label = if adapted {
            RichText::new(text).color(egui::Color32::from_rgb(240, 150, 50))
        } else {
            RichText::new(text)
        };
        let r = ui.selectable_label(selected, label);
        if params > 0 {
            ui.label(RichText::new(format::count(params)).weak());
        }
        r
    })
    .inner
}

/// Nodes to show for a filter: matches and their ancestors. Cached per filter text.
fn visible_set<'a>(state: &'a mut TreePanel, tree: &ModuleTree, filter: &str) -> &'a HashSet<usize> {
    let stale = state.visible.as_ref().is_none_or(|(f, _)| f != filter);
    if stale {
        let mut set = HashSet::new();
        for (id, node) in tree.nodes.iter().enumerate() {
            let hit = node.path.contains(filter) || node.params.iter().any(|p| p.tensor.contains(filter));
            if hit {
                let mut cur = Some(id);
                while let Some(c) = cur {
                    if !set.insert(c) {
                        break;
                    }
                    cur = tree.nodes[c].parent;
                }
                // Everything inside a matching module is shown too.
                set.extend(tree.descendants(id));
            }
        }
        state.visible = Some((filter.to_string(), set));
    }
    &state.visible.as_ref().expect("just set").1
}

fn flat_list(ui: &mut egui::Ui, model: &TreeView, filter: &str, selection: &Selection, picked: &mut Option<Selection>) {
    let ckpt = &model.folder.checkpoint;
    let rows: Vec<_> = ckpt.tensors.iter().filter(|t| t.name.contains(filter)).collect();
    ui.label(RichText::new(trf("{} of {} tensors", &[&rows.len(), &ckpt.tensors.len()])).weak());
    let height = ui.text_style_height(&egui::TextStyle::Monospace) + 4.0;
    egui::ScrollArea::both().auto_shrink([false, false]).show_rows(ui, height, rows.len(), |ui, range| {
        ui.style_mut().override_text_style = Some(egui::TextStyle::Monospace);
        for t in &rows[range] {
            let text = format!(
                "{}  {}  {}  {}  {}",
                format::visible(&t.name),
                t.dtype,
                format::shape(&t.shape),
                format::bytes(t.byte_len() as u64),
                ckpt.shard_name(t)
            );
            if ui.selectable_label(selection == &Selection::Tensor(t.name.clone()), text).clicked() {
                *picked = Some(Selection::Tensor(t.name.clone()));
            }
        }
    });
}
