//! 中文 for the strings of `src/ui/tree*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("Filter", "筛选"),
    ("filter, e.g. layers.1.mlp", "筛选，例如 layers.1.mlp"),
    ("Shows only modules and tensors whose dotted name contains this text", "只显示点分名称中包含此文本的模块和张量"),
    ("Clear the filter", "清除筛选"),
    (
        "The flat list of stored tensor names (state_dict() keys), as the safetensors files hold them",
        "存储的张量名称（state_dict() 的键）的扁平列表，与 safetensors 文件中保存的一致",
    ),
    ("nothing matches “{}”", "没有与“{}”匹配的内容"),
    ("{} experts, top-{}", "{} 个专家，top-{}"),
    (
        "{} modules whose print(model) text is identical are folded into one, as PyTorch prints them. Click to inspect instance {}; expand to pick another.",
        "{} 个 print(model) 文本完全相同的模块折叠成一行，与 PyTorch 的打印方式一致。点击查看实例 {}；展开可选择其他实例。",
    ),
    ("showing", "显示"),
    ("The tensors below belong to this instance of the repeated module", "下面的张量属于重复模块的这个实例"),
    ("({} each)", "（每个 {}）"),
    ("  → tied to {}", "  → 绑定到 {}"),
    ("{}\nClick for statistics and the histogram of its values.", "{}\n点击查看它的统计量和数值直方图。"),
    ("{} of {} tensors", "{} / {} 个张量"),
    (
        "Linear: y = x·Wᵀ (+ b). The weight is stored as [out_features, in_features]: one row per output.",
        "Linear：y = x·Wᵀ (+ b)。权重按 [out_features, in_features] 存储：每个输出对应一行。",
    ),
    (
        "Embedding: a lookup table, one row of hidden_size numbers per token id. padding_idx is the pad token's row.",
        "Embedding：一张查找表，每个 token id 对应一行 hidden_size 个数。padding_idx 是填充 token 所在的行。",
    ),
    (
        "RMSNorm: x / sqrt(mean(x²) + eps) · weight. No mean subtraction and no bias, unlike LayerNorm.",
        "RMSNorm：x / sqrt(mean(x²) + eps) · weight。与 LayerNorm 不同，它不减去均值，也没有偏置。",
    ),
    (
        "Rotary position embedding (RoPE): rotates each pair of dimensions of the query and key vectors by an angle proportional to the token's position, a different frequency per pair, so q·k depends on the distance between tokens. No weights.",
        "旋转位置编码（RoPE）：把查询向量和键向量的每一对维度旋转一个与 token 位置成正比的角度，每对维度的频率不同，因此 q·k 只取决于两个 token 之间的距离。没有权重。",
    ),
    (
        "Self-attention: q/k/v projections, softmax(q·kᵀ/√d)·v per head, then o_proj. Fewer k/v heads than q heads = grouped-query attention (GQA).",
        "自注意力：先做 q/k/v 投影，每个头计算 softmax(q·kᵀ/√d)·v，再经过 o_proj。k/v 头少于 q 头即为分组查询注意力（GQA）。",
    ),
    (
        "Mixture of experts: the router (the gate Linear) scores every expert for each token, only the top-k experts run, and their outputs are added up weighted by the gate's probabilities.",
        "混合专家（MoE）：路由器（门控 Linear）为每个 token 给所有专家打分，只运行得分最高的 top-k 个专家，它们的输出按门控概率加权求和。",
    ),
    (
        "SwiGLU MLP: down_proj(act(gate_proj(x)) ⊙ up_proj(x)), where act is SiLU and ⊙ is the element-wise product. Mixtral's experts call them w1 (gate), w3 (up), w2 (down).",
        "SwiGLU MLP：down_proj(act(gate_proj(x)) ⊙ up_proj(x))，其中 act 为 SiLU，⊙ 为逐元素乘积。Mixtral 的专家把它们叫作 w1（gate）、w3（up）、w2（down）。",
    ),
    (
        "A list of modules; identical consecutive entries are printed once as `(a-b): n x …`.",
        "模块列表；连续相同的条目只打印一次，形如 `(a-b): n x …`。",
    ),
    (
        "The activation function inside the MLP (SiLU = x·sigmoid(x)). No weights.",
        "MLP 内部的激活函数（SiLU = x·sigmoid(x)）。没有权重。",
    ),
    (
        "One transformer block: norm → attention → residual add, then norm → MLP → residual add.",
        "一个 Transformer 块：归一化 → 注意力 → 残差相加，然后归一化 → MLP → 残差相加。",
    ),
    ("Modules", "模块"),
    (
        "This tree is MiniMind's own print(model). Each line is one entry of model.named_modules(): `(layers): ModuleList` is `layers`, its `(0-1): 2 x MiniMindBlock` stands for `layers.0` and `layers.1`, and `(wq): Linear` inside `(attention)` is `layers.0.attention.wq`, whose weight is the state_dict key `layers.0.attention.wq.weight`. After apply_lora, every square Linear gains a `(lora): LoRA` child: `layers.0.attention.wq.lora.A` and `.lora.B` in named_modules().",
        "这棵树就是 MiniMind 自己的 print(model)。每一行对应 model.named_modules() 的一项：`(layers): ModuleList` 是 `layers`，其中的 `(0-1): 2 x MiniMindBlock` 代表 `layers.0` 和 `layers.1`，`(attention)` 里的 `(wq): Linear` 是 `layers.0.attention.wq`，它的权重就是 state_dict 的键 `layers.0.attention.wq.weight`。执行 apply_lora 之后，每个方阵 Linear 多出一个 `(lora): LoRA` 子模块：在 named_modules() 中是 `layers.0.attention.wq.lora.A` 和 `.lora.B`。",
    ),
    (
        "This tree is MiniMind's own print(model). Each line is one entry of model.named_modules(): `model.layers.0.self_attn.q_proj` is `(q_proj): Linear` inside `(self_attn)` of block 0, and its weight is the state_dict key `model.layers.0.self_attn.q_proj.weight`.",
        "这棵树就是 MiniMind 自己的 print(model)。每一行对应 model.named_modules() 的一项：`model.layers.0.self_attn.q_proj` 是第 0 个块的 `(self_attn)` 里的 `(q_proj): Linear`，它的权重就是 state_dict 的键 `model.layers.0.self_attn.q_proj.weight`。",
    ),
    ("The module tree as print(model) shows it", "与 print(model) 输出一致的模块树"),
];
