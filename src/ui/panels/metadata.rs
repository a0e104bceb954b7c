//! Metadata: every key/value of a GGUF file's header, as `llm-anatomy metadata` prints it
//! (the same `report::metadata_json` summary: arrays as length + first items), with the chat
//! template shown as text. For a safetensors folder it says where the settings are instead.

use egui::RichText;

use crate::report;
use crate::ui::i18n::{tr, trf};
use crate::workspace::{Action, Workspace};

#[derive(Default)]
pub struct MetadataPanel {
    filter: String,
}

impl super::Panel for MetadataPanel {
    fn id(&self) -> &'static str {
        "metadata"
    }

    fn title(&self) -> &'static str {
        tr("Metadata")
    }

    fn tooltip(&self) -> &'static str {
        tr("Every key/value stored in a GGUF file's header")
    }

    fn reset(&mut self) {
        *self = Self::default();
    }

    fn ui(&mut self, ui: &mut egui::Ui, ws: &Workspace, _actions: &mut Vec<Action>) {
        let Some(gguf) = ws.model.as_ref().and_then(|m| m.folder.checkpoint.gguf.as_ref()) else {
            ui.label(tr("This model is not a GGUF file: its settings are in config.json (see the Weights tab)."));
            // safetensors' own `__metadata__` (string → string), per file.
            for shard in ws.model.iter().flat_map(|m| &m.folder.checkpoint.shards) {
                if shard.metadata.is_empty() {
                    continue;
                }
                ui.separator();
                ui.label(RichText::new(trf("{}: __metadata__", &[&shard.file_name])).strong());
                for (key, v) in &shard.metadata {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(RichText::new(key).monospace().strong());
                        ui.label(RichText::new(v.as_str().map_or_else(|| v.to_string(), str::to_string)).monospace());
                    });
                }
            }
            return;
        };
        let file = &gguf.file;
        ui.label(trf(
            "{}: GGUF version {}, {} tensors, {} keys, alignment {} bytes",
            &[&file.file_name, &file.version, &file.tensors.len(), &file.metadata.len(), &file.alignment],
        ));
        ui.horizontal(|ui| {
            ui.label(tr("Filter"));
            ui.text_edit_singleline(&mut self.filter);
        });
        ui.separator();
        // Summarising ~50 keys (arrays: their first items only) costs microseconds a frame.
        let summary = report::metadata_json(file);
        let filter = self.filter.to_lowercase();
        egui::ScrollArea::vertical().auto_shrink([false, false]).show(ui, |ui| {
            let entries = summary["metadata"].as_object().into_iter().flatten();
            for (key, v) in entries.filter(|(k, _)| k.to_lowercase().contains(&filter)) {
                let ty = v["type"].as_str().unwrap_or("");
                match &v["value"] {
                    serde_json::Value::String(s) if s.contains('\n') || s.len() > 120 => {
                        ui.collapsing(RichText::new(format!("{key}  [{ty}]")).monospace(), |ui| {
                            ui.add(egui::Label::new(RichText::new(s).monospace()).wrap());
                        });
                    }
                    value => {
                        let shown = match value {
                            serde_json::Value::String(s) => format!("{s:?}"),
                            other => other.to_string(),
                        };
                        ui.horizontal_wrapped(|ui| {
                            ui.label(RichText::new(key).monospace().strong());
                            ui.label(RichText::new(format!("[{ty}]")).weak());
                            ui.label(RichText::new(shown).monospace());
                        });
                    }
                }
            }
        });
    }
}
