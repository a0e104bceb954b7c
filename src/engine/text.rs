//! Text in and out: `tokenizer.json` through the `tokenizers` crate, and the chat template
//! of `tokenizer_config.json` rendered with minijinja the way transformers renders it
//! (Jinja with `trim_blocks` and `lstrip_blocks`, loop controls, `raise_exception`).

use crate::checkpoint::side_file::read_text;
use std::path::Path;

use minijinja::{Environment, Error as JinjaError, ErrorKind, context};
use tokenizers::Tokenizer;

pub struct TextCodec {
    pub tokenizer: Tokenizer,
    pub chat_template: Option<String>,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
}

/// One token as the panels show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Piece {
    pub id: u32,
    /// The vocabulary entry (`Ġhas`, `<|im_start|>`).
    pub token: String,
    /// What decoding this id alone gives (" has"; U+FFFD for part of a UTF-8 character).
    pub text: String,
    pub special: bool,
}

/// Instructions a chat template may run: real templates use a few thousand.
const CHAT_TEMPLATE_FUEL: u64 = 5_000_000;
/// Bytes a rendered prompt may have (far beyond any context window).
const MAX_RENDERED_PROMPT: usize = 16 << 20;

/// Collects rendered text and fails the render once it passes [`MAX_RENDERED_PROMPT`]
/// (remembering that it did, to say so).
struct CappedText(Vec<u8>, bool);

