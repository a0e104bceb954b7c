//! 中文 for the strings of `src/ui/panels/attention.rs` and `lens.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("Attention", "注意力"),
    ("Which earlier tokens each token looks at, per layer and head", "每个 token 在每一层、每个头里关注前面哪些 token"),
    ("Logit lens", "Logit 透镜"),
    ("What each layer would predict, and how the residual stream grows", "每一层会预测什么，以及残差流如何增长"),
    ("Run a prompt to look inside the forward pass:", "运行一个提示词，查看前向传播的内部："),
    ("previous-token head ({}%)", "前一个 token 头（{}%）"),
    ("attention sink on the first token ({}%)", "注意力汇聚在第一个 token 上（{}%）"),
    ("looks at itself ({}%)", "关注自身（{}%）"),
    ("recorded for the first {} tokens only", "只记录了前 {} 个 token"),
    ("head", "头"),
    ("head {}", "头 {}"),
    ("every head of the layer", "该层的所有头"),
    ("query {} “{}” → key {} “{}”: {}", "查询 {} “{}” → 键 {} “{}”：{}"),
    (
        "← previous-token head · ⚓ attention sink on the first token · ○ looks at itself",
        "← 前一个 token 头 · ⚓ 注意力汇聚在第一个 token · ○ 关注自身",
    ),
    ("where token {} “{}” looks, every head of layer {}", "第 {} 个 token “{}” 在第 {} 层的每个头里关注哪里"),
    ("click a token to read the lens there", "点击一个 token，查看该位置的透镜"),
    ("rank of “{}”", "“{}” 的排名"),
    ("probability of “{}” layer by layer (−1 = embedding)", "“{}” 逐层的概率（−1 = 嵌入层）"),
    ("residual stream norm ‖h‖ per layer and token", "每层、每个 token 的残差流范数 ‖h‖"),
    (
        "How large each token's vector is after each layer. It usually grows layer by layer; a token far above the others is an outlier token (often the first one).",
        "每个 token 的向量在每一层之后有多大。它通常逐层增长；远高于其他 token 的是离群 token（常常是第一个）。",
    ),
    ("show the model", "显示模型"),
    (
        "With the LoRA adapter at its strength, as the Token panel runs it",
        "带着 LoRA 适配器（按当前强度），与词元面板运行的一样",
    ),
    ("The same tokens through the base model, adapter off", "同样的词元走一遍基座模型，适配器关闭"),
];
