//! A PyTorch-style module hierarchy and its `repr`, reproduced character for character.
//!
//! The tree is an arena of nodes. Each node carries what `nn.Module.__repr__` uses (class
//! name, `extra_repr`, ordered children, ModuleList-ness) plus what the panels need (the
//! dotted path, the parameters it owns and which checkpoint tensor backs each).

use std::collections::HashSet;

/// A parameter owned directly by a module, e.g. the `weight` of a `Linear`.
#[derive(Clone, Debug)]
pub struct Param {
    /// Local name: `weight`, `bias`.
    pub local: String,
    /// The checkpoint tensor that holds it. Differs from `path.local` when weights are tied
    /// (`lm_head.weight` is `model.embed_tokens.weight`).
    pub tensor: String,
    pub shape: Vec<usize>,
}

impl Param {
    pub fn numel(&self) -> u64 {
        self.shape.iter().map(|&d| d as u64).product()
    }
}

#[derive(Clone, Debug)]
pub struct Node {
    /// Key under the parent (`q_proj`, `0`); empty for the root.
    pub key: String,
    /// Dotted path from the root (`model.layers.0.self_attn`); empty for the root.
    pub path: String,
    pub class_name: String,
    pub extra_repr: String,
    pub is_list: bool,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    pub params: Vec<Param>,
}

#[derive(Clone, Debug)]
pub struct ModuleTree {
    pub nodes: Vec<Node>,
}

pub const ROOT: usize = 0;

impl ModuleTree {
    pub fn new(root_class: &str) -> Self {
        Self {
            nodes: vec![Node {
                key: String::new(),
                path: String::new(),
                class_name: root_class.to_string(),
                extra_repr: String::new(),
                is_list: false,
                parent: None,
                children: Vec::new(),
                params: Vec::new(),
            }],
        }
    }

    /// Adds a child module and returns its id.
    pub fn add(&mut self, parent: usize, key: &str, class_name: &str, extra_repr: String) -> usize {
        let path = if self.nodes[parent].path.is_empty() {
            key.to_string()
        } else {
            format!("{}.{}", self.nodes[parent].path, key)
        };
        let id = self.nodes.len();
        self.nodes.push(Node {
            key: key.to_string(),
            path,
            class_name: class_name.to_string(),
            extra_repr,
            is_list: false,
            parent: Some(parent),
            children: Vec::new(),
            params: Vec::new(),
        });
        self.nodes[parent].children.push(id);
        id
    }

    pub fn add_list(&mut self, parent: usize, key: &str) -> usize {
        let id = self.add(parent, key, "ModuleList", String::new());
        self.nodes[id].is_list = true;
        id
    }

    pub fn add_param(&mut self, node: usize, local: &str, shape: Vec<usize>) {
        let tensor = if self.nodes[node].path.is_empty() {
            local.to_string()
        } else {
            format!("{}.{}", self.nodes[node].path, local)
        };
        self.nodes[node].params.push(Param { local: local.to_string(), tensor, shape });
    }

    /// `nn.Linear(in, out, bias)`: weight is `[out, in]`, the layout the checkpoint stores.
    pub fn linear(&mut self, parent: usize, key: &str, in_f: usize, out_f: usize, bias: bool) -> usize {
        let id = self.add(
            parent,
            key,
            "Linear",
            format!("in_features={in_f}, out_features={out_f}, bias={}", py_bool(bias)),
        );
        self.add_param(id, "weight", vec![out_f, in_f]);
        if bias {
            self.add_param(id, "bias", vec![out_f]);
        }
        id
    }

    pub fn embedding(&mut self, parent: usize, key: &str, num: usize, dim: usize, padding_idx: Option<i64>) -> usize {
        let mut extra = format!("{num}, {dim}");
        if let Some(p) = padding_idx {
            extra.push_str(&format!(", padding_idx={p}"));
        }
        let id = self.add(parent, key, "Embedding", extra);
        self.add_param(id, "weight", vec![num, dim]);
        id
    }

