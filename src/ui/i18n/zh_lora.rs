//! 中文 for the strings of `src/ui/lora*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("LoRA on {}", "{} 上的 LoRA"),
    (
        "LoRA freezes W and learns two thin matrices: A (r × in) and B (out × r). The layer computes W·x + (α/r)·B·A·x, so the update ΔW = (α/r)·B·A has rank at most r.",
        "LoRA 冻结 W，只学习两个细长的矩阵：A（r × in）和 B（out × r）。该层计算 W·x + (α/r)·B·A·x，所以更新量 ΔW = (α/r)·B·A 的秩至多为 r。",
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
    ("‖ΔW‖ / ‖W‖ per adapted module", "各适配模块的 ‖ΔW‖ / ‖W‖"),
    ("Where the adapter changes the model most", "适配器对模型改动最大的地方"),
    ("computing ΔW = B·A and its singular values on a worker…", "正在后台线程计算 ΔW = B·A 及其奇异值…"),
];
