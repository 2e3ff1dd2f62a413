// The decoder models (see transformer.h for the design). Numerics follow transformers' eager code
// where the order of operations matters for float rounding: RMSNorm in float32, rotary cos/sin
// computed in float32 then cast, softmax in float32, residual adds in the run dtype, Mixtral's
// routing weights in float32 cast back before weighting.
#include "worker/torch/transformer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "common/error.h"

namespace moe {
namespace {

std::string shapeText(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
std::string shapeText(const std::vector<int64_t>& s) { return shapeText(at::IntArrayRef(s)); }

at::ScalarType storageScalarType(StorageType t) {
  switch (t) {
    case StorageType::F32: return at::kFloat;
    case StorageType::F16: return at::kHalf;
    case StorageType::BF16: return at::kBFloat16;
    default: return at::kFloat;  // block types: read as float32 by readF32
  }
}

// Reads tensors by name, checks their shapes against the config and converts each one to the run
// dtype and device on its own, so peak memory is the model plus one tensor.
class WeightReader {
 public:
  WeightReader(const WeightSource& w, const ModelConfig& c, at::Device device, at::ScalarType dtype)
      : w_(w), c_(c), device_(device), dtype_(dtype) {}

  bool has(const std::string& name) const { return w_.has(name); }

  at::Tensor get(const std::string& name, const std::vector<int64_t>& shape) const {
    MOE_CHECK(w_.has(name), w_.origin(), ": missing tensor '", name, "' (expected shape ", shapeText(shape), " for ",
              c_.architecture, " as configured by ", c_.file, ")");
    const TensorMeta& m = w_.meta(name);
    MOE_CHECK(m.shape == shape, w_.origin(), ": tensor '", name, "' has shape ", shapeText(m.shape), ", expected ",
              shapeText(shape), " (", c_.architecture, " as configured by ", c_.file, "; in ", m.file, ")");
    const void* raw = w_.rawData(name);
    at::Tensor t;
    if (raw != nullptr) {
      // The stored bytes may be unaligned: copy into a fresh tensor of the stored type first.
      t = at::empty(shape, at::TensorOptions().dtype(storageScalarType(m.type)));
      std::memcpy(t.data_ptr(), raw, static_cast<size_t>(t.nbytes()));
    } else {
      t = at::empty(shape, at::TensorOptions().dtype(at::kFloat));
      w_.readF32(name, t.data_ptr<float>());
    }
    w_.release(name);  // read once: a mapped file's pages can leave the resident set
    return t.to(device_, dtype_);
  }
  at::Tensor optional(const std::string& name, const std::vector<int64_t>& shape, bool wanted) const {
    return wanted ? get(name, shape) : at::Tensor();
  }
  const std::string& origin() const { return w_.origin(); }

 private:
  const WeightSource& w_;
  const ModelConfig& c_;
  at::Device device_;
  at::ScalarType dtype_;
};

at::Tensor activate(const at::Tensor& x, Activation a) {
  switch (a) {
    case Activation::Silu: return at::silu(x);
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::GeluExact: return at::gelu(x);
    case Activation::Relu: return at::relu(x);
  }
  MOE_THROW("unknown activation");
}

// transformers' q * cos + rotate_half(q) * sin with rotate_half(x) = [-x2, x1], written half by half
// into one output: [x1 c - x2 s, x2 c + x1 s], where c and s are the first halves of cos and sin
// (the two halves are equal). Same products and sums (x1 c + (-x2) s), without the four [N, heads,
// D] temporaries of the literal form.
at::Tensor applyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  at::Tensor c = cos.narrow(-1, 0, half), s = sin.narrow(-1, 0, half);
  at::Tensor x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor o1 = out.narrow(-1, 0, half), o2 = out.narrow(-1, half, half);
  at::mul_out(o1, x1, c).addcmul_(x2, s, -1);
  at::mul_out(o2, x2, c).addcmul_(x1, s, 1);
  return out;
}

// transformers' _compute_default_rope_parameters and the linear / llama3 variants, in float32 with
// the same operations (Python's `scalar / tensor` is reciprocal() * scalar).
at::Tensor ropeInverseFrequencies(const ModelConfig& c, double theta, const RopeScaling& r, at::Device device) {
  at::Tensor exponent = at::arange(0, c.headDim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
                        static_cast<double>(c.headDim);
  at::Tensor invFreq = at::pow(at::Scalar(theta), exponent).reciprocal();
  if (r.type == RopeScalingType::Linear) {
    invFreq = invFreq / r.factor;
  } else if (r.type == RopeScalingType::Llama3) {
    double oldContext = static_cast<double>(r.originalMaxPositions);
    double lowFreqWavelen = oldContext / r.lowFreqFactor;
    double highFreqWavelen = oldContext / r.highFreqFactor;
    at::Tensor wavelen = invFreq.reciprocal() * (2 * M_PI);
    at::Tensor scaled = at::where(wavelen > lowFreqWavelen, invFreq / r.factor, invFreq);
    at::Tensor smooth = (wavelen.reciprocal() * oldContext - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
    at::Tensor smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
    at::Tensor medium = (wavelen < highFreqWavelen).logical_not() & (wavelen > lowFreqWavelen).logical_not();
    invFreq = at::where(medium, smoothed, scaled);
  }
  return invFreq.to(device);
}

}  // namespace

at::Tensor Linear::operator()(const at::Tensor& x) const {
  if (bias.defined()) return at::addmm(bias, x, weight.t());
  return at::mm(x, weight.t());
}

at::Tensor Norm::operator()(const at::Tensor& x) const {
  if (!rms) return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  // As transformers' LlamaRMSNorm: normalise in float32, cast back, then scale.
  at::Tensor xf = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  at::Tensor normed = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps);
  if (scaleInFloat) {  // Gemma3RMSNorm: (normed * (1 + w)) in float32, then cast
    normed = normed * weight;
    return x.scalar_type() == at::kFloat ? normed : normed.to(x.scalar_type());
  }
  if (x.scalar_type() != at::kFloat) normed = normed.to(x.scalar_type());
  return weight * normed;
}

at::Tensor Mlp::operator()(const at::Tensor& x) const {
  at::Tensor h = in(x);
  if (gated && act == Activation::Silu) {
    // In place on the gate half of the fused [N, 2 * width] product: no [N, width] temporaries;
    // the down projection reads the strided half directly (row stride 2 * width).
    at::Tensor g = h.narrow(1, 0, width);
    at::silu_(g);
    h = g.mul_(h.narrow(1, width, width));
  } else if (gated) {
    h = activate(h.narrow(1, 0, width), act).mul_(h.narrow(1, width, width));
  } else {
    h = activate(h, act);
  }
  return down(h);
}

at::Tensor SparseMoe::operator()(const at::Tensor& x, at::Tensor& selected) const {
  at::Tensor logits = router(x);
  at::Tensor probs = at::softmax(logits, 1, at::kFloat);
  auto top = at::topk(probs, topK, -1);
  at::Tensor weights = std::get<0>(top);
  selected = std::get<1>(top);
  weights = (weights / weights.sum(-1, /*keepdim=*/true)).to(x.scalar_type());

  at::Tensor out = at::zeros_like(x);
  // One pass per expert over the tokens that chose it, in expert order as transformers does, so
  // each token's contributions are summed in the same order.
  for (size_t e = 0; e < experts.size(); ++e) {
    at::Tensor hit = selected.eq(static_cast<int64_t>(e)).nonzero();  // [M, 2]: token, slot
    if (hit.size(0) == 0) continue;
    at::Tensor tokens = hit.select(1, 0);
    at::Tensor slots = hit.select(1, 1);
    at::Tensor y = experts[e](x.index_select(0, tokens));
    y.mul_(weights.reshape({-1}).index_select(0, tokens * topK + slots).unsqueeze(1));
    out.index_add_(0, tokens, y);
  }
  return out;
}

at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& mask,
                     double scale, int64_t window, const KeyValues* past, KeyValues* present) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t KVH = k.size(2), G = H / KVH;
  at::Tensor keys = k.permute({0, 2, 1, 3});  // [B, KVH, T, D]
  at::Tensor values = v.permute({0, 2, 1, 3});
  const bool hasPast = past != nullptr && past->key.defined();
  if (hasPast) {
    // A prefix shared by every row is stored once ([1, KVH, P, D]).
    keys = at::cat({past->key.expand({B, KVH, past->key.size(2), D}), keys}, 2);
    values = at::cat({past->value.expand({B, KVH, past->value.size(2), D}), values}, 2);
  }
  keys = keys.contiguous();
  values = values.contiguous();
  if (present != nullptr) *present = KeyValues{keys, values};
  const int64_t S = keys.size(2), P = S - T;
  MOE_CHECK(mask.size(0) == B && mask.size(2) == T && mask.size(3) == S, "attention: mask ", shapeText(mask.sizes()),
            " does not match ", B, " rows, ", T, " queries, ", S, " keys");

