//! `sweep`: per-layer figures of every repeated tensor role (or one), to find the odd layer.

use std::io::Write;
use std::path::Path;

use super::{Outcome, print_json};
use crate::analysis::Control;
use crate::analysis::compare;
use crate::arch::ModelFolder;

pub fn run(path: &Path, role: Option<&str>, json: bool, out: &mut dyn Write) -> Outcome {
    let model = ModelFolder::open(path)?;
    let roles = compare::sweep(&model.checkpoint, role, &Control::new())?;
    if let Some(r) = role.filter(|_| roles.is_empty()) {
        return Err(format!(
            "no repeated tensor role `{r}` in {} (roles look like model.layers.{{L}}.mlp.down_proj.weight)",
            path.display()
        )
        .into());
    }
    if json {
        return print_json(out, &crate::report::sweep_json(&roles));
    }
    for (role, layers) in &roles {
        writeln!(out, "{role}")?;
        let kurt: Vec<f64> = layers.iter().map(|l| l.kurtosis).collect();
        let odd = compare::outlying_layers(&kurt);
        for (i, l) in layers.iter().enumerate() {
            let mark = if odd.contains(&i) { "  ◀ kurtosis stands out" } else { "" };
            writeln!(
                out,
                "  layer {:>3}  mean {:>+.4e}  std {:.4e}  |x|max {:.4e}  kurtosis {:>+8.3}  outliers {:.2e}{mark}",
                l.layer, l.mean, l.std, l.abs_max, l.kurtosis, l.outlier_frac
            )?;
        }
    }
    Ok(())
}
