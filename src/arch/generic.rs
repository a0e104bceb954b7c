//! A module tree for an architecture this program does not model, built from tensor names
//! alone. Class names are generic (`Linear`, `Embedding`, `Norm`, `Module`), shapes are the
//! stored ones, and numbered children become a `ModuleList` so repeats still fold.

use std::collections::BTreeMap;

use super::module::{ModuleTree, ROOT};
use crate::checkpoint::Checkpoint;

#[derive(Default)]
struct Trie {
    children: BTreeMap<String, Trie>,
    order: Vec<String>,
    /// Parameter name → shape, for the tensors that end at this node.
    params: Vec<(String, Vec<usize>)>,
}

impl Trie {
    fn insert(&mut self, parts: &[&str], shape: &[usize]) {
        match parts {
            [] => {}
            [leaf] => self.params.push((leaf.to_string(), shape.to_vec())),
            [head, rest @ ..] => {
                if !self.children.contains_key(*head) {
                    self.order.push(head.to_string());
                }
                self.children.entry(head.to_string()).or_default().insert(rest, shape);
            }
        }
    }

    fn ordered_children(&self) -> Vec<(&String, &Trie)> {
        let mut keys: Vec<&String> = self.order.iter().collect();
        if keys.iter().all(|k| k.parse::<usize>().is_ok()) {
            keys.sort_by_key(|k| k.parse::<usize>().unwrap_or(0));
        }
        keys.into_iter().map(|k| (k, &self.children[k])).collect()
    }
}

pub fn build_tree(ckpt: &Checkpoint, root_class: &str) -> ModuleTree {
    // Keep the file's own order: it is the order the training code registered modules in,
    // which is the best guess of print(model)'s order we have.
    let mut in_file_order: Vec<&crate::checkpoint::TensorInfo> = ckpt.tensors.iter().collect();
    in_file_order.sort_by_key(|t| (t.shard, t.data_offsets.0));
    let mut trie = Trie::default();
    for t in in_file_order {
        let parts: Vec<&str> = t.name.split('.').collect();
        trie.insert(&parts, &t.shape);
    }
    let mut tree = ModuleTree::new(root_class);
    for (local, shape) in &trie.params {
        tree.add_param(ROOT, local, shape.clone());
    }
    add_children(&mut tree, ROOT, &trie);
    tree
}

fn add_children(tree: &mut ModuleTree, parent: usize, trie: &Trie) {
    for (key, sub) in trie.ordered_children() {
        let is_list =
            !sub.children.is_empty() && sub.params.is_empty() && sub.order.iter().all(|k| k.parse::<usize>().is_ok());
        let id = if is_list {
            tree.add_list(parent, key)
        } else if sub.children.is_empty() {
            leaf_module(tree, parent, key, &sub.params)
        } else {
            let id = tree.add(parent, key, "Module", String::new());
            for (local, shape) in &sub.params {
                tree.add_param(id, local, shape.clone());
            }
            id
        };
        add_children(tree, id, sub);
    }
}

/// Guesses a familiar class from the parameters a leaf holds.
fn leaf_module(tree: &mut ModuleTree, parent: usize, key: &str, params: &[(String, Vec<usize>)]) -> usize {
    let weight = params.iter().find(|(n, _)| n == "weight").map(|(_, s)| s.as_slice());
    let has_bias = params.iter().any(|(n, _)| n == "bias");
    let only_weight_and_bias = params.iter().all(|(n, _)| n == "weight" || n == "bias");
    let lower = key.to_lowercase();
    let (class, extra) = match weight {
        Some([rows, cols])
            if only_weight_and_bias && (lower.contains("embed") || lower == "wte" || lower == "wpe") && !has_bias =>
        {
            ("Embedding", format!("{rows}, {cols}"))
        }
        Some([out_f, in_f]) if only_weight_and_bias => {
            ("Linear", format!("in_features={in_f}, out_features={out_f}, bias={}", super::module::py_bool(has_bias)))
        }
        Some([dim]) if only_weight_and_bias && (lower.contains("norm") || lower.starts_with("ln")) => {
            ("Norm", format!("({dim},)"))
        }
        _ => ("Module", String::new()),
    };
    let id = tree.add(parent, key, class, extra);
    for (local, shape) in params {
        tree.add_param(id, local, shape.clone());
    }
    id
}