  // Queries grouped by the KV head they read, position-major: [B * KVH, T * G, D], so one batched
  // matmul per KV head serves its G query heads and a block of positions is a contiguous range.
  at::Tensor queries = q.view({B, T, KVH, G, D}).permute({0, 2, 1, 3, 4}).contiguous();
  queries.mul_(scale);
  queries = queries.view({B * KVH, T * G, D});
  keys = keys.view({B * KVH, S, D});
  values = values.view({B * KVH, S, D});

  at::Tensor out = at::empty({B, T, KVH, G, D}, q.options());
  // Causal blocks: queries [q0, q1) read keys [k0, P + q1) only, where k0 > 0 under a sliding
  // window, which skips about half the work of a full T x S product on long prompts and bounds
  // the scores' memory (float32 [rows, H, block, keys]) together with the row chunks.
  const int64_t block = std::min<int64_t>(T, 128);
  const int64_t rowBytes = H * block * S * 4;
  const int64_t budget = int64_t{256} << 20;
  const int64_t rowsPerChunk = std::max<int64_t>(1, std::min<int64_t>(B, budget / std::max<int64_t>(rowBytes, 1)));
  for (int64_t b0 = 0; b0 < B; b0 += rowsPerChunk) {
    const int64_t n = std::min(rowsPerChunk, B - b0);
    for (int64_t q0 = 0; q0 < T; q0 += block) {
      const int64_t tq = std::min(block, T - q0);
      const int64_t kEnd = P + q0 + tq;
      // With a past prefix the rows' padding sits between prefix and suffix, so key indices are
      // not positions: the mask alone applies the window.
      const int64_t kBegin = window > 0 && !hasPast ? std::max<int64_t>(0, P + q0 - window + 1) : 0;
      const int64_t sk = kEnd - kBegin;
      at::Tensor qb = queries.narrow(0, b0 * KVH, n * KVH).narrow(1, q0 * G, tq * G);
      at::Tensor kb = keys.narrow(0, b0 * KVH, n * KVH).narrow(1, kBegin, sk);
      at::Tensor vb = values.narrow(0, b0 * KVH, n * KVH).narrow(1, kBegin, sk);
      at::Tensor scores = at::bmm(qb, kb.transpose(1, 2));  // [n * KVH, tq * G, sk]
      scores.view({n, KVH, tq, G, sk})
          .add_(mask.narrow(0, b0, n).narrow(2, q0, tq).narrow(3, kBegin, sk).view({n, 1, tq, 1, sk}));
      at::Tensor probs = scores.scalar_type() == at::kFloat
                             ? at::softmax(scores, -1)
                             : at::softmax(scores, -1, at::kFloat).to(scores.scalar_type());
      at::Tensor o = at::bmm(probs, vb);  // [n * KVH, tq * G, D]
      out.narrow(0, b0, n).narrow(1, q0, tq).copy_(o.view({n, KVH, tq, G, D}).permute({0, 2, 1, 3, 4}));
    }
  }
  return out.view({B, T, H * D});
}

