//! One new token through a dense model in a single pass over the weights: the step that
//! generating text repeats, and the one llama.cpp is measured on.
//!
//! The general forward ([`LoadedModel::hidden`]) is a sequence of candle ops; for one token
//! each op costs more in set-up (allocation, dispatch, a thread-pool wake-up per matvec)
//! than in arithmetic: about 4 ms of a 17 ms SmolLM2-135M token. Here a team of threads
//! (one per core) runs the whole token in lockstep instead. Every matvec is split into one
//! contiguous block of rows per thread, read at the stored width by the same kernels
//! ([`dot_rows`]), and the threads meet at a spinning barrier between steps, as ggml's thread
//! pool does. Norms are recomputed by every thread (cheaper than a barrier), the per-head
//! work (biases, q/k norms, RoPE, the cache write) by one, attention is split by query head.
//!
//! It applies when nothing needs the candle graph: inference (not training), every layer
//! dense, no LoRA update attached, weights stored (not widened tensors), no internals probe.
//! Otherwise [`LoadedModel::next_token_logits`] takes the general path, which computes the
//! same numbers (`tests/real_model.rs` and the unit test below compare the two).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use candle_core::{Result, Tensor};

use super::{KvCache, LoadedModel, Mlp, RmsNorm};
use crate::engine::matvec::{FastLinear, Input, Rows, dot_rows, dot_rows_input};

/// What the step needs besides the weights, as plain vectors (copied once, small).
pub(super) struct Plan {
    layers: Vec<LayerPlan>,
    norm: Norm,
    /// OLMoE normalises q and k over the whole projection, Qwen3 per head.
    whole_projection_norm: bool,
    /// cos and sin of position × inv_freq, positions × head_dim / 2 (attention factor applied).
    cos: Vec<f32>,
    sin: Vec<f32>,
}

struct Norm {
    weight: Vec<f32>,
    eps: f32,
}

struct LayerPlan {
    input_norm: Norm,
    post_norm: Norm,
    q_bias: Option<Vec<f32>>,
    k_bias: Option<Vec<f32>>,
    v_bias: Option<Vec<f32>>,
    o_bias: Option<Vec<f32>>,
    gate_bias: Option<Vec<f32>>,
    up_bias: Option<Vec<f32>>,
    down_bias: Option<Vec<f32>>,
    /// Per head (Qwen3), or over the whole projection when `norm_whole_projection`.
    qk_norm: Option<(Norm, Norm)>,
}

fn values(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

fn norm(n: &RmsNorm) -> Result<Norm> {
    Ok(Norm { weight: values(&n.weight)?, eps: n.eps })
}

fn bias(l: &FastLinear) -> Result<Option<Vec<f32>>> {
    l.bias().map(values).transpose()
}

impl Plan {
    /// None when some layer is sparse (the MoE block stays on the general path).
    pub(super) fn new(model: &LoadedModel) -> Result<Option<Self>> {
        let mut layers = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let Mlp::Dense(mlp) = &layer.mlp else { return Ok(None) };
            let a = &layer.attn;
            let qk_norm = match (&a.q_norm, &a.k_norm) {
                (Some(q), Some(k)) => Some((norm(q)?, norm(k)?)),
                _ => None,
            };
            layers.push(LayerPlan {
                input_norm: norm(&layer.input_norm)?,
                post_norm: norm(&layer.post_norm)?,
                q_bias: bias(&a.q)?,
                k_bias: bias(&a.k)?,
                v_bias: bias(&a.v)?,
                o_bias: bias(&a.o)?,
                gate_bias: bias(&mlp.gate)?,
                up_bias: bias(&mlp.up)?,
                down_bias: bias(&mlp.down)?,
                qk_norm,
            });
        }
        Ok(Some(Self {
            layers,
            norm: norm(&model.norm)?,
            whole_projection_norm: model.layers.first().is_some_and(|l| l.attn.norm_whole_projection),
            cos: values(&model.rotary.cos)?,
            sin: values(&model.rotary.sin)?,
        }))
    }
}

