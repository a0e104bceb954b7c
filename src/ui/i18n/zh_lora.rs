//! 中文 for the strings of `src/ui/lora*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("LoRA on {}", "{} 上的 LoRA"),
    (
        "LoRA freezes W and learns two thin matrices: A (r × in) and B (out × r). The layer computes W·x + (α/r)·B·A·x, so the update ΔW = (α/r)·B·A has rank at most r.",
        "LoRA 冻结 W，只学习两个细长的矩阵：A（r × in）和 B（out × r）。该层计算 W·x + (α/r)·B·A·x，所以更新量 ΔW = (α/r)·B·A 的秩至多为 r。",
    ),
    (
        "LoRA keeps the pretrained weight W frozen and trains two small matrices instead: A with shape [r, in_features] and B with shape [out_features, r]. The layer uses W + ΔW with ΔW = (α/r)·B·A; B starts at zero, so ΔW starts at 0 and training begins exactly from the original model. Because ΔW passes through only r dimensions its rank is at most r: it can change W in at most r directions, which is why the singular value plot shows at most r non-zero values. The factor α/r sets how strongly ΔW is applied; dividing by r keeps the update's size comparable when you try another rank.",
        "LoRA 保持预训练权重 W 冻结不变，转而训练两个小矩阵：形状为 [r, in_features] 的 A 和形状为 [out_features, r] 的 B。该层使用 W + ΔW，其中 ΔW = (α/r)·B·A；B 初始化为零，所以 ΔW 一开始为 0，训练恰好从原模型出发。由于 ΔW 只经过 r 个维度，它的秩至多为 r：它最多只能在 r 个方向上改变 W，所以奇异值图中至多只有 r 个非零值。缩放系数 α/r 决定 ΔW 作用的强弱；除以 r 使得换用其他秩时，更新量的大小仍然可以相互比较。",
    ),
    ("rank r", "秩 r"),
    ("Inner size of A and B: ΔW has at most r non-zero singular values", "A 和 B 的内部维度：ΔW 至多有 r 个非零奇异值"),
    ("α, scaling", "α，缩放系数"),
    (
        "ΔW = scaling · B·A with scaling = α / r (α / √r with rsLoRA)",
        "ΔW = scaling · B·A，其中 scaling = α / r（使用 rsLoRA 时为 α / √r）",
    ),
    ("Frobenius norm of the frozen weight", "冻结权重的 Frobenius 范数"),
    ("Frobenius norm of the update", "更新量的 Frobenius 范数"),
    ("ratio", "比值"),
    ("‖ΔW‖ / ‖W‖: how large the change is relative to the weight", "‖ΔW‖ / ‖W‖：相对于权重本身，改变量有多大"),
    ("strength", "强度"),
    (
        "What the engine multiplies ΔW by (Token probabilities tab)",
        "推理引擎给 ΔW 乘上的系数（见「Token 概率」标签页）",
    ),
    ("heatmaps on one colour scale (±{}): red > 0, blue < 0", "热力图使用同一色标（±{}）：红色 > 0，蓝色 < 0"),
    (
        "Each cell is the mean of a block of weights: rows are output features, columns input features",
        "每个格子是一块权重的平均值：行对应输出特征，列对应输入特征",
    ),
    ("ΔW, own scale ±{}", "ΔW，单独色标 ±{}"),
    ("W and W + ΔW", "W 与 W + ΔW"),
    ("Histograms of the weight before and after adding the update", "加上更新量之前和之后的权重直方图"),
    ("Histogram of the update's values", "更新量各元素的直方图"),
    ("singular values of ΔW", "ΔW 的奇异值"),
    (
        "A full-rank update would have min(out, in) of them; LoRA's has at most r: the low-rank idea made visible",
        "满秩的更新会有 min(out, in) 个非零奇异值；LoRA 的更新至多只有 r 个：低秩思想一目了然",
    ),
    ("index (largest first)", "序号（从大到小）"),
    (
        "Each bar is one module the adapter changes: ‖ΔW‖_F / ‖W‖_F, the Frobenius norm of its LoRA update divided by that of the frozen weight (the square root of the sum of all squared entries). It shows where fine-tuning changed the model most; a ratio of 0.01 means the update is about 1% the size of the weight.",
        "每个柱子对应适配器修改的一个模块：‖ΔW‖_F / ‖W‖_F，即该模块 LoRA 更新量的 Frobenius 范数（所有元素平方和的平方根）除以冻结权重的 Frobenius 范数。它显示微调在哪些地方对模型改动最大；比值 0.01 表示更新量大约是权重大小的 1%。",
    ),
    ("‖ΔW‖ / ‖W‖ per adapted module", "各适配模块的 ‖ΔW‖ / ‖W‖"),
    ("Where the adapter changes the model most", "适配器对模型改动最大的地方"),
];