at::Tensor attentionMask(const at::Tensor& keyPos, const at::Tensor& keyReal, const at::Tensor& queryPos,
                         int64_t window, at::ScalarType dtype) {
  const int64_t B = keyPos.size(0), S = keyPos.size(1), T = queryPos.size(1);
  at::Tensor qp = queryPos.view({B, T, 1});
  at::Tensor kp = keyPos.view({B, 1, S});
  at::Tensor allowed = kp.le(qp).logical_and(keyReal.view({B, 1, S}));
  if (window > 0) allowed = allowed.logical_and((qp - kp).lt(window));
  auto longOpts = at::TensorOptions().dtype(at::kLong).device(keyPos.device());
  at::Tensor self = at::arange(0, S, longOpts).view({1, S}).eq(at::arange(S - T, S, longOpts).view({T, 1}));
  allowed = allowed.logical_or(self.unsqueeze(0));
  return at::zeros({B, 1, T, S}, keyPos.options().dtype(dtype))
      .masked_fill_(allowed.logical_not().unsqueeze(1), -std::numeric_limits<double>::infinity());
}

Transformer::Transformer(const ModelConfig& c, const WeightSource& w, at::Device device, at::ScalarType dtype)
    : config_(c), device_(device), dtype_(dtype) {
  WeightReader r(w, c, device, dtype);
  const int64_t H = c.hiddenSize, V = c.vocabSize, I = c.intermediateSize;
  const int64_t qDim = c.numHeads * c.headDim, kvDim = c.numKvHeads * c.headDim;
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.headDim));

  if (c.family == ModelFamily::Gpt2) {
    // GPT2LMHeadModel saves "transformer.*"; a bare GPT2Model (as some hub checkpoints) has no prefix.
    std::string p = r.has("transformer.wte.weight") || !r.has("wte.weight") ? "transformer." : "";
    embed_ = r.get(p + "wte.weight", {V, H});
    positions_ = r.get(p + "wpe.weight", {c.maxPositions, H});
    // Conv1D stores [in, out]: transposed once here so every projection is a Linear.
    auto conv = [&](const std::string& name, int64_t in, int64_t out) {
      return Linear{r.get(name + ".weight", {in, out}).t().contiguous(), r.get(name + ".bias", {out})};
    };
    auto layerNorm = [&](const std::string& name) {
      return Norm{r.get(name + ".weight", {H}), r.get(name + ".bias", {H}), c.normEps, false};
    };
    for (int64_t l = 0; l < c.numLayers; ++l) {
      std::string n = p + "h." + std::to_string(l) + ".";
      DecoderLayer L;
      L.attnNorm = layerNorm(n + "ln_1");
      L.qkv = conv(n + "attn.c_attn", H, 3 * H);
      L.out = conv(n + "attn.c_proj", H, H);
      L.mlpNorm = layerNorm(n + "ln_2");
      L.mlp.gated = false;
      L.mlp.act = c.hiddenAct;
      L.mlp.width = I;
      L.mlp.in = conv(n + "mlp.c_fc", H, I);
      L.mlp.down = conv(n + "mlp.c_proj", I, H);
      L.scale = scale / (c.scaleAttnByInverseLayerIdx ? static_cast<double>(l + 1) : 1.0);
      layers_.push_back(std::move(L));
    }
    finalNorm_ = layerNorm(p + "ln_f");
  } else {
    const bool gemma = c.family == ModelFamily::Gemma3;
    embed_ = r.get("model.embed_tokens.weight", {V, H});
    invFreq_ = ropeInverseFrequencies(c, c.ropeTheta, c.ropeScaling, device);
    if (c.ropeLocalTheta > 0) invFreqLocal_ = ropeInverseFrequencies(c, c.ropeLocalTheta, RopeScaling{}, device);
    // transformers: torch.tensor(hidden ** 0.5) cast to the embedding's dtype.
    if (c.embedScale > 0) embedScale_ = at::scalar_tensor(c.embedScale, at::kFloat).to(dtype).to(device);
    // Gemma's norms hold the offset w; the engine keeps 1 + w in float32 (Gemma3RMSNorm's math).
    auto norm = [&](const std::string& name, int64_t size) {
      if (!gemma) return Norm{r.get(name, {size}), at::Tensor(), c.normEps, true};
      Norm n{r.get(name, {size}).to(at::kFloat).add(1.0), at::Tensor(), c.normEps, true};
      n.scaleInFloat = true;
      return n;
    };
    auto rms = [&](const std::string& name) { return norm(name, H); };
    auto gatedMlp = [&](const std::string& gate, const std::string& up, const std::string& down, int64_t width,
                        bool bias) {
      Mlp m;
      m.gated = true;
      m.act = c.hiddenAct;
      m.width = width;
      m.in.weight = at::cat({r.get(gate + ".weight", {width, H}), r.get(up + ".weight", {width, H})}, 0);
      if (bias) m.in.bias = at::cat({r.get(gate + ".bias", {width}), r.get(up + ".bias", {width})}, 0);
      m.down = Linear{r.get(down + ".weight", {H, width}), r.optional(down + ".bias", {H}, bias)};
      return m;
    };
    for (int64_t l = 0; l < c.numLayers; ++l) {
      std::string n = "model.layers." + std::to_string(l) + ".";
      DecoderLayer L;
      L.attnNorm = rms(n + "input_layernorm.weight");
      std::string a = n + "self_attn.";
      L.qkv.weight = at::cat({r.get(a + "q_proj.weight", {qDim, H}), r.get(a + "k_proj.weight", {kvDim, H}),
                              r.get(a + "v_proj.weight", {kvDim, H})},
                             0);
      if (c.qkvBias)
        L.qkv.bias = at::cat({r.get(a + "q_proj.bias", {qDim}), r.get(a + "k_proj.bias", {kvDim}),
                              r.get(a + "v_proj.bias", {kvDim})},
                             0);
      L.out = Linear{r.get(a + "o_proj.weight", {H, qDim}), r.optional(a + "o_proj.bias", {H}, c.attentionBias)};
      if (gemma) {
        L.qNorm = norm(a + "q_norm.weight", c.headDim);
        L.kNorm = norm(a + "k_norm.weight", c.headDim);
        L.postAttnNorm = rms(n + "post_attention_layernorm.weight");
        L.mlpNorm = rms(n + "pre_feedforward_layernorm.weight");
        L.postMlpNorm = rms(n + "post_feedforward_layernorm.weight");
      } else {
        L.mlpNorm = rms(n + "post_attention_layernorm.weight");
      }
      if (c.family == ModelFamily::Mixtral) {
        std::string m = n + "block_sparse_moe.";
        L.moe.router = Linear{r.get(m + "gate.weight", {c.numExperts, H}), at::Tensor()};
        L.moe.topK = c.expertsPerToken;
        for (int64_t e = 0; e < c.numExperts; ++e) {
          std::string x = m + "experts." + std::to_string(e) + ".";
          L.moe.experts.push_back(gatedMlp(x + "w1", x + "w3", x + "w2", I, false));
        }
      } else {
        L.mlp = gatedMlp(n + "mlp.gate_proj", n + "mlp.up_proj", n + "mlp.down_proj", I, c.mlpBias);
      }
      if (c.layerSliding.empty()) {
        L.window = l >= c.slidingWindowFromLayer ? c.slidingWindow : 0;
      } else {
        L.window = c.layerSliding[static_cast<size_t>(l)] ? c.slidingWindow : 0;
        L.localRope = c.layerSliding[static_cast<size_t>(l)] && invFreqLocal_.defined();
      }
      L.scale = c.queryScale > 0 ? c.queryScale : scale;
      layers_.push_back(std::move(L));
    }
    finalNorm_ = rms("model.norm.weight");
  }
  // transformers ties lm_head to the embedding when configured; a checkpoint without lm_head.weight
  // can only mean the same.
  if (c.tieWordEmbeddings || !r.has("lm_head.weight")) {
    lmHead_ = embed_;
  } else {
    lmHead_ = r.get("lm_head.weight", {V, H});
  }
}