/// Every matrix of the model as stored rows, or None if one is not (or carries LoRA).
struct Matrices<'a> {
    embed: Rows<'a>,
    lm_head: Rows<'a>,
    layers: Vec<[Rows<'a>; 7]>,
}

impl<'a> Matrices<'a> {
    fn of(model: &'a LoadedModel) -> Option<Self> {
        let plain = |l: &'a FastLinear| if l.lora.is_some() { None } else { l.weight().stored_rows() };
        let mut layers = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let Mlp::Dense(m) = &layer.mlp else { return None };
            let a = &layer.attn;
            layers.push([
                plain(&a.q)?,
                plain(&a.k)?,
                plain(&a.v)?,
                plain(&a.o)?,
                plain(&m.gate)?,
                plain(&m.up)?,
                plain(&m.down)?,
            ]);
        }
        Some(Self { embed: model.embed.stored_rows()?, lm_head: plain(&model.lm_head)?, layers })
    }
}

impl LoadedModel {
    /// The next-token logits after `id`, appended to `cache`; None when the fused step does
    /// not apply to this model as it is now (see the module notes).
    pub(super) fn fused_step(&self, id: u32, cache: &mut KvCache) -> Result<Option<Vec<f32>>> {
        if self.training {
            return Ok(None);
        }
        let Some(plan) = self.fused.get_or_init(|| Plan::new(self).ok().flatten()) else { return Ok(None) };
        let Some(mats) = Matrices::of(self) else { return Ok(None) };
        let offset = cache.len();
        if offset + 1 > self.rotary.cos.dim(0)? {
            return Ok(None); // the general path words the error
        }
        cache.grow(1);
        let threads = rayon::current_num_threads().clamp(1, 64);
        let logits = Step::new(self, plan, &mats, cache, offset, id as usize).run(threads);
        cache.len += 1;
        Ok(Some(logits))
    }
}

/// A buffer the team writes in disjoint parts between barriers.
struct Shared {
    ptr: *mut f32,
    len: usize,
}

// SAFETY: access goes through `part`/`read`, whose callers keep parts disjoint between
// barriers (the barrier orders the writes before the reads).
unsafe impl Sync for Shared {}

impl Shared {
    fn new(v: &mut [f32]) -> Self {
        Self { ptr: v.as_mut_ptr(), len: v.len() }
    }

    /// SAFETY: no other thread touches `r` until the next barrier.
    #[allow(clippy::mut_from_ref)]
    unsafe fn part(&self, r: Range<usize>) -> &mut [f32] {
        assert!(r.start <= r.end && r.end <= self.len);
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(r.start), r.len()) }
    }

    /// SAFETY: no thread writes `r` until the next barrier.
    unsafe fn read(&self, r: Range<usize>) -> &[f32] {
        assert!(r.start <= r.end && r.end <= self.len);
        unsafe { std::slice::from_raw_parts(self.ptr.add(r.start), r.len()) }
    }
}

/// A reusable barrier that spins (then yields): a step waits a few microseconds at most, far
/// less than a futex wake-up costs. If a thread panics the others stop waiting and panic too,
/// so a bug never leaves the engine spinning forever.
struct SpinBarrier {
    threads: usize,
    arrived: AtomicUsize,
    generation: AtomicUsize,
    broken: AtomicBool,
}

impl SpinBarrier {
    fn new(threads: usize) -> Self {
        Self { threads, arrived: AtomicUsize::new(0), generation: AtomicUsize::new(0), broken: AtomicBool::new(false) }
    }

