//! `cargo run --release --bin train-demo [--out DIR]`: makes the bundled demo model in
//! assets/demo/ (or DIR), then its LoRA adapter; `train-demo adapter` remakes only the adapter.
//!
//! A byte-level BPE tokenizer trained with the `tokenizers` crate on the project's own
//! corpus (src/demo.rs), then a small Mixtral-architecture MoE trained from scratch by the
//! project's own forward pass under candle's autograd (AdamW), with one extra term that makes
//! layer 0's head 0 a previous-token head ([`previous_token_loss`]). Deterministic given its seed.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder, VarMap};
use llm_anatomy::arch::{ArchConfig, families};
use llm_anatomy::demo;
use llm_anatomy::engine::LoadedModel;
use tokenizers::SplitDelimiterBehavior;
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, Tokenizer};

const SEED: u64 = 20261122;
const VOCAB: usize = 640;
const SEQ: usize = 64;
const BATCH: usize = 16;
const STEPS: usize = 1400;
const ADAPTER_STEPS: usize = 300;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    // `train-demo [adapter] [STEPS] [--out DIR]`: DIR (default assets/demo) lets a retraining
    // be tried without touching the committed demo.
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let out = match args.iter().position(|a| a == "--out") {
        Some(i) if i + 1 < args.len() => {
            let dir = std::path::PathBuf::from(args.remove(i + 1));
            args.remove(i);
            dir
        }
        Some(_) => return Err("--out needs a folder".into()),
        None => demo::demo_folder(),
    };
    if args.first().map(String::as_str) == Some("adapter") {
        let steps = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(ADAPTER_STEPS);
        return train_adapter(&out, steps);
    }
    let steps: usize = args.first().and_then(|s| s.parse().ok()).unwrap_or(STEPS);
    std::fs::create_dir_all(&out)?;
    let lines = demo::corpus(SEED, 20_000);

    // Tokenizer: byte-level BPE with ChatML specials, like the fixtures' and SmolLM2's.
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];
    let mut tok = Tokenizer::new(BPE::default());
    // Each Chinese character is its own pre-token (there are no spaces to split on), so a
    // prompt that stops mid-sentence tokenizes the way the training text did.
    let han = Split::new(SplitPattern::Regex(r"\p{Han}".into()), SplitDelimiterBehavior::Isolated, false)?;
    tok.with_pre_tokenizer(Some(Sequence::new(vec![han.into(), ByteLevel::new(false, true, true).into()])));
    tok.with_decoder(Some(ByteLevel::default()));
    tok.with_post_processor(Some(ByteLevel::default()));
    let mut trainer: TrainerWrapper = BpeTrainerBuilder::new()
        .vocab_size(VOCAB)
        .min_frequency(2)
        .show_progress(false)
        .special_tokens(specials.iter().map(|s| AddedToken::from(*s, true)).collect())
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build()
        .into();
    tok.train(&mut trainer, lines.iter())?;
    let _ = tok.add_special_tokens(specials.iter().map(|s| AddedToken::from(*s, true)).collect::<Vec<_>>());
    let vocab = tok.get_vocab_size(true);
    tok.save(out.join("tokenizer.json"), true)?;
    println!("tokenizer: {vocab} tokens");

    // Token stream: lines separated by <|endoftext|>.
    let eot = tok.token_to_id("<|endoftext|>").expect("special token");
    let mut stream: Vec<u32> = Vec::new();
    for l in &lines {
        stream.extend(tok.encode(l.as_str(), false)?.get_ids());
        stream.push(eot);
    }
    println!("corpus: {} lines, {} tokens", lines.len(), stream.len());

    let config = serde_json::json!({
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
        "num_local_experts": 4, "num_experts_per_tok": 2, "vocab_size": vocab,
        "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "tie_word_embeddings": false, "hidden_act": "silu", "torch_dtype": "float32",
        "bos_token_id": tok.token_to_id("<|im_start|>"), "eos_token_id": tok.token_to_id("<|im_end|>"),
        "pad_token_id": tok.token_to_id("<|im_end|>"), "router_aux_loss_coef": 0.02
    });
    let cfg = ArchConfig::parse(&config)?;

    // Parameters: every tensor the module tree implies, norms at 1 and the rest N(0, 0.05).
    let dev = Device::Cpu;
    let varmap = VarMap::new();
    let tree = families::build_tree(&cfg, 0.0);
    {
        let mut data = varmap.data().lock().expect("varmap lock");
        let mut rng = SEED;
        for node in &tree.nodes {
            for p in &node.params {
                let n: usize = p.shape.iter().product();
                let values: Vec<f32> = if p.shape.len() == 1 {
                    vec![1.0; n]
                } else {
                    (0..n)
                        .map(|_| {
                            // Sum of uniforms: cheap, deterministic, close to a normal.
                            let mut s = 0f32;
                            for _ in 0..4 {
                                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                                s += (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                            }
                            s * 0.087
                        })
                        .collect()
                };
                let t = Tensor::from_vec(values, p.shape.as_slice(), &dev)?;
                data.insert(p.tensor.clone(), candle_core::Var::from_tensor(&t)?);
            }
        }
    }
    let mut model = LoadedModel::load(&cfg, VarBuilder::from_varmap(&varmap, DType::F32, &dev))?;
    model.training = true;
    let mut opt = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW { lr: 3e-3, weight_decay: 0.01, ..Default::default() },
    )?;
    let start = Instant::now();
    let mut rng = SEED ^ 0xdead_beef;
    for step in 0..steps {
        let (inputs, loss) = batch_loss(&model, &stream, &mut rng, vocab)?;
        let nudge = previous_token_loss(&varmap, &cfg, &inputs)?;
        let loss = (loss + (nudge * NUDGE)?)?;
        if step + 1 == steps * 3 / 4 {
            opt.set_learning_rate(1e-3);
        }
        opt.backward_step(&loss)?;
        if step % 50 == 0 || step + 1 == steps {
            println!("step {step:>5}  loss {:.3}  ({:.0} s)", loss.to_scalar::<f32>()?, start.elapsed().as_secs_f64());
        }
    }

    // Save as a Hugging Face folder.
    let tensors: HashMap<String, Tensor> =
        varmap.data().lock().expect("varmap lock").iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    candle_core::safetensors::save(&tensors, out.join("model.safetensors"))?;
    std::fs::write(out.join("config.json"), serde_json::to_string_pretty(&config)?)?;
    std::fs::write(
        out.join("generation_config.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"], "pad_token_id": config["pad_token_id"]}),
        )?,
    )?;
    std::fs::write(
        out.join("tokenizer_config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|im_start|>", "eos_token": "<|im_end|>",
            "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>", "add_prefix_space": false,
            "model_max_length": 256, "chat_template": demo::CHAT_TEMPLATE,
        }))?,
    )?;
    println!("wrote {} in {:.0} s", out.display(), start.elapsed().as_secs_f64());
    train_adapter(&out, ADAPTER_STEPS)
}

