//! The module tree as `print(peft_model)` shows it once a LoRA adapter is attached:
//! `PeftModelForCausalLM → base_model: LoraModel → model: <the base>`, each targeted Linear
//! replaced by a `lora.Linear` that holds the original as `base_layer`. MiniMind-style
//! adapters instead hang a `(lora): LoRA(A, B)` module under the Linear they patch.

use super::module::{ModuleTree, Param, ROOT, py_bool, py_float};
use crate::lora::LoraAdapter;

pub fn wrap(base: &ModuleTree, adapter: &LoraAdapter) -> ModuleTree {
    if !adapter.peft {
        let mut t = base.clone();
        for m in &adapter.modules {
            if let Some(id) = t.find(&m.module) {
                let lora = t.add(id, "lora", "LoRA", String::new());
                lora_linear(&mut t, lora, "A", m.in_features, m.rank, format!("lora:{}.A", m.module));
                lora_linear(&mut t, lora, "B", m.rank, m.out_features, format!("lora:{}.B", m.module));
            }
        }
        return t;
    }
    let mut t = ModuleTree::new("PeftModelForCausalLM");
    let lora_model = t.add(ROOT, "base_model", "LoraModel", String::new());
    let model = t.add(lora_model, "model", &base.nodes[ROOT].class_name, base.nodes[ROOT].extra_repr.clone());
    copy_params(&mut t, model, &base.nodes[ROOT].params);
    for &c in &base.nodes[ROOT].children {
        copy(base, c, &mut t, model, adapter);
    }
    t
}

/// Copies `src` under `parent`, keeping each parameter's checkpoint tensor name.
fn copy(base: &ModuleTree, src: usize, t: &mut ModuleTree, parent: usize, adapter: &LoraAdapter) {
    let node = &base.nodes[src];
    if let Some(m) = adapter.module(&node.path) {
        let wrapper = t.add(parent, &node.key, "lora.Linear", String::new());
        let base_layer = t.add(wrapper, "base_layer", &node.class_name, node.extra_repr.clone());
        copy_params(t, base_layer, &node.params);
        let dropout = t.add(wrapper, "lora_dropout", "ModuleDict", String::new());
        if adapter.dropout > 0.0 {
            t.add(dropout, "default", "Dropout", format!("p={}, inplace=False", py_float(adapter.dropout)));
        } else {
            t.add(dropout, "default", "Identity", String::new());
        }
        let a = t.add(wrapper, "lora_A", "ModuleDict", String::new());
        lora_linear(t, a, "default", m.in_features, m.rank, format!("lora:{}.A", m.module));
        let b = t.add(wrapper, "lora_B", "ModuleDict", String::new());
        lora_linear(t, b, "default", m.rank, m.out_features, format!("lora:{}.B", m.module));
        t.add(wrapper, "lora_embedding_A", "ParameterDict", String::new());
        t.add(wrapper, "lora_embedding_B", "ParameterDict", String::new());
        t.add(wrapper, "lora_magnitude_vector", "ModuleDict", String::new());
        return;
    }
    let id = t.add(parent, &node.key, &node.class_name, node.extra_repr.clone());
    t.nodes[id].is_list = node.is_list;
    copy_params(t, id, &node.params);
    for &c in &node.children {
        copy(base, c, t, id, adapter);
    }
}

fn copy_params(t: &mut ModuleTree, id: usize, params: &[Param]) {
    t.nodes[id].params.extend(params.iter().cloned());
}

/// An adapter matrix: its "tensor" names the adapter, not the base checkpoint.
fn lora_linear(t: &mut ModuleTree, parent: usize, key: &str, in_f: usize, out_f: usize, tensor: String) -> usize {
    let id = t.add(parent, key, "Linear", format!("in_features={in_f}, out_features={out_f}, bias={}", py_bool(false)));
    t.nodes[id].params.push(Param { local: "weight".into(), tensor, shape: vec![out_f, in_f] });
    id
}

/// PEFT's `print_trainable_parameters()` line.
pub fn trainable_line(adapter: &LoraAdapter, base_params: u64) -> String {
    let trainable = adapter.trainable_params();
    let all = base_params + trainable;
    format!(
        "trainable params: {} || all params: {} || trainable%: {:.4}",
        thousands(trainable),
        thousands(all),
        100.0 * trainable as f64 / all as f64
    )
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
