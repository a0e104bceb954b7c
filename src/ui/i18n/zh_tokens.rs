//! 中文 for the strings of `src/ui/tokens*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("loading weights…", "正在加载权重…"),
    ("reading the prompt…", "正在读取提示词…"),
    (
        "the engine hit an internal error; load the model again to continue",
        "推理引擎遇到内部错误；请重新加载模型后继续",
    ),
    (
        "Inference is not available for this architecture: only its tensors can be inspected.",
        "该架构暂不支持推理：只能查看它的张量。",
    ),
    ("removed by top-k", "被 top-k 移除"),
    ("removed by top-p", "被 top-p 移除"),
    ("removed by min-p", "被 min-p 移除"),
    ("greedy keeps only the top token", "贪心解码只保留概率最高的 token"),
    (
        "The last layer (lm_head) gives one score, a logit, per vocabulary entry; softmax turns the logits into \
         probabilities that add up to 1 (the raw column). Before the draw they are reshaped in this order: \
         repetition penalty, then temperature (divides the logits: T < 1 sharpens the distribution, T > 1 flattens \
         it, T = 0 is greedy, always the top token), top-k (keeps the k most likely tokens), top-p (keeps the \
         smallest set of top tokens whose cumulative probability reaches p), min-p, and softmax again. The draw \
         takes a random number made from the seed and the step, so the same seed and settings replay the same \
         text. Thanks to the KV cache each step runs the model only on the new token, and moving a slider only \
         re-samples the cached logits: the model is not run again.",
        "最后一层（lm_head）为词表中的每个条目输出一个分数，即 logit；softmax 把 logits 变成总和为 1 的概率\
         （“原始”一列）。抽样之前，概率按以下顺序被重新调整：先是重复惩罚，然后是温度（logits 除以 T：\
         T < 1 让分布更尖锐，T > 1 让分布更平坦，T = 0 即贪心解码，总是选概率最高的 token）、top-k（只保留\
         概率最高的 k 个 token）、top-p（从概率最高的 token 起，保留累积概率达到 p 的最小集合）、min-p，\
         最后再做一次 softmax。抽样用的随机数由随机种子和步数生成，所以种子和设置相同时会重现同样的文本。\
         有了 KV 缓存，每一步只需对新 token 运行模型；拖动滑块只是在缓存的 logits 上重新采样，不会重新运行模型。",
    ),
    (
        "Open a model folder to see its next-token probabilities.",
        "打开一个模型文件夹，查看它对下一个 token 的预测概率。",
    ),
    ("Next-token probabilities · {}", "下一个 token 的概率 · {}"),
    ("Prompt", "提示词"),
    ("chat template", "对话模板"),
    (
        "Wrap the prompt as a user message with the tokenizer's chat template (tokenizer_config.json)",
        "用分词器的对话模板（tokenizer_config.json）把提示词包装成一条用户消息",
    ),
    ("Run prompt", "运行提示词"),
    ("Tokenize the prompt and run the model over it", "把提示词切分成 token，并在其上运行模型"),
    ("Type a prompt and press Run prompt.", "输入提示词，然后点击“运行提示词”。"),
    ("Step ▶", "单步 ▶"),
    ("Draw one token with the settings below (Space)", "按下面的设置抽取一个 token（空格键）"),
    ("Generate", "生成"),
    ("Draw this many tokens, one step after another", "一步接一步地抽取这么多个 token"),
    ("tokens:", "token 数："),
    ("Stop", "停止"),
    ("Stop generating after the current step", "在当前这一步之后停止生成"),
    ("◀ Step back", "◀ 后退一步"),
    ("Forget the last token (Backspace)", "去掉最后一个 token（退格键）"),
    ("Reset", "重置"),
    ("Back to the prompt alone", "回到只有提示词的状态"),
    ("forward passes: {}", "前向传播次数：{}"),
    (
        "How many times the model has run: once for the prompt, then once per new token",
        "模型运行了多少次：提示词一次，之后每个新 token 一次",
    ),
    ("LoRA strength", "LoRA 强度"),
    (
        "The engine adds strength × ΔW to every adapted weight: 0 = base model, 1 = as trained, 2 = exaggerated",
        "引擎在每个被适配的权重上加上 强度 × ΔW：0 = 基座模型，1 = 训练时的效果，2 = 夸大的效果",
    ),
    ("adapter off", "适配器已关闭"),
    ("switch off", "关闭"),
    ("As trained", "按训练时的强度"),
    ("with the adapter vs without", "有适配器与没有适配器的对比"),
    (
        "The same prompt and step, run once with ΔW added and once without",
        "同样的提示词和步骤，一次加上 ΔW 运行，一次不加",
    ),
    ("token", "词元"),
    ("base", "基座"),
    ("adapted", "适配后"),
    ("change", "变化"),
    ("{} tokens ({} prompt + {} generated)", "{} 个 token（提示词 {} 个 + 生成 {} 个）"),
    ("id {}\nvocabulary entry {}\nbytes {}", "ID {}\n词表条目 {}\n字节 {}"),
    ("special token", "特殊 token"),
    ("temperature", "温度"),
    (
        "Divides the logits: < 1 sharpens the distribution, > 1 flattens it, 0 = always the top token (greedy)",
        "logits 除以温度：< 1 让分布更尖锐，> 1 让分布更平坦，0 = 总是选概率最高的 token（贪心）",
    ),
    ("Keep only the k most likely tokens (0 = off)", "只保留概率最高的 k 个 token（0 = 关闭）"),
    (
        "Keep the smallest set of top tokens whose probabilities add up to p (1 = off)",
        "从概率最高的 token 起，保留概率之和达到 p 的最小集合（1 = 关闭）",
    ),
    (
        "Drop tokens less likely than min-p × the top token's probability (0 = off)",
        "丢弃概率低于 min-p × 最高 token 概率的 token（0 = 关闭）",
    ),
    ("repetition penalty", "重复惩罚"),
    ("Makes tokens already in the text less likely (1 = off)", "降低文本中已出现过的 token 的概率（1 = 关闭）"),
    ("seed", "随机种子"),
    ("The random draws replay exactly for the same seed", "种子相同，随机抽样的结果就完全相同"),
    ("candidates shown", "显示的候选数"),
    ("How many of the most likely tokens to list", "列出多少个概率最高的 token"),
    ("next token", "下一个 token"),
    (
        "entropy {} bits · {} tokens kept · draw u = {} → {} ({})",
        "熵 {} 比特 · 保留 {} 个 token · 抽样 u = {} → {}（{}）",
    ),
    (
        "Entropy: how uncertain the model is (0 = certain). The draw picks the token where the cumulative \
         probability passes u.",
        "熵：模型有多不确定（0 = 完全确定）。抽样选中累积概率首次超过 u 的那个 token。",
    ),
    ("id", "ID"),
    ("probability", "概率"),
    (
        "After the penalty and the warpers: what the draw uses (grey bar: the raw probability)",
        "经过惩罚和各个 warper 之后的概率，也就是抽样实际使用的概率（灰色条：原始概率）",
    ),
    ("raw", "原始"),
    ("softmax of the logits with no temperature or filtering", "直接对 logits 做 softmax，不加温度，也不做过滤"),
    ("cumulative", "累积"),
    ("{} — click to force it anyway", "{} —— 点击仍可强制选它"),
    ("click to make this the next token", "点击让它成为下一个 token"),
    ("candidate {}", "候选 {}"),
    (
        "top-p = {}: the kept set ends where the cumulative probability reaches it",
        "top-p = {}：保留的集合在累积概率达到该值处结束",
    ),
    ("◀ the draw", "◀ 抽中"),
    ("generation", "生成记录"),
    (
        "One row per generated token: the ids the model read, the text so far, and the token it chose with its \
         probability under the current sliders",
        "每个生成的 token 一行：模型读入的 ID、到目前为止生成的文本，以及选中的 token 和它在当前滑块设置下的概率",
    ),
    ("step", "步"),
    ("input ids", "输入 ID"),
    ("text so far", "目前的文本"),
    ("next token (p)", "下一个 token（p）"),
];
