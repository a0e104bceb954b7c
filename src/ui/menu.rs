//! The menu bar and the status bar. They read the workspace like a panel does and answer
//! with actions; opening a dialog is the shell's (it owns the desktop dialogs).

use crate::arch::ROOT;
use crate::ui::dialogs::Dialogs;
use crate::ui::format;
use crate::ui::i18n::{tr, trf};
use crate::workspace::{Action, Lang, Settings, Workspace};

pub fn menu_bar(ui: &mut egui::Ui, ws: &Workspace, dialogs: &mut Dialogs, actions: &mut Vec<Action>) {
    let mut settings = ws.settings.clone();
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button(tr("File"), |ui| file_menu(ui, ws, dialogs, actions));
        if !ws.adapters.is_empty() {
            ui.menu_button("LoRA", |ui| lora_menu(ui, ws, actions));
        }
        ui.menu_button(tr("View"), |ui| view_menu(ui, &mut settings));
        if ws.is_opening() {
            ui.spinner();
            ui.label(tr("opening…"));
        }
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            // Each language's button is written in the language it switches to, so a
            // visitor who reads only one of them can always find it.
            let (label, tip) = match settings.lang {
                Lang::En => ("中文", "切换到中文界面 (Ctrl+L)"),
                Lang::Zh => ("English", "Switch the interface to English (Ctrl+L)"),
            };
            if ui.button(label).on_hover_text(tip).clicked() {
                settings.lang = settings.lang.other();
            }
            ui.toggle_value(&mut settings.presenter, tr("Presenter"))
                .on_hover_text(tr("Everything 1.6× larger for a projector (F11)"));
        });
    });
    if settings != ws.settings {
        actions.push(Action::Settings(Box::new(settings)));
    }
}

fn file_menu(ui: &mut egui::Ui, ws: &Workspace, dialogs: &mut Dialogs, actions: &mut Vec<Action>) {
    let shortcut = ui.ctx().format_shortcut(&egui::KeyboardShortcut::new(egui::Modifiers::COMMAND, egui::Key::O));
    if ui
        .add(egui::Button::new(tr("Open model folder…")).shortcut_text(shortcut))
        .on_hover_text(tr("A Hugging Face folder: config.json + *.safetensors (+ tokenizer.json)"))
        .clicked()
    {
        dialogs.pick_folder(ws.recent.first().map(|p| p.as_path()));
    }
    let shortcut = ui
        .ctx()
        .format_shortcut(&egui::KeyboardShortcut::new(egui::Modifiers::COMMAND | egui::Modifiers::SHIFT, egui::Key::O));
    if ui
        .add(egui::Button::new(tr("Open model file…")).shortcut_text(shortcut))
        .on_hover_text(tr("One file: a llama.cpp .gguf, or a MiniMind-style .pth checkpoint"))
        .clicked()
    {
        dialogs.pick_model_file(ws.recent.first().map(|p| p.as_path()));
    }
    ui.separator();
    if ui
        .button(tr("Open LoRA adapter folder (PEFT)…"))
        .on_hover_text(tr("adapter_config.json + adapter_model.safetensors"))
        .clicked()
    {
        dialogs.pick_adapter(true);
    }
    if ui
        .button(tr("Open LoRA state dict (.pth)…"))
        .on_hover_text(tr("A MiniMind-style torch.save file with …lora.A.weight / …lora.B.weight"))
        .clicked()
    {
        dialogs.pick_adapter(false);
    }
    ui.separator();
    ui.menu_button(tr("Open recent"), |ui| {
        if ws.recent.is_empty() {
            ui.label(tr("Nothing yet"));
        }
        for path in &ws.recent {
            if ui.button(path.display().to_string()).clicked() {
                actions.push(Action::Open(path.clone()));
            }
        }
    });
    ui.menu_button(tr("Open from library"), |ui| library_menu(ui, ws, actions));
    if let Some(demo) = Workspace::bundled_demo()
        && ui
            .button(tr("Open the demo model"))
            .on_hover_text(tr("The tiny bilingual MoE bundled in assets/demo"))
            .clicked()
    {
        actions.push(Action::Open(demo));
    }
}

