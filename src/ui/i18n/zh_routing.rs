//! 中文 for the strings of `src/ui/routing*.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("Routing needs a supported MoE architecture.", "路由视图需要受支持的 MoE 架构。"),
    (
        "{} is a dense model: every token goes through the same MLP, so there is no routing to show. \
         Open a mixture-of-experts model (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE) to see where each token goes.",
        "{} 是稠密模型：每个 token 都经过同一个 MLP，所以没有路由可显示。\
         打开一个混合专家模型（Mixtral、Qwen2-MoE、Qwen3-MoE、OLMoE），就能看到每个 token 被送往哪里。",
    ),
    ("Expert routing · {} experts, top-{}", "专家路由 · {} 个专家，top-{}"),
    (
        "The gate (router) scores every expert for each token: G(x) = softmax(x·W_g). The top-k experts run, and \
         their outputs are mixed by the gate weights.",
        "门控（路由器）为每个 token 给每个专家打分：G(x) = softmax(x·W_g)。得分最高的 top-k 个专家运行，\
         它们的输出按门控权重混合。",
    ),
    ("Run a prompt to see its routing:", "运行一个提示词来查看它的路由："),
    ("layer", "层"),
    ("layer {}", "第 {} 层"),
    ("all layers", "所有层"),
    ("One small heatmap per MoE layer, side by side", "每个 MoE 层一张小热力图，并排显示"),
    ("click a token to follow its path through the layers", "点击一个 token，追踪它穿过各层的路径"),
    ("gate probability", "门控概率"),
    ("0 … 1 · outlined = chosen (top-k)", "0 … 1 · 带白框 = 被选中（top-k）"),
    ("expert {}: no token of this text was sent here (dormant)", "专家 {}：这段文本没有任何 token 被送到这里（休眠）"),
    ("expert {}", "专家 {}"),
    ("shared", "共享"),
    (
        "Qwen2-MoE's shared expert runs for every token; its output is scaled by sigmoid(gate·x), shown here",
        "Qwen2-MoE 的共享专家对每个 token 都运行；它的输出乘以 sigmoid(gate·x)，这里显示的就是这个值",
    ),
    ("layer {} token {} expert {}", "第 {} 层 token {} 专家 {}"),
    ("chosen, rank {} of {}, mixing weight {}", "被选中，排名第 {}（共 {} 个），混合权重 {}"),
    ("not chosen", "未被选中"),
    ("token {} {}\nlayer {}, expert {}\ngate probability {}\n{}", "token {} {}\n第 {} 层，专家 {}\n门控概率 {}\n{}"),
    ("shared expert gate sigmoid = {}", "共享专家门控 sigmoid = {}"),
    ("expert load, layer {}", "专家负载，第 {} 层"),
    (
        "How many tokens of this text each expert received (each token counts once for each of its top-k experts)",
        "这段文本中每个专家收到了多少个 token（每个 token 为它的 top-k 个专家各计一次）",
    ),
    ("coefficient of variation {}", "变异系数 {}"),
    ("std / mean of the tokens per expert: 0 = perfectly even", "各专家 token 数的标准差 / 均值：0 = 完全均匀"),
    ("load-balancing loss {}", "负载均衡损失 {}"),
    (
        "Switch Transformer auxiliary loss E · Σ f_e · P_e (as transformers computes it): equal to top-k when the \
         load is perfectly balanced, larger when a few experts take most tokens. Training adds it to keep every \
         expert busy.",
        "Switch Transformer 的辅助损失 E · Σ f_e · P_e（与 transformers 的算法相同）：负载完全均衡时等于 top-k，\
         少数专家承担大部分 token 时会更大。训练时加上它，让每个专家都有活干。",
    ),
    ("dormant: {}", "休眠：{}"),
    ("Experts that received no token of this text", "在这段文本中没有收到任何 token 的专家"),
    ("expert {}: {} tokens ({}%)", "专家 {}：{} 个 token（{}%）"),
    ("expert", "专家"),
    ("tokens", "token 数"),
    ("expert load", "专家负载"),
    ("path of token {} {} through the layers", "token {} {} 穿过各层的路径"),
    (
        "One row per MoE layer: the experts this token was sent to, with the weights that mixed their outputs",
        "每个 MoE 层一行：这个 token 被送往的专家，以及混合它们输出时的权重",
    ),
    ("expert {} × {}", "专家 {} × {}"),
    ("+ shared × {}", "+ 共享 × {}"),
];