    /// An RMSNorm as the transformers families print it: `LlamaRMSNorm((64,), eps=1e-05)`.
    pub fn rms_norm(&mut self, parent: usize, key: &str, class_name: &str, dim: usize, eps: f64) -> usize {
        let id = self.add(parent, key, class_name, format!("({dim},), eps={}", py_float(eps)));
        self.add_param(id, "weight", vec![dim]);
        id
    }

    /// A module with no parameters and no extra_repr (`SiLUActivation()`, rotary embeddings).
    pub fn leaf(&mut self, parent: usize, key: &str, class_name: &str) -> usize {
        self.add(parent, key, class_name, String::new())
    }

    /// Copies the subtree `src` under `parent` with a new key, e.g. decoder layer 0 → layer 1.
    pub fn clone_subtree(&mut self, src: usize, parent: usize, key: &str) -> usize {
        let node = self.nodes[src].clone();
        let id = self.add(parent, key, &node.class_name, node.extra_repr.clone());
        self.nodes[id].is_list = node.is_list;
        for p in &node.params {
            self.add_param(id, &p.local, p.shape.clone());
        }
        for child in node.children {
            let child_key = self.nodes[child].key.clone();
            self.clone_subtree(child, id, &child_key);
        }
        id
    }

    /// Points a parameter at another checkpoint tensor (tied weights).
    pub fn tie(&mut self, node: usize, local: &str, tensor: &str) {
        if let Some(p) = self.nodes[node].params.iter_mut().find(|p| p.local == local) {
            p.tensor = tensor.to_string();
        }
    }

    pub fn find(&self, path: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.path == path)
    }

    /// Every node of the subtree, the node itself first, in registration order.
    pub fn descendants(&self, id: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.nodes[n].children.iter().rev());
        }
        out
    }

    /// Parameters of the subtree, each counted once per node that owns it: so a tied
    /// `lm_head` counts its weight even though `embed_tokens` holds the same tensor,
    /// as `sum(p.numel() for p in module.parameters())` does child by child.
    pub fn param_count(&self, id: usize) -> u64 {
        self.descendants(id).iter().flat_map(|&n| &self.nodes[n].params).map(Param::numel).sum()
    }

    /// Parameters with tied tensors counted once, as `model.num_parameters()` reports.
    pub fn unique_param_count(&self, id: usize) -> u64 {
        let mut seen = HashSet::new();
        self.descendants(id)
            .iter()
            .flat_map(|&n| &self.nodes[n].params)
            .filter(|p| seen.insert(p.tensor.as_str()))
            .map(Param::numel)
            .sum()
    }

    /// Per-node subtree parameter counts, computed in one pass (children always have larger
    /// ids than their parents, so a reverse sweep sees every child before its parent).
    pub fn all_param_counts(&self) -> Vec<u64> {
        let mut counts: Vec<u64> = self.nodes.iter().map(|n| n.params.iter().map(Param::numel).sum()).collect();
        for id in (1..self.nodes.len()).rev() {
            if let Some(parent) = self.nodes[id].parent {
                counts[parent] += counts[id];
            }
        }
        counts
    }

    /// The repr of every node, computed bottom-up once (for big MoE trees, recomputing
    /// reprs per frame or per query would be quadratic).
    pub fn all_reprs(&self) -> Vec<String> {
        let mut reprs = vec![String::new(); self.nodes.len()];
        for id in (0..self.nodes.len()).rev() {
            let text = self.repr_with(id, &|c| reprs[c].clone());
            reprs[id] = text;
        }
        reprs
    }

    /// `repr(module)` as PyTorch prints it.
    pub fn repr(&self, id: usize) -> String {
        self.repr_with(id, &|c| self.repr(c))
    }

    fn repr_with(&self, id: usize, child_repr: &dyn Fn(usize) -> String) -> String {
        let node = &self.nodes[id];
        if node.is_list {
            return self.list_repr(id, child_repr);
        }
        let extra_lines: Vec<&str> =
            if node.extra_repr.is_empty() { Vec::new() } else { node.extra_repr.split('\n').collect() };
        let child_lines: Vec<String> = node
            .children
            .iter()
            .map(|&c| format!("({}): {}", self.nodes[c].key, add_indent(&child_repr(c), 2)))
            .collect();
        let mut out = format!("{}(", node.class_name);
        if extra_lines.len() == 1 && child_lines.is_empty() {
            out.push_str(extra_lines[0]);
        } else if !extra_lines.is_empty() || !child_lines.is_empty() {
            let lines: Vec<String> = extra_lines.iter().map(|s| s.to_string()).chain(child_lines).collect();
            out.push_str("\n  ");
            out.push_str(&lines.join("\n  "));
            out.push('\n');
        }
        out.push(')');
        out
    }

    /// Consecutive children whose reprs are identical, as `ModuleList.__repr__` folds them:
    /// `(start, end_inclusive)` index ranges into the children.
    pub fn fold_groups(&self, id: usize) -> Vec<(usize, usize)> {
        self.fold_groups_with(id, &|c| self.repr(c))
    }

    /// The same, with child reprs from a cache (e.g. [`ModuleTree::all_reprs`]).
    pub fn fold_groups_with(&self, id: usize, child_repr: &dyn Fn(usize) -> String) -> Vec<(usize, usize)> {
        let children = &self.nodes[id].children;
        let reprs: Vec<String> = children.iter().map(|&c| child_repr(c)).collect();
        let mut groups: Vec<(usize, usize)> = Vec::new();
        for (i, r) in reprs.iter().enumerate() {
            match groups.last_mut() {
                Some((start, end)) if reprs[*start] == *r => *end = i,
                _ => groups.push((i, i)),
            }
        }
        groups
    }

    fn list_repr(&self, id: usize, child_repr: &dyn Fn(usize) -> String) -> String {
        let node = &self.nodes[id];
        if node.children.is_empty() {
            return format!("{}()", node.class_name);
        }
        let lines: Vec<String> = self
            .fold_groups_with(id, child_repr)
            .into_iter()
            .map(|(start, end)| {
                let body = child_repr(node.children[start]);
                let local = if start == end {
                    format!("({start}): {body}")
                } else {
                    format!("({start}-{end}): {} x {body}", end - start + 1)
                };
                add_indent(&local, 2)
            })
            .collect();
        format!("{}(\n  {}\n)", node.class_name, lines.join("\n  "))
    }
}