/// The models already on this computer (Hugging Face cache, Ollama, LM Studio), as the
/// welcome screen lists them; scanned on a worker the first time the menu opens.
fn library_menu(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    let Some(entries) = &ws.library else {
        if !ws.is_scanning_library() {
            actions.push(Action::ScanLibrary);
        }
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(tr("looking in the Hugging Face cache, Ollama and LM Studio…"));
        });
        return;
    };
    if entries.is_empty() {
        ui.label(tr("No models found in the Hugging Face cache, Ollama or LM Studio folders."));
    }
    egui::ScrollArea::vertical().max_height(480.0).show(ui, |ui| {
        for e in entries {
            let text = format!("{}  ·  {}  ·  {}  ·  {}", e.name, e.source.as_str(), e.format, format::bytes(e.bytes));
            let tip = if e.missing.is_empty() { e.path.display().to_string() } else { e.missing.join("; ") };
            if ui.button(text).on_hover_text(tip).clicked() {
                actions.push(Action::Open(e.path.clone()));
                ui.close();
            }
        }
    });
    ui.separator();
    if ui.button(tr("Look again")).clicked() {
        actions.push(Action::ScanLibrary);
    }
}

fn lora_menu(ui: &mut egui::Ui, ws: &Workspace, actions: &mut Vec<Action>) {
    let active = ws.active.as_ref().map(|a| &a.adapter);
    if ui.radio(active.is_none(), tr("none (base model)")).clicked() {
        actions.push(Action::ActivateAdapter(None));
    }
    for (i, a) in ws.adapters.iter().enumerate() {
        let name = a.source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
        let is_active = active.is_some_and(|x| std::sync::Arc::ptr_eq(x, a));
        if ui.radio(is_active, format!("{name} (r={}, α={})", a.rank, a.alpha)).clicked() {
            actions.push(Action::ActivateAdapter(Some(i)));
        }
    }
    ui.separator();
    if active.is_some() && ui.button(tr("Unload the active adapter")).clicked() {
        actions.push(Action::UnloadActiveAdapter);
    }
}

fn view_menu(ui: &mut egui::Ui, settings: &mut Settings) {
    ui.checkbox(&mut settings.presenter, tr("Presenter mode (F11)"))
        .on_hover_text(tr("Everything 1.6× larger for a projector; Ctrl + / Ctrl − zoom further"));
    ui.checkbox(&mut settings.dark, tr("Dark theme"));
    ui.checkbox(&mut settings.high_contrast, tr("High contrast"))
        .on_hover_text(tr("Black on white (or white on black) with bolder lines, for a washed-out projector"));
    ui.separator();
    ui.checkbox(&mut settings.flat_tree, tr("state_dict() keys instead of the module tree"));
    ui.checkbox(&mut settings.histogram.log_y, tr("Logarithmic histogram counts"));
    ui.separator();
    ui.label(tr("Language (Ctrl+L)"));
    ui.radio_value(&mut settings.lang, Lang::En, "English");
    ui.radio_value(&mut settings.lang, Lang::Zh, "中文");
}

pub fn status_bar(ui: &mut egui::Ui, ws: &Workspace) {
    ui.horizontal(|ui| match &ws.model {
        Some(m) => {
            let ckpt = &m.folder.checkpoint;
            ui.label(ckpt.folder.display().to_string());
            ui.separator();
            let arch = m
                .folder
                .config
                .as_ref()
                .map(|c| c.architecture.clone())
                .unwrap_or_else(|| m.tree.nodes[ROOT].class_name.clone());
            ui.label(arch);
            ui.separator();
            ui.label(trf("{} parameters", &[&super::format::count(m.folder.tree.unique_param_count(ROOT))]));
            if let Some(active) = &ws.active {
                let a = &active.adapter;
                ui.separator();
                ui.label(format!(
                    "LoRA r={} α={} ×{:.2} · {}",
                    a.rank,
                    a.alpha,
                    active.strength,
                    a.source.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
                ));
            }
            ui.separator();
            ui.label(trf(
                "{} tensors · {} in {} file(s)",
                &[&ckpt.tensors.len(), &super::format::bytes(ckpt.total_bytes()), &ckpt.shards.len()],
            ));
            if let Some(path) = &ws.last_export {
                ui.separator();
                ui.label(trf("saved {}", &[&path.display()]));
            }
        }
        None => {
            ui.label(tr("No model open — File ▸ Open model folder… (Ctrl+O) or drop a folder on the window"));
        }
    });
}
