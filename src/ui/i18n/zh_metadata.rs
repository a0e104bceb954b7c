//! 中文 for the strings of `src/ui/panels/metadata.rs` (see `super` for how keys work).

pub(super) const ENTRIES: &[(&str, &str)] = &[
    ("Metadata", "元数据"),
    ("Every key/value stored in a GGUF file's header", "GGUF 文件头里存储的每一个键/值"),
    (
        "This model is not a GGUF file: its settings are in config.json (see the Weights tab).",
        "这个模型不是 GGUF 文件：它的设置在 config.json 里（见“权重”标签页）。",
    ),
    (
        "{}: GGUF version {}, {} tensors, {} keys, alignment {} bytes",
        "{}：GGUF 版本 {}，{} 个张量，{} 个键，对齐 {} 字节",
    ),
    ("GGML type", "GGML 类型"),
    ("The block format llama.cpp stores the tensor in", "llama.cpp 存储这个张量所用的块格式"),
    ("{} ({} bits per weight)", "{}（每个权重 {} 比特）"),
    ("GGUF name", "GGUF 名称"),
    (", expert {}", "，专家 {}"),
    ("row order", "行顺序"),
    (
        "llama.cpp stores these q/k rows permuted for its rope kernel; shown in Hugging Face order, as transformers un-permutes them on load",
        "llama.cpp 为了它的 RoPE 内核把这些 q/k 行重新排列后存储；这里按 Hugging Face 的顺序显示，与 transformers 加载时还原的顺序一致",
    ),
    ("values", "数值"),
    ("{}: __metadata__", "{}：__metadata__"),
];
