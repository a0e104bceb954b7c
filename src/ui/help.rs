//! The "What am I looking at?" note at the top of each panel: the course concept behind it
//! (state_dict, Linear [out, in], RMSNorm, GQA, SwiGLU, LoRA rank, gating, temperature, top-p)
//! in a few sentences, in both languages side by side. Closed by default; egui remembers
//! it open between runs. Unlike short labels (English-keyed `tr`), a note is keyed by its
//! panel, so its long text is written once per language.

use egui::RichText;

use super::i18n::{Lang, lang, tr};

pub struct Note {
    pub panel: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
}

pub const NOTES: &[Note] = &[
    Note {
        panel: "bits",
        en: "A floating-point number is stored as three bit fields: a sign s, an exponent field e and a \
            mantissa (fraction) m. For a normal number value = (−1)^s · 2^(e − bias) · 1.m, where the \
            leading 1 is implicit; when the exponent field is all zeros the number is subnormal, 0.m · 2^(1 \
            − bias), which fills the gap down to zero with fewer significant bits. FP32 and BF16 share the \
            same 8-bit exponent, so BF16 has FP32's range but only 7 mantissa bits (about 2–3 significant \
            decimal digits); FP16 has a 5-bit exponent (largest value 65504, anything larger overflows to ∞) \
            but 10 mantissa bits, so it is more precise inside its smaller range. A cast rounds to the \
            nearest value the format can hold, and a tie goes to the one whose last mantissa bit is 0 \
            (round-to-nearest-even).",
        zh: "浮点数以三个比特字段存储：符号位 s、指数字段 e 和尾数（小数部分）m。规格化数的值为 \
            value = (−1)^s · 2^(e − bias) · 1.m，其中开头的 1 \
            是隐含的、不占存储位；指数字段全为 0 时该数是非规格化数（subnormal），值为 0.m \
            · 2^(1 − bias)，它以更少的有效位填补了最小规格化数到 0 之间的空隙。FP32 与 \
            BF16 使用相同的 8 位指数，所以 BF16 的表示范围与 FP32 相同，但只有 7 \
            位尾数（约 2–3 位有效十进制数字）；FP16 只有 5 位指数（最大值 \
            65504，更大的数会溢出为 ∞），但有 10 \
            位尾数，因此在它较小的范围内精度更高。类型转换会舍入到该格式能表示的最近的值；恰好位于两者正中间\
            时，取最后一位尾数为 0 的那个（向最近偶数舍入，round-to-nearest-even）。",
    },
    Note {
        panel: "cast",
        en: "Casting a whole tensor rounds every value to the nearest number the target format can hold. The \
            relative error |cast − stored| / |stored| measures that rounding: with m mantissa bits it is at \
            most 2^−(m+1) for normal numbers (about 0.4% for BF16, 0.05% for FP16). Values above the largest \
            finite value overflow (to ±∞, or clamped to ±448 in FP8 E4M3); values below the smallest normal \
            value become subnormal and lose precision, and the tiniest underflow to zero. The exponent \
            histogram shows why: BF16 covers every exponent an FP32 weight can have, while FP16's 5-bit \
            exponent only reaches about 2^−24 … 2^15. The GGML block formats work differently: 32 values \
            share one F16 scale d = max|x| / 127 (Q8_0) or / 8 (Q4_0), or a scale and a minimum (Q4_1), and \
            each value keeps only a small integer code. So the error depends on the block's largest value, \
            not on the value itself: small weights beside a large one lose the most, and bits per weight \
            count the scales too (Q4_0: 18 bytes for 32 weights = 4.5).",
        zh: "把整个张量转换成另一种格式时，每个值都会舍入到目标格式能表示的最近的数。相对误差 |cast − \
            stored| / |stored| 衡量这种舍入：对于规格化数，若尾数有 m 位，它最多为 \
            2^−(m+1)（BF16 约 0.4%，FP16 约 \
            0.05%）。大于最大有限值的值会上溢（变成 ±∞，在 FP8 E4M3 中则被截断到 \
            ±448）；小于最小规格化数的值会变成非规格化数并损失精度，最小的那些则下溢为 \
            0。指数直方图说明了原因：BF16 覆盖 FP32 权重可能出现的所有指数，而 FP16 的 5 \
            位指数只能覆盖约 2^−24 … 2^15。GGML 的块格式则不同：32 个值共用一个 F16 缩放因子 d = \
            max|x| / 127（Q8_0）或 / 8（Q4_0），或一个缩放因子加一个最小值（Q4_1），每个值只保留一个小整数编码。\
            因此误差取决于块中最大的那个值，而不是该值本身：与大权重同块的小权重损失最多；每个权重的比特数也\
            把缩放因子算在内（Q4_0：32 个权重占 18 字节 = 4.5 位）。",
    },
    Note {
        panel: "blocks",
        en: "llama.cpp stores most weights in blocks: 32 weights (256 for the K-quants) share one or two \
            F16 numbers, and each weight keeps only a small integer code. Q4_1 keeps a scale d and a \
            minimum m, and weight j is d·q_j + m with q_j between 0 and 15; Q8_0 keeps d and an 8-bit q, \
            w = d·q. The K-quants add a level: a 256-weight super-block has d (and dmin), and each of its \
            sub-blocks has a 6-bit (or 4-bit) scale and min of its own, so Q4_K is w = d·scale·q − \
            dmin·min. A block's scale follows its largest weight, so a block holding one large weight \
            rounds all its small ones coarsely: the block with the largest scale is where to look first.",
        zh: "llama.cpp 把大多数权重按块存储：每 32 个权重（K 系列量化为 256 个）共用一到两个 F16 \
            数，每个权重只保留一个小整数编码。Q4_1 保存缩放因子 d 和最小值 m，第 j 个权重为 d·q_j + m，q_j \
            在 0 到 15 之间；Q8_0 保存 d 和一个 8 位的 q，w = d·q。K 系列量化多了一层：256 个权重组成的超级块有 \
            d（和 dmin），它的每个子块还有自己的 6 位（或 4 位）缩放因子和最小值，所以 Q4_K 为 w = d·scale·q − \
            dmin·min。块的缩放因子取决于块中最大的权重，所以一个含有大权重的块会把其中所有小权重都舍入得很粗：\
            缩放因子最大的块最值得先看。",
    },
    Note {
        panel: "overview",
        en: "A checkpoint folder holds config.json (the hyperparameters below, which fix every tensor's \
            shape) and one or more .safetensors files (the weights, stored by their state_dict names). From \
            the config alone the app rebuilds the module tree that PyTorch's print(model) would show. Hover \
            a name for what it controls.",
        zh: "一个模型检查点文件夹包含 \
            config.json（下面这些超参数，它们决定了每个张量的形状）和一个或多个 \
            .safetensors 文件（权重，按 state_dict \
            名称存储）。仅凭配置，本程序就能重建 PyTorch 的 print(model) \
            会显示的模块树。把鼠标悬停在名称上，可查看它控制什么。",
    },
    Note {
        panel: "weights",
        en: "These statistics are computed over every stored value of the selection, read straight from the \
            safetensors bytes: mean and std (population, ddof = 0) tell the typical size of the weights, and \
            abs max (the largest |x|) decides whether a cast to a narrower dtype overflows: FP16 tops out at \
            65504 and FP8 E4M3 at 448, while BF16 keeps FP32's range but has fewer mantissa bits. The \
            histogram splits [min, max] into equal-width bins exactly as numpy.histogram does, so its counts \
            match numpy's to the element; log counts makes the rare values in the tails visible. For a \
            tensor, click a bar to list the first values in that bin and open their bits.",
        zh: "这些统计量基于所选内容的全部存储值计算，直接读取 safetensors \
            文件中的字节：均值和标准差（总体标准差，ddof = 0）反映权重的典型大小；绝对值最大（最大的 \
            |x|）决定转换到更窄的数据类型时是否溢出：FP16 最大只能表示 65504，FP8 E4M3 \
            最大为 448，而 BF16 保留了 FP32 的数值范围，只是尾数位更少。直方图把 [min, \
            max] 分成等宽的区间，与 numpy.histogram \
            的做法完全相同，因此每个区间的计数与 numpy \
            分毫不差；“对数计数”能让尾部少见的数值显现出来。对于单个张量，点击某个柱子可列出该区间中的前若\
            干个值，并查看它们的比特。",
    },
    Note {
        panel: "attention",
        en: "Each row is a query token, each column a key token before it: the colour is how much of its \
            attention the row's token gives to the column's, after the softmax (each row adds up to 1; nothing \
            above the diagonal, because a token cannot look ahead). Every layer has several heads that learn \
            different habits. Two are famous: a previous-token head puts its weight just left of the diagonal \
            (induction heads build on it to copy what followed last time), and an attention sink parks most \
            weight on the first token when the head has nothing useful to attend to. With grouped-query \
            attention several query heads share one key/value head; they are shown as query heads.",
        zh: "每一行是一个查询 token，每一列是它之前的一个键 token：颜色表示该行的 token 在 softmax 之后把多少注意力\
            分给该列的 token（每行之和为 1；对角线以上为空，因为 token 不能看到后面）。每层有多个头，各自学到不同的\
            习惯。有两种很有名：前一个 token 头把权重放在对角线左边紧挨的位置（归纳头在它的基础上复制上次紧随其后的\
            内容），注意力汇聚则在没有值得关注的内容时把大部分权重停在第一个 token 上。使用分组查询注意力时，几个查询\
            头共享一个键/值头；这里按查询头显示。",
    },
    Note {
        panel: "lens",
        en: "Between layers every token is one vector of hidden_size numbers, the residual stream: each layer \
            adds its attention and MLP output to it. The logit lens reads that vector out early: it applies the \
            final norm and lm_head to the residual after layer l, as if the remaining layers were skipped. Going \
            down the table you can watch the answer form: early layers predict generic tokens, later ones the \
            right one, and the last row is exactly the Token panel's distribution. The heat map below shows the \
            residual's length per layer and token; it grows through the layers.",
        zh: "在层与层之间，每个 token 都是一个 hidden_size 维的向量，即残差流：每一层把自己的注意力和 MLP 输出加到它上面。\
            Logit 透镜提前读出这个向量：对第 l 层之后的残差应用最后的归一化和 lm_head，就好像跳过了剩下的层。沿着表格往下\
            看，可以看到答案逐渐形成：前面的层预测一些常见的 token，后面的层预测正确的那个，最后一行正好等于 Token 概率\
            面板的分布。下面的热图显示每层、每个 token 的残差长度，它随层数增长。",
    },
    Note {
        panel: "compare",
        en: "A layer sweep puts the same tensor of every decoder layer side by side: its mean, its spread (std), \
            its largest |x|, its excess kurtosis (0 for a bell curve; large when a few weights are far out) and the \
            share of outliers beyond 6 std. Layers that behave differently stand out — often the first and last \
            ones, which is one reason quantization keeps them at higher precision. The checkpoint diff compares \
            two models tensor by tensor: after fine-tuning most tensors change a little (relative change around \
            1e-3), a LoRA merge changes only the adapted ones, and a bf16 copy changes almost every number by at \
            most half a bf16 step.",
        zh: "层扫描把每个解码器层中的同一个张量并排放在一起：均值、离散程度（std）、最大 |x|、超额峰度\
            （钟形分布为 0；少数权重离得很远时会很大）以及超过 6 个标准差的离群值比例。表现不同的层会被标出——\
            通常是第一层和最后一层，这也是量化时常让它们保留更高精度的原因之一。检查点对比逐个张量比较两个模型：\
            微调后大多数张量只变化一点（相对变化约 1e-3），合并 LoRA 只改变被适配的张量，而 bf16 副本几乎改变\
            每一个数，但幅度至多半个 bf16 间隔。",
    },
    Note {
        panel: "children",
        en: "Each bar is one direct child of this module and the number of parameters inside it. In a decoder \
            layer the MLP usually holds several times as many as attention, and with grouped-query attention \
            (GQA) k_proj and v_proj are smaller than q_proj and o_proj. In a mixture-of-experts layer the \
            experts hold almost everything, although each token only runs top-k of them.",
        zh: "每个柱子是该模块的一个直接子模块，高度是其中的参数数量。在解码器层中，MLP \
            的参数通常是注意力的好几倍；使用分组查询注意力（GQA）时，k_proj 和 v_proj 比 \
            q_proj 和 o_proj 小。在混合专家层中，几乎所有参数都在专家里，尽管每个 token \
            只运行其中 top-k 个。",
    },
    Note {
        panel: "lora",
        en: "LoRA keeps the pretrained weight W frozen and trains two small matrices instead: A with shape \
            [r, in_features] and B with shape [out_features, r]. The layer uses W + ΔW with ΔW = (α/r)·B·A; \
            B starts at zero, so ΔW starts at 0 and training begins exactly from the original model. Because \
            ΔW passes through only r dimensions its rank is at most r: it can change W in at most r \
            directions, which is why the singular value plot shows at most r non-zero values. The factor α/r \
            sets how strongly ΔW is applied; dividing by r keeps the update's size comparable when you try \
            another rank.",
        zh: "LoRA 保持预训练权重 W 冻结不变，转而训练两个小矩阵：形状为 [r, \
            in_features] 的 A 和形状为 [out_features, r] 的 B。该层使用 \
            W + ΔW，其中 ΔW = (α/r)·B·A；B 初始化为零，所以 ΔW 一开始为 \
            0，训练恰好从原模型出发。由于 ΔW 只经过 r 个维度，它的秩至多为 r：它最多只能在 r \
            个方向上改变 W，所以奇异值图中至多只有 r 个非零值。缩放系数 α/r 决定 ΔW \
            作用的强弱；除以 r 使得换用其他秩时，更新量的大小仍然可以相互比较。",
    },
    Note {
        panel: "lora-model-wide",
        en: "Each bar is one module the adapter changes: ‖ΔW‖_F / ‖W‖_F, the Frobenius norm of its LoRA \
            update divided by that of the frozen weight (the square root of the sum of all squared entries). \
            It shows where fine-tuning changed the model most; a ratio of 0.01 means the update is about 1% \
            the size of the weight.",
        zh: "每个柱子对应适配器修改的一个模块：‖ΔW‖_F / ‖W‖_F，即该模块 LoRA 更新量的 \
            Frobenius 范数（所有元素平方和的平方根）除以冻结权重的 Frobenius \
            范数。它显示微调在哪些地方对模型改动最大；比值 0.01 表示更新量大约是权重大小的 1%。",
    },
    Note {
        panel: "routing",
        en: "In a mixture-of-experts (MoE) layer the MLP is replaced by several experts and a gate (router): \
            a Linear whose weight has shape [num_experts, hidden], so each token gets one score per expert, \
            and softmax turns the scores into the probabilities of the heatmap. Only the top-k experts run \
            for a token, and their outputs are added, weighted by their gate probabilities (renormalised to \
            sum to 1 when norm_topk_prob is set; Mixtral always does). Training adds a load-balancing loss \
            so that every expert gets its share of tokens: a dormant expert that receives none still costs \
            memory but does no work, and since no gradient reaches it, it stops learning. Qwen2-MoE also has \
            a shared expert that every token goes through, scaled by its own sigmoid gate.",
        zh: "在混合专家（MoE）层中，MLP 被若干个专家和一个门控（路由器）取代：门控是一个 \
            Linear，权重形状为 [num_experts, hidden]，因此每个 token \
            对每个专家都得到一个分数，softmax 再把这些分数变成热力图中的概率。每个 token \
            只运行 top-k 个专家，它们的输出按门控概率加权相加（设置了 norm_topk_prob \
            时先重新归一化，使权重之和为 1；Mixtral \
            总是这样做）。训练时会加上负载均衡损失，让每个专家都分到一部分 token：一个分不到任何 \
            token \
            的休眠专家仍然占用内存却不干活，而且没有梯度流到它，它也就不再学习。Qwen2-MoE \
            还有一个共享专家，每个 token 都会经过它，其输出由它自己的 sigmoid 门控缩放。",
    },
    Note {
        panel: "tokens",
        en: "The last layer (lm_head) gives one score, a logit, per vocabulary entry; softmax turns the \
            logits into probabilities that add up to 1 (the raw column). Before the draw they are reshaped \
            in this order: repetition penalty, then temperature (divides the logits: T < 1 sharpens the \
            distribution, T > 1 flattens it, T = 0 is greedy, always the top token), top-k (keeps the k most \
            likely tokens), top-p (keeps the smallest set of top tokens whose cumulative probability reaches \
            p), min-p, and softmax again. The draw takes a random number made from the seed and the step, so \
            the same seed and settings replay the same text. Thanks to the KV cache each step runs the model \
            only on the new token, and moving a slider only re-samples the cached logits: the model is not \
            run again.",
        zh: "最后一层（lm_head）为词表中的每个条目输出一个分数，即 logit；softmax 把 \
            logits 变成总和为 1 \
            的概率（“原始”一列）。抽样之前，概率按以下顺序被重新调整：先是重复惩罚，然后是温度（logit\
            s 除以 T：T < 1 让分布更尖锐，T > 1 让分布更平坦，T = 0 \
            即贪心解码，总是选概率最高的 token）、top-k（只保留概率最高的 k 个 \
            token）、top-p（从概率最高的 token 起，保留累积概率达到 p \
            的最小集合）、min-p，最后再做一次 \
            softmax。抽样用的随机数由随机种子和步数生成，所以种子和设置相同时会重现同样的文本。有了 \
            KV 缓存，每一步只需对新 token 运行模型；拖动滑块只是在缓存的 logits \
            上重新采样，不会重新运行模型。",
    },
    Note {
        panel: "tree",
        en: "This is the module tree as PyTorch's print(model) prints it: each line is a submodule with its \
            class and settings, and the grey number is how many parameters it holds (a tied weight counts in \
            each module that uses it). Identical consecutive layers are folded into one line like (0-29): 30 \
            x …. Under each module are its tensors: a Linear weight has shape [out_features, in_features], \
            and with grouped-query attention (GQA) k_proj and v_proj have fewer output rows than q_proj, \
            because several query heads share one key/value head. Tick state_dict for the flat list of \
            dotted names (model.layers.0.self_attn.q_proj.weight) exactly as the safetensors files store \
            them; stored bytes = elements × bytes per element of the dtype (2 for BF16, 4 for FP32).",
        zh: "这是模型的模块树，与 PyTorch 的 print(model) \
            打印的一样：每行是一个子模块及其类名和设置，灰色数字是它包含的参数数量（绑定的权重在每个使用它的\
            模块中都计一次）。连续相同的层折叠成一行，如 (0-29): 30 x \
            …。每个模块下面列出它自己的张量：Linear 的权重形状为 [out_features, \
            in_features]；使用分组查询注意力（GQA）时，k_proj 和 v_proj \
            的输出行数比 q_proj 少，因为多个查询头共享一个键/值头。勾选 state_dict \
            可查看按点分名称（如 \
            model.layers.0.self_attn.q_proj.weight）排列的扁平列表，与 \
            safetensors 文件中存储的完全一致；存储字节数 = 元素个数 × \
            该数据类型每个元素的字节数（BF16 为 2，FP32 为 4）。",
    },
];