/// Next-token cross-entropy on BATCH random windows of the token stream (returned beside the
/// loss); `rng` advances the same way every run, so training replays exactly.
fn batch_loss(model: &LoadedModel, stream: &[u32], rng: &mut u64, vocab: usize) -> Result<(Tensor, Tensor), Error> {
    let mut inputs = Vec::with_capacity(BATCH * SEQ);
    let mut targets = Vec::with_capacity(BATCH * SEQ);
    for _ in 0..BATCH {
        *rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = (*rng >> 33) as usize % (stream.len() - SEQ - 1);
        inputs.extend_from_slice(&stream[at..at + SEQ]);
        targets.extend_from_slice(&stream[at + 1..at + SEQ + 1]);
    }
    let x = Tensor::from_vec(inputs, (BATCH, SEQ), &model.device)?;
    let y = Tensor::from_vec(targets, BATCH * SEQ, &model.device)?;
    let mut cache = model.new_cache();
    let logits = model.forward(&x, &mut cache, None)?;
    let loss = candle_nn::loss::cross_entropy(&logits.reshape((BATCH * SEQ, vocab))?, &y)?;
    Ok((x, loss))
}

/// How much the previous-token nudge weighs against the next-token loss.
const NUDGE: f64 = 0.3;

/// The nudge that makes layer 0's head 0 a previous-token head: the mean of −log of its
/// attention weight on the token just before each query. Real models grow such heads on their
/// own from far more text than the demo sees in ten minutes; without the nudge its heads are
/// a blur of half-patterns and the Attention panel would have nothing clear to point at. Only
/// this one head's *attention* is steered; what the model does with it is learned. Layer 0's
/// attention reads the embeddings directly, so it is recomputed here from the parameters
/// (RMSNorm, q/k projections of head 0 and its KV head, RoPE, causal softmax), exactly as the
/// model computes it.
fn previous_token_loss(varmap: &VarMap, cfg: &ArchConfig, ids: &Tensor) -> Result<Tensor, Error> {
    let data = varmap.data().lock().expect("varmap lock");
    let var = |name: &str| data.get(name).map(|v| v.as_tensor().clone()).ok_or(format!("no parameter {name}"));
    let (b, t) = ids.dims2()?;
    let hd = cfg.head_dim;
    let x = var("model.embed_tokens.weight")?.embedding(&ids.flatten_all()?)?;
    let rms = x.sqr()?.mean_keepdim(1)?.affine(1.0, cfg.rms_norm_eps)?.sqrt()?;
    let x = x.broadcast_div(&rms)?.broadcast_mul(&var("model.layers.0.input_layernorm.weight")?)?;
    let head = |proj: &str| -> Result<Tensor, Error> {
        let w = var(&format!("model.layers.0.self_attn.{proj}.weight"))?.narrow(0, 0, hd)?;
        Ok(x.matmul(&w.t()?)?.reshape((b, 1, t, hd))?)
    };
    let half = hd / 2;
    let angles: Vec<f32> = (0..t)
        .flat_map(|p| (0..half).map(move |j| p as f32 * (cfg.rope_theta as f32).powf(-2.0 * j as f32 / hd as f32)))
        .collect();
    let angles = Tensor::from_vec(angles, (t, half), ids.device())?;
    let (cos, sin) = (angles.cos()?, angles.sin()?);
    let q = candle_nn::rotary_emb::rope_slow(&head("q_proj")?, &cos, &sin)?;
    let k = candle_nn::rotary_emb::rope_slow(&head("k_proj")?, &cos, &sin)?;
    let mask: Vec<f32> = (0..t * t).map(|i| if i % t > i / t { -1e9 } else { 0.0 }).collect();
    let scores =
        (q.matmul(&k.t()?)? / (hd as f64).sqrt())?.broadcast_add(&Tensor::from_vec(mask, (t, t), ids.device())?)?;
    let log_weights = candle_nn::ops::log_softmax(&scores, candle_core::D::Minus1)?;
    // Query i ≥ 1 picks key i − 1.
    let previous: Vec<f32> = (0..t * t).map(|i| if i / t >= 1 && i % t == i / t - 1 { 1.0 } else { 0.0 }).collect();
    let picked = log_weights.broadcast_mul(&Tensor::from_vec(previous, (t, t), ids.device())?)?.sum_all()?;
    Ok((picked.neg()? / (b * (t - 1)) as f64)?)
}