int64_t Transformer::parameterBytes() const {
  std::vector<const void*> seen;
  int64_t total = 0;
  auto add = [&](const at::Tensor& t) {
    if (!t.defined()) return;
    const void* p = t.data_ptr();
    if (std::find(seen.begin(), seen.end(), p) != seen.end()) return;
    seen.push_back(p);
    total += static_cast<int64_t>(t.nbytes());
  };
  auto addNorm = [&](const Norm& n) { add(n.weight); add(n.bias); };
  auto addLinear = [&](const Linear& l) { add(l.weight); add(l.bias); };
  auto addMlp = [&](const Mlp& m) { addLinear(m.in); addLinear(m.down); };
  add(embed_);
  add(positions_);
  add(lmHead_);
  addNorm(finalNorm_);
  for (const DecoderLayer& L : layers_) {
    addNorm(L.attnNorm);
    addNorm(L.mlpNorm);
    addNorm(L.qNorm);
    addNorm(L.kNorm);
    addNorm(L.postAttnNorm);
    addNorm(L.postMlpNorm);
    addLinear(L.qkv);
    addLinear(L.out);
    addMlp(L.mlp);
    addLinear(L.moe.router);
    for (const Mlp& e : L.moe.experts) addMlp(e);
  }
  return total;
}

std::pair<at::Tensor, at::Tensor> Transformer::rotary(const at::Tensor& positions, const at::Tensor& invFreq) const {
  at::Tensor freqs = positions.to(at::kFloat).unsqueeze(1) * invFreq.unsqueeze(0);  // [N, D/2]
  at::Tensor emb = at::cat({freqs, freqs}, -1).unsqueeze(1);                         // [N, 1, D]
  return {emb.cos().to(dtype_), emb.sin().to(dtype_)};
}