/// The note for `panel` in the current language.
pub fn text(panel: &str) -> &'static str {
    let note = NOTES.iter().find(|n| n.panel == panel);
    match (note, lang()) {
        (Some(n), Lang::Zh) => n.zh,
        (Some(n), Lang::En) => n.en,
        (None, _) => "",
    }
}

pub fn note(ui: &mut egui::Ui, panel: &str) {
    debug_assert!(NOTES.iter().any(|n| n.panel == panel), "no note for {panel}");
    egui::CollapsingHeader::new(RichText::new(tr("What am I looking at?")).italics())
        .id_salt(("what-am-i-looking-at", panel))
        .show(ui, |ui| {
            ui.label(text(panel));
        });
}

/// How a family's tree lines map to the names its own course uses, said above the tree.
pub fn family_note(family: crate::arch::Family) -> Option<&'static str> {
    use crate::arch::Family;
    match family {
        Family::MiniMindLm => Some(tr(
            "This tree is MiniMind's own print(model). Each line is one entry of model.named_modules(): `(layers): ModuleList` is `layers`, its `(0-1): 2 x MiniMindBlock` stands for `layers.0` and `layers.1`, and `(wq): Linear` inside `(attention)` is `layers.0.attention.wq`, whose weight is the state_dict key `layers.0.attention.wq.weight`. After apply_lora, every square Linear gains a `(lora): LoRA` child: `layers.0.attention.wq.lora.A` and `.lora.B` in named_modules().",
        )),
        Family::MiniMind => Some(tr(
            "This tree is MiniMind's own print(model). Each line is one entry of model.named_modules(): `model.layers.0.self_attn.q_proj` is `(q_proj): Linear` inside `(self_attn)` of block 0, and its weight is the state_dict key `model.layers.0.self_attn.q_proj.weight`.",
        )),
        _ => None,
    }
}