/// A LoRA adapter (r = 8, α = 16 on q_proj and v_proj) over the frozen demo model that
/// teaches one visible change, saved as PEFT does (adapter_config.json + safetensors).
fn train_adapter(folder: &std::path::Path, steps: usize) -> Result<(), Error> {
    const RANK: usize = 8;
    const ALPHA: f64 = 16.0;
    let dev = Device::Cpu;
    let base = llm_anatomy::arch::ModelFolder::open(folder)?;
    let cfg = base.config.clone().ok_or("the demo config")?;
    let tok = Tokenizer::from_file(folder.join("tokenizer.json"))?;
    let mut model = LoadedModel::load(&cfg, llm_anatomy::engine::model::var_builder(&base, &dev)?)?;
    model.training = true;
    let eot = tok.token_to_id("<|endoftext|>").expect("special token");
    let mut stream: Vec<u32> = Vec::new();
    for l in demo::adapter_corpus(SEED + 1, 6000) {
        stream.extend(tok.encode(l.as_str(), false)?.get_ids());
        stream.push(eot);
    }
    let varmap = VarMap::new();
    let mut rng = SEED ^ 0x1057;
    let mut modules = Vec::new();
    for i in 0..cfg.num_layers {
        for (name, out_f) in [("q_proj", cfg.num_heads * cfg.head_dim), ("v_proj", cfg.num_kv_heads * cfg.head_dim)] {
            let module = format!("model.layers.{i}.self_attn.{name}");
            // PEFT's init: A random (Kaiming-uniform scale), B zero, so training starts at ΔW = 0.
            let bound = 1.0 / (cfg.hidden_size as f32).sqrt();
            let a: Vec<f32> = (0..RANK * cfg.hidden_size)
                .map(|_| {
                    rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    ((rng >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * bound
                })
                .collect();
            let a = candle_core::Var::from_tensor(&Tensor::from_vec(a, (RANK, cfg.hidden_size), &dev)?)?;
            let b = candle_core::Var::from_tensor(&Tensor::zeros((out_f, RANK), DType::F32, &dev)?)?;
            model.attach_lora(&module, a.as_tensor().clone(), b.as_tensor().clone(), ALPHA / RANK as f64)?;
            varmap.data().lock().expect("varmap lock").insert(format!("base_model.model.{module}.lora_A.weight"), a);
            varmap.data().lock().expect("varmap lock").insert(format!("base_model.model.{module}.lora_B.weight"), b);
            modules.push(name);
        }
    }
    let mut opt = candle_nn::AdamW::new(
        varmap.all_vars(),
        candle_nn::ParamsAdamW { lr: 2e-3, weight_decay: 0.0, ..Default::default() },
    )?;
    let start = Instant::now();
    for step in 0..steps {
        let (_, loss) = batch_loss(&model, &stream, &mut rng, cfg.vocab_size)?;
        opt.backward_step(&loss)?;
        if step % 50 == 0 || step + 1 == steps {
            println!(
                "adapter step {step:>4}  loss {:.3}  ({:.0} s)",
                loss.to_scalar::<f32>()?,
                start.elapsed().as_secs_f64()
            );
        }
    }
    let out = folder.join(demo::ADAPTER_SUBFOLDER);
    std::fs::create_dir_all(&out)?;
    let tensors: HashMap<String, Tensor> =
        varmap.data().lock().expect("varmap lock").iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    candle_core::safetensors::save(&tensors, out.join("adapter_model.safetensors"))?;
    modules.sort();
    modules.dedup();
    std::fs::write(
        out.join("adapter_config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "assets/demo",
            "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0, "target_modules": modules,
            "bias": "none", "use_rslora": false, "use_dora": false, "fan_in_fan_out": false,
        }))?,
    )?;
    println!("wrote {} in {:.0} s", out.display(), start.elapsed().as_secs_f64());
    Ok(())
}