    fn wait(&self) {
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.threads {
            self.arrived.store(0, Ordering::Relaxed);
            self.generation.store(generation.wrapping_add(1), Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.generation.load(Ordering::Acquire) == generation {
            assert!(!self.broken.load(Ordering::Relaxed), "another decode thread failed");
            if spins < 4096 {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// The buffers of one step, shared by the team.
struct Step<'a> {
    model: &'a LoadedModel,
    plan: &'a Plan,
    mats: &'a Matrices<'a>,
    offset: usize,
    x: Shared,
    qkv: Shared,
    attn: Shared,
    act: Shared,
    logits: Shared,
    keys: Vec<Shared>,
    values: Vec<Shared>,
    barrier: SpinBarrier,
    // The storage behind the Shared views above.
    _owned: [Vec<f32>; 4],
    logits_owned: Vec<f32>,
}

/// Thread `i` of `n`'s block of `rows` rows.
fn block(i: usize, n: usize, rows: usize) -> Range<usize> {
    i * rows / n..(i + 1) * rows / n
}

/// `x ∩ part`, shifted to start at `part.start`.
fn within(x: &Range<usize>, part: Range<usize>) -> Range<usize> {
    let (s, e) = (x.start.max(part.start), x.end.min(part.end));
    if s >= e { 0..0 } else { s - part.start..e - part.start }
}

/// ggml's RMS norm in every arithmetic: its double sum is at least as accurate as an f32
/// one, and llama.cpp arithmetic needs its exact numbers.
fn rms_norm(x: &[f32], n: &Norm, out: &mut [f32]) {
    super::ggml_rms_norm(x, &n.weight, n.eps, out);
}

fn add(out: &mut [f32], b: Option<&Vec<f32>>, rows: Range<usize>) {
    if let Some(b) = b {
        out.iter_mut().zip(&b[rows]).for_each(|(o, b)| *o += b);
    }
}

impl<'a> Step<'a> {
    fn new(
        model: &'a LoadedModel,
        plan: &'a Plan,
        mats: &'a Matrices<'a>,
        cache: &mut KvCache,
        offset: usize,
        id: usize,
    ) -> Self {
        let cfg = &model.cfg;
        let (h, q_out, kv_out) = (cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim);
        let mut x = vec![0f32; h];
        mats.embed.slice(id * h, h).widen_into(&mut x);
        let mut qkv = vec![0f32; q_out + 2 * kv_out];
        let mut attn = vec![0f32; q_out];
        let mut act = vec![0f32; cfg.intermediate_size];
        let mut logits_owned = vec![0f32; cfg.vocab_size];
        let keys = cache.layers.iter_mut().map(|l| Shared::new(&mut l.k)).collect();
        let values = cache.layers.iter_mut().map(|l| Shared::new(&mut l.v)).collect();
        Self {
            model,
            plan,
            mats,
            offset,
            x: Shared::new(&mut x),
            qkv: Shared::new(&mut qkv),
            attn: Shared::new(&mut attn),
            act: Shared::new(&mut act),
            logits: Shared::new(&mut logits_owned),
            keys,
            values,
            barrier: SpinBarrier::new(1),
            _owned: [x, qkv, attn, act],
            logits_owned,
        }
    }

    /// Runs the step on `n` threads (this one and n − 1 scoped ones) and returns the logits.
    fn run(mut self, n: usize) -> Vec<f32> {
        self.barrier = SpinBarrier::new(n);
        let this = &self;
        std::thread::scope(|s| {
            for i in 1..n {
                s.spawn(move || this.member(i, n));
            }
            this.member(0, n);
        });
        self.logits_owned
    }

    fn member(&self, i: usize, n: usize) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.work(i, n)));
        if let Err(panic) = outcome {
            self.barrier.broken.store(true, Ordering::Relaxed);
            std::panic::resume_unwind(panic);
        }
    }

    /// Thread `i`'s share of the token. Between two barriers each buffer is either read by
    /// all or written in disjoint parts, never both; the SAFETY notes name the phase.
    fn work(&self, i: usize, n: usize) {
        let cfg = &self.model.cfg;
        let (h, inter, vocab) = (cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size);
        let (nh, nkv, hd) = (cfg.num_heads, cfg.num_kv_heads, cfg.head_dim);
        let (q_out, kv_out) = (nh * hd, nkv * hd);
        let len = self.offset + 1;
        let scale = 1.0 / (hd as f32).sqrt();
        let f16 = self.model.arith == super::Arith::LlamaCpp;
        let mut normed = vec![0f32; h];
        let mut gate = vec![0f32; inter.div_ceil(n) + 1];
        let mut up = vec![0f32; inter.div_ceil(n) + 1];
        let mut scores = vec![0f32; len];
        let mut sum_rows = vec![0f32; h.div_ceil(n) + 1];
        for (l, lp) in self.plan.layers.iter().enumerate() {
            let [wq, wk, wv, wo, wg, wu, wd] = self.mats.layers[l];
            // Attention input, then this thread's rows of q, k and v.
            // SAFETY: x is only read until the barrier after attention.
            rms_norm(unsafe { self.x.read(0..h) }, &lp.input_norm, &mut normed);
            let input = Input::new(&normed);
            let mine = block(i, n, q_out + 2 * kv_out);
            for (w, at) in [(wq, 0..q_out), (wk, q_out..q_out + kv_out), (wv, q_out + kv_out..q_out + 2 * kv_out)] {
                let r = within(&mine, at.clone());
                if !r.is_empty() {
                    // SAFETY: this thread's own block of qkv.
                    let out = unsafe { self.qkv.part(at.start + r.start..at.start + r.end) };
                    dot_rows_input(w.slice(r.start * h, r.len() * h), &input, out);
                }
            }
            self.barrier.wait();
            if i == 0 {
                // SAFETY: thread 0 alone writes qkv and this layer's cache row in this phase.
                let qkv = unsafe { self.qkv.part(0..q_out + 2 * kv_out) };
                self.finish_qkv(lp, qkv);
                if f16 {
                    // llama.cpp's F16 KV cache, and q converted to F16 to meet it.
                    qkv.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
                }
                let row = self.offset * kv_out..len * kv_out;
                unsafe { self.keys[l].part(row.clone()) }.copy_from_slice(&qkv[q_out..q_out + kv_out]);
                unsafe { self.values[l].part(row) }.copy_from_slice(&qkv[q_out + kv_out..]);
            }
            self.barrier.wait();
            // Attention, one query head at a time, this thread's heads.
            // SAFETY: q and the cache are read by all; attn is written per head.
            let (q, keys, vals) = unsafe {
                (self.qkv.read(0..q_out), self.keys[l].read(0..len * kv_out), self.values[l].read(0..len * kv_out))
            };
            for head in (i..nh).step_by(n) {
                let g = head / (nh / nkv);
                let qh = &q[head * hd..(head + 1) * hd];
                if f16 {
                    let at = |p: usize| p * kv_out + g * hd;
                    let out = unsafe { self.attn.part(head * hd..(head + 1) * hd) };
                    let (key, value) = (|p: usize| &keys[at(p)..at(p) + hd], |p: usize| &vals[at(p)..at(p) + hd]);
                    super::ggml_attention::head(qh, len, key, value, scale, out, &mut scores);
                    continue;
                }
                for (p, s) in scores.iter_mut().enumerate() {
                    let k = &keys[p * kv_out + g * hd..p * kv_out + (g + 1) * hd];
                    *s = super::dot(qh, k) * scale;
                }
                let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut total = 0f32;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    total += *s;
                }
                let out = unsafe { self.attn.part(head * hd..(head + 1) * hd) };
                out.fill(0.0);
                for (p, s) in scores.iter().enumerate() {
                    let w = s / total;
                    let v = &vals[p * kv_out + g * hd..p * kv_out + (g + 1) * hd];
                    out.iter_mut().zip(v).for_each(|(o, v)| *o += w * v);
                }
            }
            self.barrier.wait();
            // o_proj of this thread's rows, added to the residual.
            // SAFETY: attn is read by all until the barrier.
            self.add_to_residual(wo, unsafe { self.attn.read(0..q_out) }, lp.o_bias.as_ref(), (i, n), &mut sum_rows);
            self.barrier.wait();
            // MLP: gate and up of this thread's rows, SiLU(gate) · up into act.
            rms_norm(unsafe { self.x.read(0..h) }, &lp.post_norm, &mut normed);
            let mine = block(i, n, inter);
            let (g, u) = (&mut gate[..mine.len()], &mut up[..mine.len()]);
            let input = Input::new(&normed);
            dot_rows_input(wg.slice(mine.start * h, mine.len() * h), &input, g);
            dot_rows_input(wu.slice(mine.start * h, mine.len() * h), &input, u);
            add(g, lp.gate_bias.as_ref(), mine.clone());
            add(u, lp.up_bias.as_ref(), mine.clone());
            // SAFETY: act is written in this thread's rows only.
            for ((a, g), u) in unsafe { self.act.part(mine) }.iter_mut().zip(g.iter()).zip(u.iter()) {
                *a = g / (1.0 + (-g).exp()) * u;
            }
            self.barrier.wait();
            // SAFETY: act is read by all until the barrier.
            self.add_to_residual(wd, unsafe { self.act.read(0..inter) }, lp.down_bias.as_ref(), (i, n), &mut sum_rows);
            self.barrier.wait();
        }
        rms_norm(unsafe { self.x.read(0..h) }, &self.plan.norm, &mut normed);
        let mine = block(i, n, vocab);
        // SAFETY: logits are written in this thread's rows only; the join publishes them.
        dot_rows(self.mats.lm_head.slice(mine.start * h, mine.len() * h), &normed, unsafe { self.logits.part(mine) });
    }

    /// Adds thread `i` of `n`'s block of rows of `w · input (+ bias)` to the residual stream
    /// (o_proj and down_proj); `sums` is the thread's scratch.
    fn add_to_residual(
        &self,
        w: Rows,
        input: &[f32],
        bias: Option<&Vec<f32>>,
        (i, n): (usize, usize),
        sums: &mut [f32],
    ) {
        let mine = block(i, n, self.model.cfg.hidden_size);
        let sums = &mut sums[..mine.len()];
        dot_rows(w.slice(mine.start * input.len(), mine.len() * input.len()), input, sums);
        add(sums, bias, mine.clone());
        // SAFETY: x is written in this thread's rows only until the next barrier.
        unsafe { self.x.part(mine) }.iter_mut().zip(sums.iter()).for_each(|(x, s)| *x += s);
    }

    /// Biases, q/k norms, clip and RoPE on the new token's q, k, v (in place), as
    /// [`LoadedModel::attention`] orders them.
    fn finish_qkv(&self, lp: &LayerPlan, qkv: &mut [f32]) {
        let cfg = &self.model.cfg;
        let hd = cfg.head_dim;
        let (q_out, kv_out) = (cfg.num_heads * hd, cfg.num_kv_heads * hd);
        let (q, kv) = qkv.split_at_mut(q_out);
        let (k, v) = kv.split_at_mut(kv_out);
        add(q, lp.q_bias.as_ref(), 0..q_out);
        add(k, lp.k_bias.as_ref(), 0..kv_out);
        add(v, lp.v_bias.as_ref(), 0..kv_out);
        if let Some((qn, kn)) = &lp.qk_norm
            && self.plan.whole_projection_norm
        {
            let (q0, k0) = (q.to_vec(), k.to_vec());
            rms_norm(&q0, qn, q);
            rms_norm(&k0, kn, k);
        }
        if let Some(c) = cfg.clip_qkv {
            let c = c as f32;
            for x in q.iter_mut().chain(k.iter_mut()).chain(v.iter_mut()) {
                *x = x.clamp(-c, c);
            }
        }
        if let Some((qn, kn)) = &lp.qk_norm
            && !self.plan.whole_projection_norm
        {
            for (heads, n) in [(&mut *q, qn), (&mut *k, kn)] {
                for head in heads.chunks_exact_mut(hd) {
                    let before = head.to_vec();
                    rms_norm(&before, n, head);
                }
            }
        }
        let at = self.offset * (hd / 2)..(self.offset + 1) * (hd / 2);
        let (cos, sin) = (&self.plan.cos[at.clone()], &self.plan.sin[at]);
        for head in q.chunks_exact_mut(hd).chain(k.chunks_exact_mut(hd)) {
            self.model.rotary.rotate_head(head, cos, sin);
        }
    }
}