ForwardOutput Transformer::forward(const ForwardInput& in) const {
  const ModelConfig& c = config_;
  const int64_t B = in.ids.size(0), T = in.ids.size(1);
  const int64_t H = c.hiddenSize, NH = c.numHeads, KVH = c.numKvHeads, D = c.headDim;

  // Real tokens, packed row by row; with left padding each row's last real token is at T - 1.
  at::Tensor realFlat = in.real.reshape({-1});
  const bool padded = !realFlat.all().item<bool>();
  at::Tensor index = padded ? realFlat.nonzero().squeeze(1) : at::Tensor();
  auto pack = [&](const at::Tensor& t) { return padded ? t.index_select(0, index) : t; };
  at::Tensor positions = pack(in.positions.reshape({-1}));
  const int64_t N = positions.size(0);

  at::Tensor x = at::embedding(embed_, pack(in.ids.reshape({-1})));  // [N, H]
  if (positions_.defined()) x = x + at::embedding(positions_, positions);
  if (embedScale_.defined()) x = x * embedScale_;
  at::Tensor cos, sin, cosLocal, sinLocal;
  if (invFreq_.defined()) std::tie(cos, sin) = rotary(positions, invFreq_);
  if (invFreqLocal_.defined()) std::tie(cosLocal, sinLocal) = rotary(positions, invFreqLocal_);

  const bool hasPast = in.past != nullptr && !in.past->empty();
  const int64_t P = hasPast ? (*in.past)[0].key.size(2) : 0;
  MOE_CHECK(!hasPast || static_cast<int64_t>(in.past->size()) == c.numLayers, "forward: past prefix has ",
            hasPast ? in.past->size() : 0, " layers, the model ", c.numLayers);
  // Keys: the shared prefix (positions 0..P-1, all real), then the rows' own tokens.
  at::Tensor keyPos = in.positions, keyReal = in.real;
  if (hasPast) {
    auto longOpts = at::TensorOptions().dtype(at::kLong).device(in.ids.device());
    keyPos = at::cat({at::arange(0, P, longOpts).view({1, P}).expand({B, P}), in.positions}, 1);
    keyReal = at::cat({at::ones({B, P}, in.real.options()), in.real}, 1);
  }
  // One mask per distinct window (sliding windows are all-or-nothing per layer).
  std::vector<std::pair<int64_t, at::Tensor>> masks;
  auto maskFor = [&](int64_t window) -> const at::Tensor& {
    if (window >= P + T) window = 0;  // the window covers every prompt: plain causal
    for (auto& [w, m] : masks)
      if (w == window) return m;
    masks.emplace_back(window, attentionMask(keyPos, keyReal, in.positions, window, dtype_));
    return masks.back().second;
  };
  if (in.present != nullptr) in.present->assign(static_cast<size_t>(c.numLayers), KeyValues{});

  ForwardOutput out;
  at::Tensor rowOfToken;  // [N] row of each packed token (router counts)
  std::vector<at::Tensor> counts;  // per layer [B, experts]
  std::vector<at::Tensor> selections;  // per layer [N, topK] (wantSelections)
  if (c.family == ModelFamily::Mixtral) {
    rowOfToken = pack(at::arange(B, in.ids.options()).unsqueeze(1).expand({B, T}).reshape({-1}));
  }

  for (int64_t l = 0; l < c.numLayers; ++l) {
    const DecoderLayer& L = layers_[static_cast<size_t>(l)];
    at::Tensor h = L.attnNorm(x);
    at::Tensor qkv = L.qkv(h);  // [N, (NH + 2 KVH) D]
    at::Tensor q = qkv.narrow(1, 0, NH * D).view({N, NH, D});
    at::Tensor k = qkv.narrow(1, NH * D, KVH * D).view({N, KVH, D});
    at::Tensor v = qkv.narrow(1, (NH + KVH) * D, KVH * D).view({N, KVH, D});
    if (L.qNorm.defined()) {
      q = L.qNorm(q);
      k = L.kNorm(k);
    }
    if (cos.defined()) {
      const at::Tensor& co = L.localRope ? cosLocal : cos;
      const at::Tensor& si = L.localRope ? sinLocal : sin;
      q = applyRotary(q, co, si);
      k = applyRotary(k, co, si);
    }
    auto unpack = [&](const at::Tensor& t, int64_t heads) {
      if (!padded) return t.reshape({B, T, heads, D});
      at::Tensor full = at::zeros({B * T, heads, D}, t.options());
      full.index_copy_(0, index, t.contiguous());
      return full.view({B, T, heads, D});
    };
    const int64_t window = L.window >= P + T ? 0 : L.window;
    at::Tensor a = attention(unpack(q, NH), unpack(k, KVH), unpack(v, KVH), maskFor(window), L.scale, window,
                             hasPast ? &(*in.past)[static_cast<size_t>(l)] : nullptr,
                             in.present != nullptr ? &(*in.present)[static_cast<size_t>(l)] : nullptr);
    a = pack(a.view({B * T, NH * D}));
    if (L.postAttnNorm.defined()) {
      x = x + L.postAttnNorm(L.out(a));
    } else {
      x = x + L.out(a);
    }

    h = L.mlpNorm(x);
    if (!L.moe.experts.empty()) {
      at::Tensor selected;
      x = x + L.moe(h, selected);
      // counts[b, l, e] += 1 for every (token of row b, chosen expert e).
      at::Tensor flat = (rowOfToken.unsqueeze(1) * c.numExperts + selected).reshape({-1});
      counts.push_back(at::bincount(flat, {}, B * c.numExperts).view({B, c.numExperts}));
      if (in.wantSelections) selections.push_back(selected);
    } else if (L.postMlpNorm.defined()) {
      x = x + L.postMlpNorm(L.mlp(h));
    } else {
      x = x + L.mlp(h);
    }
  }

  if (!counts.empty()) out.routerCounts = at::stack(counts, 1).to(at::kCPU);
  if (!selections.empty()) out.routerSelected = at::stack(selections, 1).to(at::kCPU);
  if (!in.wantLogits) return out;

  // Each row's last token: with left padding, the last packed token of each row.
  at::Tensor last;
  if (padded) {
    at::Tensor ends = in.real.sum(1).cumsum(0) - 1;  // [B]
    last = x.index_select(0, ends);
  } else {
    last = x.view({B, T, H}).select(1, T - 1);
  }
  out.hidden = finalNorm_(last);
  out.logits = at::mm(out.hidden, lmHead_.t());
  if (c.finalLogitSoftcap > 0) out.logits = at::tanh(out.logits / c.finalLogitSoftcap) * c.finalLogitSoftcap;
  return out;
}

}  // namespace moe
