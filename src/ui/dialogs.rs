//! The desktop's file dialogs, each on its own thread so a frame never waits for one. With
//! no dialog backend (no portal, no zenity) the answer is None at once and nothing changes.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};

use crate::ui::i18n::tr;
use crate::workspace::Action;

#[derive(Default)]
pub struct Dialogs {
    folder: Option<Receiver<Option<PathBuf>>>,
    adapter: Option<Receiver<Option<PathBuf>>>,
    other: Option<Receiver<Option<PathBuf>>>,
}

impl Dialogs {
    /// Asks for a model folder, starting where the last model was (classes reopen the same
    /// few folders).
    pub fn pick_folder(&mut self, recent: Option<&Path>) {
        if self.folder.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open model folder");
        let start = recent.and_then(Path::parent).map(Path::to_path_buf);
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new().set_title(title);
            if let Some(dir) = start {
                dialog = dialog.set_directory(dir);
            }
            let _ = tx.send(dialog.pick_folder());
        });
        self.folder = Some(rx);
    }

    /// A model that is one file: a llama.cpp `.gguf`, or a MiniMind-style `.pth` checkpoint.
    /// The answer arrives as the folder dialog's does (Action::Open).
    pub fn pick_model_file(&mut self, recent: Option<&Path>) {
        if self.folder.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open model file");
        let (gguf, pth) = (tr("GGUF (llama.cpp, LM Studio, Ollama)"), tr("PyTorch checkpoint"));
        let start = recent.and_then(Path::parent).map(Path::to_path_buf);
        std::thread::spawn(move || {
            let mut dialog = rfd::FileDialog::new()
                .set_title(title)
                .add_filter(gguf, &["gguf"])
                .add_filter(pth, &["pth", "pt", "bin"]);
            if let Some(dir) = start {
                dialog = dialog.set_directory(dir);
            }
            let _ = tx.send(dialog.pick_file());
        });
        self.folder = Some(rx);
    }

    /// A PEFT folder (`folder`) or a `.pth` state dict.
    pub fn pick_adapter(&mut self, folder: bool) {
        if self.adapter.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open LoRA adapter");
        let filter = tr("PyTorch state dict");
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new().set_title(title);
            let picked = if folder {
                dialog.pick_folder()
            } else {
                dialog.add_filter(filter, &["pth", "pt", "bin"]).pick_file()
            };
            let _ = tx.send(picked);
        });
        self.adapter = Some(rx);
    }

    /// A second model to compare with (Compare panel).
    pub fn pick_other(&mut self) {
        if self.other.is_some() {
            return;
        }
        let (tx, rx) = channel();
        let title = tr("Open a second model to compare");
        std::thread::spawn(move || {
            let _ = tx.send(rfd::FileDialog::new().set_title(title).pick_folder());
        });
        self.other = Some(rx);
    }

    /// What the user picked since the last frame, as actions.
    pub fn poll(&mut self, actions: &mut Vec<Action>) {
        if let Some(rx) = &self.folder
            && let Ok(picked) = rx.try_recv()
        {
            self.folder = None;
            actions.extend(picked.map(Action::Open));
        }
        if let Some(rx) = &self.adapter
            && let Ok(picked) = rx.try_recv()
        {
            self.adapter = None;
            actions.extend(picked.map(Action::OpenAdapter));
        }
        if let Some(rx) = &self.other
            && let Ok(picked) = rx.try_recv()
        {
            self.other = None;
            actions.extend(picked.map(Action::OpenOther));
        }
    }

    pub fn is_open(&self) -> bool {
        self.folder.is_some() || self.adapter.is_some() || self.other.is_some()
    }
}