impl std::io::Write for CappedText {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_PROMPT {
            self.1 = true;
            return Err(std::io::Error::other("rendered prompt too large"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TextCodec {
    pub fn load(folder: &Path) -> Result<Self, String> {
        let path = folder.join("tokenizer.json");
        if !path.is_file() {
            return Err(format!("{}: no tokenizer.json, so text cannot be turned into token ids", folder.display()));
        }
        let json = read_text(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let tokenizer = Tokenizer::from_bytes(json.as_bytes()).map_err(|e| {
            let hint = if serde_json::from_str::<serde_json::Value>(&json).is_ok() {
                "valid JSON, but not a tokenizers tokenizer.json: "
            } else {
                ""
            };
            format!("{}: {hint}{e}", path.display())
        })?;
        let mut codec = Self { tokenizer, chat_template: None, bos_token: None, eos_token: None };
        let config_path = folder.join("tokenizer_config.json");
        if std::fs::symlink_metadata(&config_path).is_ok() {
            let text = read_text(&config_path).map_err(|e| format!("{}: {e}", config_path.display()))?;
            let cfg: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", config_path.display()))?;
            codec.chat_template = match cfg.get("chat_template") {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                // A list of named templates: use the default one.
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .or_else(|| list.first())
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            };
            codec.bos_token = special_token(&cfg, "bos_token");
            codec.eos_token = special_token(&cfg, "eos_token");
        }
        if codec.chat_template.is_none()
            && let Ok(t) = read_text(&folder.join("chat_template.jinja"))
        {
            codec.chat_template = Some(t);
        }
        Ok(codec)
    }

    /// Renders the chat template for one user message, with the assistant's turn opened.
    pub fn apply_chat_template(&self, user_message: &str) -> Result<String, String> {
        self.render_chat(&[("user", user_message)], true)
    }

    /// Renders the chat template for a conversation of (role, content) messages.
    pub fn render_chat(&self, messages: &[(&str, &str)], add_generation_prompt: bool) -> Result<String, String> {
        let template =
            self.chat_template.as_deref().ok_or("this tokenizer has no chat_template in tokenizer_config.json")?;
        let mut env = Environment::new();
        // A template is code from the model folder: an endless loop runs out of fuel, and the
        // output is capped, so a hostile one is an error rather than a hang or a huge string.
        env.set_fuel(Some(CHAT_TEMPLATE_FUEL));
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<String, JinjaError> {
            Err(JinjaError::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_template("chat", template).map_err(|e| format!("chat_template does not parse: {e}"))?;
        let tmpl = env.get_template("chat").map_err(|e| e.to_string())?;
        let messages: Vec<_> =
            messages.iter().map(|(role, content)| context! { role => role, content => content }).collect();
        let ctx = context! {
            messages => messages,
            add_generation_prompt => add_generation_prompt,
            bos_token => self.bos_token.clone().unwrap_or_default(),
            eos_token => self.eos_token.clone().unwrap_or_default(),
        };
        let mut out = CappedText(Vec::new(), false);
        tmpl.render_captured_to(ctx, &mut out).map_err(|e| {
            if e.kind() == ErrorKind::OutOfFuel {
                format!("chat_template ran for more than {CHAT_TEMPLATE_FUEL} steps (an endless loop?) and was stopped")
            } else if out.1 {
                format!("chat_template rendered more than {MAX_RENDERED_PROMPT} bytes and was stopped")
            } else {
                format!("chat_template failed to render: {e}")
            }
        })?;
        String::from_utf8(out.0).map_err(|_| "chat_template rendered text that is not UTF-8".into())
    }

    /// Token ids of a prompt. Plain text gets the tokenizer's own special tokens (as
    /// `tokenizer(text)` does); a rendered chat template already has them.
    pub fn encode(&self, text: &str, chat: bool) -> Result<Vec<u32>, String> {
        let enc = self.tokenizer.encode(text, !chat).map_err(|e| format!("tokenizer: {e}"))?;
        Ok(enc.get_ids().to_vec())
    }

    pub fn prompt_ids(&self, prompt: &str, chat: bool) -> Result<Vec<u32>, String> {
        if chat {
            let rendered = self.apply_chat_template(prompt)?;
            self.encode(&rendered, true)
        } else {
            self.encode(prompt, false)
        }
    }

    pub fn decode(&self, ids: &[u32]) -> String {
        self.tokenizer.decode(ids, false).unwrap_or_default()
    }

    pub fn piece(&self, id: u32) -> Piece {
        let token = self.tokenizer.id_to_token(id).unwrap_or_else(|| format!("<{id}>"));
        let special =
            self.tokenizer.get_added_vocabulary().get_added_tokens_decoder().get(&id).is_some_and(|t| t.special);
        Piece { id, text: self.decode(&[id]), token, special }
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }
}

/// The pre-tokenizer llama.cpp uses for a GGUF's `tokenizer.ggml.pre` (its
/// `llama_vocab::impl::load` table), as a `tokenizers` pre-tokenizer. transformers' GGUF
/// converter always uses plain byte-level splitting; llama.cpp's choice is the model's own
/// (SmolLM2's original tokenizer also splits digits one by one), so prompt ids equal llama.cpp's.
fn gguf_pre_tokenizer(pre: &str) -> serde_json::Value {
    use serde_json::json;
    let byte_level =
        |regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": regex});
    let split = |pattern: &str| json!({"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false});
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    match pre {
        "smollm" | "starcoder" | "refact" => {
            json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level(true)]})
        }
        "qwen2" | "deepseek-r1-qwen" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2), byte_level(false)]}),
        "llama3" | "llama-bpe" | "llama-v3" | "smaug-bpe" => {
            json!({"type": "Sequence", "pretokenizers": [split(LLAMA3), byte_level(false)]})
        }
        _ => byte_level(true),
    }
}

impl TextCodec {
    /// The tokenizer a GGUF file carries in its `tokenizer.ggml.*` keys, built as a
    /// `tokenizers` tokenizer the way transformers' GGUF converter builds a byte-level BPE
    /// (`GGUFGPTConverter`): vocabulary and merges from the arrays, control and user-defined
    /// tokens as added tokens, BOS prepended when `add_bos_token` says so, and the chat
    /// template from `tokenizer.chat_template`.
    pub fn from_gguf(file: &crate::checkpoint::gguf::GgufFile) -> Result<Self, String> {
        use serde_json::json;
        let name = file.path.display();
        let model = file.get("tokenizer.ggml.model").and_then(|v| v.as_str()).unwrap_or("");
        if !matches!(model, "gpt2" | "llama") {
            return Err(format!(
                "{name}: tokenizer.ggml.model is \"{model}\"; only byte-level BPE (\"gpt2\") and SentencePiece (\"llama\") tokenizers are built from GGUF metadata, so text cannot be turned into token ids"
            ));
        }
        let strings = |key: &str| -> Result<Vec<&str>, String> {
            let arr = file.get(key).and_then(|v| v.as_array()).ok_or(format!("{name}: no `{key}` array"))?;
            arr.values.iter().map(|v| v.as_str().ok_or(format!("{name}: `{key}` holds a non-string"))).collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let spm = model == "llama";
        let merges: Vec<serde_json::Value> = if spm {
            let scores: Vec<f64> = file
                .get("tokenizer.ggml.scores")
                .and_then(|v| v.as_array())
                .ok_or(format!("{name}: no `tokenizer.ggml.scores` array"))?
                .values
                .iter()
                .map(|v| v.as_f64().unwrap_or(0.0))
                .collect();
            spm_merges(&tokens, &scores)
        } else {
            strings("tokenizer.ggml.merges")?.into_iter().map(|m| json!(m)).collect()
        };
        let types: Vec<u64> = file
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.as_array())
            .map(|a| a.values.iter().map(|v| v.as_u64().unwrap_or(1)).collect())
            .unwrap_or_default();
        let id_of = |key: &str| file.get(key).and_then(|v| v.as_u64()).filter(|&i| (i as usize) < tokens.len());
        let vocab: serde_json::Map<String, serde_json::Value> =
            tokens.iter().enumerate().map(|(i, t)| (t.to_string(), json!(i))).collect();
        // 3 = control, 4 = user-defined (llama.cpp's LLAMA_TOKEN_TYPE_*). SentencePiece matches
        // user-defined tokens before it normalizes the text, as llama.cpp does.
        let added: Vec<serde_json::Value> = types
            .iter()
            .enumerate()
            .filter(|(_, t)| matches!(t, 3 | 4))
            .filter_map(|(i, t)| {
                Some(json!({"id": i, "content": tokens.get(i)?, "single_word": false, "lstrip": false, "rstrip": false,
                    "normalized": *t == 4 && !spm, "special": *t == 3}))
            })
            .collect();
        let bos = id_of("tokenizer.ggml.bos_token_id");
        // llama.cpp adds BOS to SentencePiece prompts unless the file says otherwise.
        let add_bos = file.get("tokenizer.ggml.add_bos_token").and_then(|v| v.as_bool()).unwrap_or(spm);
        let post = match bos.filter(|_| add_bos) {
            Some(id) => {
                let t = tokens[id as usize];
                json!({"type": "TemplateProcessing",
                    "single": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                             {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": {t: {"id": t, "ids": [id], "tokens": [t]}}})
            }
            None if spm => serde_json::Value::Null,
            None => json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}),
        };
        // Byte-level BPE (gpt2) splits with llama.cpp's pre-tokenizer and decodes bytes;
        // SentencePiece (llama) spells spaces as `▁` and falls back to byte tokens.
        let (kind, normalizer, pre_tokenizer, decoder, bpe) = if spm {
            spm_parts(file, &tokens, &types)
        } else {
            let pre = file.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default");
            let decoder =
                json!({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true});
            let bpe = json!({"unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                "fuse_unk": false, "byte_fallback": false});
            ("byte-level BPE", serde_json::Value::Null, gguf_pre_tokenizer(pre), decoder, bpe)
        };
        let mut model =
            json!({"type": "BPE", "dropout": null, "ignore_merges": false, "vocab": vocab, "merges": merges});
        if let (Some(m), serde_json::Value::Object(extra)) = (model.as_object_mut(), bpe) {
            m.extend(extra);
        }
        let spec = json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": normalizer,
            "pre_tokenizer": pre_tokenizer, "post_processor": post, "decoder": decoder, "model": model,
        });
        let tokenizer = Tokenizer::from_bytes(spec.to_string().as_bytes())
            .map_err(|e| format!("{name}: the tokenizer.ggml.* keys do not make a {kind} tokenizer: {e}"))?;
        let token = |key: &str| id_of(key).map(|i| tokens[i as usize].to_string());
        Ok(Self {
            tokenizer,
            chat_template: file.get("tokenizer.chat_template").and_then(|v| v.as_str()).map(str::to_string),
            bos_token: token("tokenizer.ggml.bos_token_id"),
            eos_token: token("tokenizer.ggml.eos_token_id"),
        })
    }
}

/// A SentencePiece vocabulary as llama.cpp tokenizes it: spaces become `▁`, one `▁` is put
/// before the text and after every special token (`add_space_prefix`, on unless the file
/// says otherwise), adjacent pieces merge best score first, and anything left unknown falls
/// back to its `<0xXX>` byte tokens. Built as transformers' GGUF converter builds it: a BPE
/// with byte fallback whose merges come from the scores. Returns the tokenizer's kind, its
/// normalizer, pre-tokenizer, decoder and the BPE model's own settings.
fn spm_parts(
    file: &crate::checkpoint::gguf::GgufFile,
    tokens: &[&str],
    types: &[u64],
) -> (&'static str, serde_json::Value, serde_json::Value, serde_json::Value, serde_json::Value) {
    use serde_json::json;
    let unk = types.iter().position(|&t| t == 2).and_then(|i| tokens.get(i)).map(|t| t.to_string());
    let prefix = file.get("tokenizer.ggml.add_space_prefix").and_then(|v| v.as_bool()).unwrap_or(true);
    let mut normalizers = vec![json!({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})];
    if prefix {
        normalizers.insert(0, json!({"type": "Prepend", "prepend": "▁"}));
    }
    let mut decoders = vec![
        json!({"type": "Replace", "pattern": {"String": "▁"}, "content": " "}),
        json!({"type": "ByteFallback"}),
        json!({"type": "Fuse"}),
    ];
    if prefix {
        decoders.push(json!({"type": "Strip", "content": " ", "start": 1, "stop": 0}));
    }
    let bpe = json!({"unk_token": unk, "continuing_subword_prefix": null, "end_of_word_suffix": null,
        "fuse_unk": true, "byte_fallback": true});
    (
        "SentencePiece",
        json!({"type": "Sequence", "normalizers": normalizers}),
        serde_json::Value::Null,
        json!({"type": "Sequence", "decoders": decoders}),
        bpe,
    )
}

/// BPE merges for a SentencePiece vocabulary, as transformers' `generate_merges` makes them:
/// every split of a piece into two pieces of the vocabulary, ordered by the whole piece's
/// score (best first; a stable sort keeps the vocabulary order among equal scores). Control
/// and byte tokens are never merged into.
fn spm_merges(tokens: &[&str], scores: &[f64]) -> Vec<serde_json::Value> {
    let index: std::collections::HashMap<&str, usize> = tokens.iter().enumerate().map(|(i, t)| (*t, i)).collect();
    let mut merges: Vec<(f64, usize, usize, [&str; 2])> = Vec::new();
    for (i, piece) in tokens.iter().enumerate() {
        let is_byte = piece.len() == 6 && piece.starts_with("<0x") && piece.ends_with('>');
        if is_byte || piece.chars().count() < 2 {
            continue;
        }
        let mut local: Vec<(usize, usize, [&str; 2])> = piece
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (l, r) = piece.split_at(at);
                Some((*index.get(l)?, *index.get(r)?, [l, r]))
            })
            .collect();
        local.sort_by_key(|(l, r, _)| (*l, *r));
        let score = scores.get(i).copied().unwrap_or(0.0);
        merges.extend(local.into_iter().map(|(l, r, m)| (score, l, r, m)));
    }
    merges.sort_by(|a, b| b.0.total_cmp(&a.0));
    merges.into_iter().map(|m| serde_json::json!(m.3)).collect()
}

/// `"bos_token": "<s>"` or the older `{"content": "<s>", …}` form.
fn special_token(cfg: &serde_json::Value, key: &str) -> Option<String> {
    match cfg.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content").and_then(|c| c.as_str()).map(str::to_string),
        _ => None,
    }
}
