//! `tree`: the module tree as `print(model)` shows it, optionally as PEFT wraps it.

use std::io::Write;
use std::path::Path;

use super::Outcome;
use crate::arch::{ModelFolder, ROOT, peft};
use crate::lora::LoraAdapter;

/// Notices and PEFT's trainable-parameters line go to stderr, so stdout stays exactly `print(model)`.
pub fn run(path: &Path, adapter: Option<&Path>, alpha: Option<f64>, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(path)?;
    for notice in &model.notices {
        eprintln!("note: {notice}");
    }
    match adapter {
        None => writeln!(out, "{}", model.repr())?,
        Some(a) => {
            let adapter = LoraAdapter::open(a, &model, alpha)?;
            writeln!(out, "{}", peft::wrap(&model.tree, &adapter).repr(ROOT))?;
            eprintln!("{}", peft::trainable_line(&adapter, model.tree.unique_param_count(ROOT)));
        }
    }
    Ok(())
}
