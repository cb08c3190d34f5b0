// sigattn::reference: an fp64 reference of sigmoid attention on the host, forward and backward.
//
// Plain C++17, no device code: for tests, examples and users who want to check a result. It
// follows SPEC section 1 exactly: trailing padding, lengths clamped to [0, max_len] as the kernels
// clamp them, the three bias modes, both causal alignments, GQA, padded rows written as exact
// zeros, and nothing read from padding (so NaN stored there never reaches an output). Any
// head_dim > 0 is accepted, not only the ones the kernels support. Inputs are host arrays of float
// or double (for example the bf16/fp16 inputs rounded and widened); every sum is in double.
// Cost: O(batch * num_heads * max_q_len * max_kv_len * head_dim); meant for small problems, with
// forward_row() for spot checks of large ones.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "sigattn/api.hpp"

namespace sigattn {
namespace reference {

/// A problem described on the host: the sizes, layouts and options of FwdParams / BwdParams, with
/// the length and bias arrays as host vectors. Strides are in elements, as in FwdParams.
struct ProblemDesc {
  int32_t batch = 0;
  int32_t num_heads = 0;     ///< Hq
  int32_t num_kv_heads = 0;  ///< Hkv; num_heads % num_kv_heads == 0
  int32_t head_dim = 0;      ///< any D > 0
  int32_t max_q_len = 0;
  int32_t max_kv_len = 0;
  std::vector<int32_t> q_lens;   ///< empty (every sequence full) or `batch` values, clamped on use
  std::vector<int32_t> kv_lens;  ///< empty (every sequence full) or `batch` values, clamped on use
  Strides q_stride;              ///< Q
  Strides k_stride;              ///< K
  Strides v_stride;              ///< V
  Strides o_stride;              ///< O (forward output)
  Strides dout_stride;           ///< dO (backward input)
  Strides dq_stride;             ///< dQ (backward output)
  Strides dk_stride;             ///< dK (backward output)
  Strides dv_stride;             ///< dV (backward output)
  double scale = 0.0;            ///< 0 means 1/sqrt(head_dim), as in FwdParams
  BiasMode bias_mode = BiasMode::kNegLogKvLen;
  double bias = 0.0;                  ///< BiasMode::kScalar
  std::vector<float> bias_per_batch;  ///< BiasMode::kPerBatch: `batch` values
  Causal causal = Causal::kNone;
};

/// One (batch entry, token, head) row of a [B, S, H, D] tensor.
struct Row {
  int32_t b;
  int32_t i;
  int32_t h;
};

/// Which side of the problem a row list is about.
enum class Side : int32_t {
  kQuery = 0,     ///< Q, O, dO, dQ: max_q_len tokens, num_heads heads
  kKeyValue = 1,  ///< K, V, dK, dV: max_kv_len tokens, num_kv_heads heads
};

/// The host description of the problem that `p` launches, given host copies of its length arrays
/// (empty when p.q_lens / p.kv_lens are null) and of p.bias_per_batch (kPerBatch only). Copies the
/// sizes, strides (o_stride included), scale (0 stays 0: 1/sqrt(D)), bias and causal mode.
inline ProblemDesc describe(FwdParams const& p, std::vector<int32_t> q_lens = {},
                            std::vector<int32_t> kv_lens = {},
                            std::vector<float> bias_per_batch = {}) {
  ProblemDesc d;
  d.batch = p.batch;
  d.num_heads = p.num_heads;
  d.num_kv_heads = p.num_kv_heads;
  d.head_dim = p.head_dim;
  d.max_q_len = p.max_q_len;
  d.max_kv_len = p.max_kv_len;
  d.q_lens = std::move(q_lens);
  d.kv_lens = std::move(kv_lens);
  d.q_stride = p.q_stride;
  d.k_stride = p.k_stride;
  d.v_stride = p.v_stride;
  d.o_stride = p.o_stride;
  d.scale = p.scale;
  d.bias_mode = p.bias_mode;
  d.bias = p.bias;
  d.bias_per_batch = std::move(bias_per_batch);
  d.causal = p.causal;
  return d;
}

/// As above for a backward call: the forward's description plus the gradient strides.
inline ProblemDesc describe(BwdParams const& p, std::vector<int32_t> q_lens = {},
                            std::vector<int32_t> kv_lens = {},
                            std::vector<float> bias_per_batch = {}) {
  ProblemDesc d = describe(p.fwd, std::move(q_lens), std::move(kv_lens), std::move(bias_per_batch));
  d.dout_stride = p.dout_stride;
  d.dq_stride = p.dq_stride;
  d.dk_stride = p.dk_stride;
  d.dv_stride = p.dv_stride;
  return d;
}

/// Strides of a contiguous [B, S, H, D] tensor (the default layout).
inline Strides bshd_strides(int64_t seq, int64_t heads, int64_t head_dim) {
  return {seq * heads * head_dim, heads * head_dim, head_dim};
}

/// Strides of a contiguous [B, H, S, D] tensor.
inline Strides bhsd_strides(int64_t seq, int64_t heads, int64_t head_dim) {
  return {heads * seq * head_dim, head_dim, seq * head_dim};
}

/// Element offset of row (b, i, h).
inline int64_t offset(Strides const& s, int64_t b, int64_t i, int64_t h) {
  return b * s.batch + i * s.token + h * s.head;
}

/// Elements a host buffer needs for a [batch, seq, heads, head_dim] tensor with strides `s`
/// (non-negative): one past the largest offset, or 0 when the tensor is empty.
inline int64_t required_elements(Strides const& s, int64_t batch, int64_t seq, int64_t heads,
                                 int64_t head_dim) {
  if (batch <= 0 || seq <= 0 || heads <= 0 || head_dim <= 0) return 0;
  return offset(s, batch - 1, seq - 1, heads - 1) + head_dim;
}

/// True when `d` describes a problem the functions below accept: non-negative sizes, Hkv > 0,
/// Hq % Hkv == 0, head_dim > 0, length vectors empty or of size batch, bias_per_batch of size
/// batch with kPerBatch, enums in range. The functions below return false and write nothing
/// otherwise.
inline bool is_consistent(ProblemDesc const& d) {
  auto const n = static_cast<size_t>(d.batch < 0 ? 0 : d.batch);
  auto const bias_mode = static_cast<int32_t>(d.bias_mode);  // in step with api.hpp's enums
  auto const causal = static_cast<int32_t>(d.causal);
  return d.batch >= 0 && d.num_heads >= 0 && d.num_kv_heads > 0 && d.head_dim > 0 &&
         d.max_q_len >= 0 && d.max_kv_len >= 0 && d.num_heads % d.num_kv_heads == 0 &&
         (d.q_lens.empty() || d.q_lens.size() == n) &&
         (d.kv_lens.empty() || d.kv_lens.size() == n) && bias_mode >= 0 && bias_mode <= 2 &&
         causal >= 0 && causal <= 2 &&
         (d.bias_mode != BiasMode::kPerBatch || d.bias_per_batch.size() == n);
}

// The per-entry helpers below (q_len, kv_len, bias, visible) assume is_consistent(d) and
// 0 <= b < d.batch.

/// Real query length of batch entry b: q_lens[b] clamped to [0, max_q_len] (max_q_len if empty).
inline int32_t q_len(ProblemDesc const& d, int32_t b) {
  int32_t const len = d.q_lens.empty() ? d.max_q_len : d.q_lens[b];
  return len < 0 ? 0 : (len > d.max_q_len ? d.max_q_len : len);
}

/// Real key/value length of batch entry b, clamped to [0, max_kv_len] likewise.
inline int32_t kv_len(ProblemDesc const& d, int32_t b) {
  int32_t const len = d.kv_lens.empty() ? d.max_kv_len : d.kv_lens[b];
  return len < 0 ? 0 : (len > d.max_kv_len ? d.max_kv_len : len);
}

/// The scale applied to Q K^T: d.scale, or 1/sqrt(head_dim) when it is 0.
inline double effective_scale(ProblemDesc const& d) {
  return d.scale != 0.0 ? d.scale : 1.0 / std::sqrt(static_cast<double>(d.head_dim));
}

/// bias_b inside the sigmoid. With kNegLogKvLen and kv_len == 0 there is no key, so the value
/// (returned as 0) is never used.
inline double bias(ProblemDesc const& d, int32_t b) {
  switch (d.bias_mode) {
    case BiasMode::kScalar:
      return d.bias;
    case BiasMode::kPerBatch:
      return static_cast<double>(d.bias_per_batch[b]);
    default: {
      int32_t const n = kv_len(d, b);
      return n > 0 ? -std::log(static_cast<double>(n)) : 0.0;
    }
  }
}

/// Does query row i of batch entry b see key j? False for padded queries or keys.
inline bool visible(ProblemDesc const& d, int32_t b, int64_t i, int64_t j) {
  int32_t const nq = q_len(d, b);
  int32_t const nk = kv_len(d, b);
  if (i >= nq || j >= nk) return false;
  if (d.causal == Causal::kTopLeft) return j <= i;
  if (d.causal == Causal::kBottomRight) return j <= i + nk - nq;
  return true;
}

/// The logistic function in double, without overflow for large |x|.
inline double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double const e = std::exp(x);
  return e / (1.0 + e);
}

/// Rows of one side of the problem: the real ones (token < clamped length) or the padded ones,
/// ordered by b, then token, then head.
inline std::vector<Row> rows(ProblemDesc const& d, Side side, bool real) {
  std::vector<Row> out;
  bool const q = side == Side::kQuery;
  int32_t const heads = q ? d.num_heads : d.num_kv_heads;
  for (int32_t b = 0; b < d.batch; ++b) {
    int32_t const len = q ? q_len(d, b) : kv_len(d, b);
    for (int32_t i = 0; i < (q ? d.max_q_len : d.max_kv_len); ++i)
      for (int32_t h = 0; h < heads; ++h)
        if ((i < len) == real) out.push_back({b, i, h});
  }
  return out;
}

/// The real rows of one side (where errors are measured).
inline std::vector<Row> real_rows(ProblemDesc const& d, Side side) { return rows(d, side, true); }

/// The padded rows of one side (which outputs must hold as exact zeros).
inline std::vector<Row> padded_rows(ProblemDesc const& d, Side side) {
  return rows(d, side, false);
}

/// ||x - ref|| / ||ref|| (L2) over the given rows of two [B, S, H, D] tensors with their own
/// strides. Returns 0 when both are zero there, +inf when only ref is, and NaN when x holds NaN.
template <class X, class Ref>
double relative_l2(std::vector<Row> const& which, int32_t head_dim, X const* x,
                   Strides const& x_stride, Ref const* ref, Strides const& ref_stride) {
  double err = 0.0;
  double norm = 0.0;
  for (Row const& r : which) {
    X const* xr = x + offset(x_stride, r.b, r.i, r.h);
    Ref const* rr = ref + offset(ref_stride, r.b, r.i, r.h);
    for (int32_t c = 0; c < head_dim; ++c) {
      double const diff = static_cast<double>(xr[c]) - static_cast<double>(rr[c]);
      err += diff * diff;
      norm += static_cast<double>(rr[c]) * static_cast<double>(rr[c]);
    }
  }
  if (norm == 0.0) return err == 0.0 ? 0.0 : (std::isnan(err) ? err : HUGE_VAL);
  return std::sqrt(err / norm);
}

/// As above, with both tensors laid out by the same strides.
template <class X, class Ref>
double relative_l2(std::vector<Row> const& which, int32_t head_dim, X const* x, Ref const* ref,
                   Strides const& stride) {
  return relative_l2(which, head_dim, x, stride, ref, stride);
}

/// True when every element of the given rows is exactly zero (+0 or -0); NaN is not zero.
template <class X>
bool rows_are_zero(std::vector<Row> const& which, int32_t head_dim, X const* x,
                   Strides const& stride) {
  for (Row const& r : which)
    for (int32_t c = 0; c < head_dim; ++c)
      if (!(x[offset(stride, r.b, r.i, r.h) + c] == X(0))) return false;
  return true;
}

/// One output row O[b, i, h, :] into out[0, head_dim), in double. Zero for a padded query row.
/// Reads only real rows of Q, K and V. Returns false (writing nothing) when !is_consistent(d) or
/// (b, i, h) is out of range.
template <class T>
bool forward_row(ProblemDesc const& d, T const* q, T const* k, T const* v, int32_t b, int32_t i,
                 int32_t h, double* out) {
  if (!is_consistent(d) || b < 0 || b >= d.batch || i < 0 || i >= d.max_q_len || h < 0 ||
      h >= d.num_heads)
    return false;
  int32_t const dim = d.head_dim;
  for (int32_t c = 0; c < dim; ++c) out[c] = 0.0;
  if (i >= q_len(d, b)) return true;
  int32_t const g = h / (d.num_heads / d.num_kv_heads);
  double const scale = effective_scale(d);
  double const bias_b = bias(d, b);
  T const* qr = q + offset(d.q_stride, b, i, h);
  for (int32_t j = 0; j < kv_len(d, b); ++j) {
    if (!visible(d, b, i, j)) continue;
    T const* kr = k + offset(d.k_stride, b, j, g);
    T const* vr = v + offset(d.v_stride, b, j, g);
    double dot = 0.0;
    for (int32_t c = 0; c < dim; ++c) dot += static_cast<double>(qr[c]) * kr[c];
    double const p = sigmoid(scale * dot + bias_b);
    for (int32_t c = 0; c < dim; ++c) out[c] += p * vr[c];
  }
  return true;
}

/// The forward: every row of O (real and padded, through d.o_stride) in double. Elements that
/// o_stride skips are left untouched. Returns false (writing nothing) when !is_consistent(d).
template <class T>
bool forward(ProblemDesc const& d, T const* q, T const* k, T const* v, double* o) {
  if (!is_consistent(d)) return false;
  for (int32_t b = 0; b < d.batch; ++b)
    for (int32_t i = 0; i < d.max_q_len; ++i)
      for (int32_t h = 0; h < d.num_heads; ++h)
        forward_row(d, q, k, v, b, i, h, o + offset(d.o_stride, b, i, h));
  return true;
}

/// The backward, in double, for the loss gradient dout (dO, through d.dout_stride):
///   P = sigmoid(scale * Q K^T + bias_b) on visible (i, j), dS = P (1 - P) (dO V^T),
///   dQ = scale * dS K,  dK = scale * dS^T Q,  dV = P^T dO,
/// with dK and dV summed over the query heads of each GQA group. Every row of dq, dk and dv is
/// written (through d.dq_stride, d.dk_stride, d.dv_stride); padded rows are exact zeros, and dO
/// at padded query rows is not read. Returns false (writing nothing) when !is_consistent(d).
template <class T>
bool backward(ProblemDesc const& d, T const* q, T const* k, T const* v, T const* dout, double* dq,
              double* dk, double* dv) {
  if (!is_consistent(d)) return false;
  int32_t const dim = d.head_dim;
  auto zero = [dim](double* base, Strides const& s, int32_t seq, int32_t heads, int32_t batch) {
    for (int32_t b = 0; b < batch; ++b)
      for (int32_t i = 0; i < seq; ++i)
        for (int32_t h = 0; h < heads; ++h)
          for (int32_t c = 0; c < dim; ++c) base[offset(s, b, i, h) + c] = 0.0;
  };
  zero(dq, d.dq_stride, d.max_q_len, d.num_heads, d.batch);
  zero(dk, d.dk_stride, d.max_kv_len, d.num_kv_heads, d.batch);
  zero(dv, d.dv_stride, d.max_kv_len, d.num_kv_heads, d.batch);
  double const scale = effective_scale(d);
  int32_t const group = d.num_heads > 0 ? d.num_heads / d.num_kv_heads : 1;
  for (int32_t b = 0; b < d.batch; ++b) {
    double const bias_b = bias(d, b);
    for (int32_t h = 0; h < d.num_heads; ++h) {
      int32_t const g = h / group;
      for (int32_t i = 0; i < q_len(d, b); ++i) {
        T const* qr = q + offset(d.q_stride, b, i, h);
        T const* dor = dout + offset(d.dout_stride, b, i, h);
        double* dqr = dq + offset(d.dq_stride, b, i, h);
        for (int32_t j = 0; j < kv_len(d, b); ++j) {
          if (!visible(d, b, i, j)) continue;
          T const* kr = k + offset(d.k_stride, b, j, g);
          T const* vr = v + offset(d.v_stride, b, j, g);
          double* dkr = dk + offset(d.dk_stride, b, j, g);
          double* dvr = dv + offset(d.dv_stride, b, j, g);
          double s = 0.0;
          double dp = 0.0;
          for (int32_t c = 0; c < dim; ++c) {
            s += static_cast<double>(qr[c]) * kr[c];
            dp += static_cast<double>(dor[c]) * vr[c];
          }
          double const p = sigmoid(scale * s + bias_b);
          double const ds = p * (1.0 - p) * dp;
          for (int32_t c = 0; c < dim; ++c) {
            dqr[c] += scale * ds * kr[c];
            dkr[c] += scale * ds * qr[c];
            dvr[c] += p * dor[c];
          }
        }
      }
    }
  }
  return true;
}

}  // namespace reference
}  // namespace sigattn