/// A short "what am I looking at" for the common module kinds.
pub fn teaching_note(node: &crate::arch::Node) -> String {
    let c = node.class_name.as_str();
    let note = if c == "Linear" {
        tr("Linear: y = x·Wᵀ (+ b). The weight is stored as [out_features, in_features]: one row per output.")
    } else if c == "Embedding" {
        tr(
            "Embedding: a lookup table, one row of hidden_size numbers per token id. padding_idx is the pad token's row.",
        )
    } else if c.ends_with("RMSNorm") {
        tr("RMSNorm: x / sqrt(mean(x²) + eps) · weight. No mean subtraction and no bias, unlike LayerNorm.")
    } else if c.ends_with("RotaryEmbedding") {
        tr(
            "Rotary position embedding (RoPE): rotates each pair of dimensions of the query and key vectors by an angle proportional to the token's position, a different frequency per pair, so q·k depends on the distance between tokens. No weights.",
        )
    } else if c.contains("Attention") {
        tr(
            "Self-attention: q/k/v projections, softmax(q·kᵀ/√d)·v per head, then o_proj. Fewer k/v heads than q heads = grouped-query attention (GQA).",
        )
    } else if c.contains("SparseMoeBlock") {
        tr(
            "Mixture of experts: the router (the gate Linear) scores every expert for each token, only the top-k experts run, and their outputs are added up weighted by the gate's probabilities.",
        )
    } else if c.ends_with("MLP") {
        tr(
            "SwiGLU MLP: down_proj(act(gate_proj(x)) ⊙ up_proj(x)), where act is SiLU and ⊙ is the element-wise product. Mixtral's experts call them w1 (gate), w3 (up), w2 (down).",
        )
    } else if c == "ModuleList" {
        tr("A list of modules; identical consecutive entries are printed once as `(a-b): n x …`.")
    } else if c.ends_with("Activation") {
        tr("The activation function inside the MLP (SiLU = x·sigmoid(x)). No weights.")
    } else if c.ends_with("DecoderLayer") {
        tr("One transformer block: norm → attention → residual add, then norm → MLP → residual add.")
    } else {
        ""
    };
    if note.is_empty() { node.path.clone() } else { format!("{}\n{note}", node.path) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_panel_has_one_note_in_both_languages() {
        let mut seen = std::collections::HashSet::new();
        for n in NOTES {
            assert!(seen.insert(n.panel), "two notes for {}", n.panel);
            assert!(n.en.len() > 100 && n.zh.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{}", n.panel);
        }
    }
}