/// `torch.nn.modules.module._addindent`: indent every line but the first.
fn add_indent(s: &str, spaces: usize) -> String {
    let mut lines = s.split('\n');
    let first = lines.next().unwrap_or("");
    let pad = " ".repeat(spaces);
    let mut out = first.to_string();
    for line in lines {
        out.push('\n');
        out.push_str(&pad);
        out.push_str(line);
    }
    out
}

pub fn py_bool(b: bool) -> &'static str {
    if b { "True" } else { "False" }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 or from 1e16,
/// with a signed two-digit exponent (`1e-05`, `1e-06`, `1e+16`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    let exp = x.abs().log10().floor() as i32;
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{x:e}");
        let (mantissa, e) = s.split_once('e').expect("exponent form");
        let e: i32 = e.parse().expect("exponent");
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", e.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr() {
        assert_eq!(py_float(1e-5), "1e-05");
        assert_eq!(py_float(1e-6), "1e-06");
        assert_eq!(py_float(0.0001), "0.0001");
        assert_eq!(py_float(1.5e-7), "1.5e-07");
        assert_eq!(py_float(10000.0), "10000.0");
        assert_eq!(py_float(1e16), "1e+16");
        assert_eq!(py_float(0.1), "0.1");
    }

    #[test]
    fn list_folding_matches_pytorch() {
        let mut t = ModuleTree::new("M");
        let list = t.add_list(ROOT, "layers");
        for i in 0..3 {
            t.linear(list, &i.to_string(), 2, 2, i == 2);
        }
        assert_eq!(
            t.repr(ROOT),
            "M(\n  (layers): ModuleList(\n    (0-1): 2 x Linear(in_features=2, out_features=2, bias=False)\n    (2): Linear(in_features=2, out_features=2, bias=True)\n  )\n)"
        );
    }
}
