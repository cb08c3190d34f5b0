// Per-sequence lengths and bias, read once per CTA (or per tile) and clamped, because length
// arrays live on the device and the host cannot check them.
#pragma once

#include "sigattn/api.hpp"
#include "sigattn/detail/config.cuh"

namespace sigattn::kernel {

/// The real lengths of one batch entry, clamped to [0, max].
struct SeqLens {
  int q_len;
  int kv_len;
  /// Keys visible to query row i are j < key_end(i): kv_len, cut by the causal diagonal.
  /// `diag_offset` is 0 for top-left and kv_len - q_len for bottom-right alignment.
  int diag_offset;
  bool causal;

  SIGATTN_DEVICE int key_end(int row) const {
    return causal ? min(kv_len, max(row + diag_offset + 1, 0)) : kv_len;
  }
};

SIGATTN_DEVICE int clamp_len(int32_t const* lens, int b, int max_len) {
  if (lens == nullptr) return max_len;
  return min(max(__ldg(lens + b), 0), max_len);
}

/// The lengths of a batch entry from its (clamped) q_len and kv_len.
SIGATTN_DEVICE SeqLens make_seqlens(FwdParams const& p, int q_len, int kv_len) {
  SeqLens s;
  s.q_len = q_len;
  s.kv_len = kv_len;
  s.causal = p.causal != Causal::kNone;
  s.diag_offset = p.causal == Causal::kBottomRight ? s.kv_len - s.q_len : 0;
  return s;
}

SIGATTN_DEVICE SeqLens read_seqlens(FwdParams const& p, int b) {
  return make_seqlens(p, clamp_len(p.q_lens, b, p.max_q_len),
                      clamp_len(p.kv_lens, b, p.max_kv_len));
}

/// bias_b of SPEC section 1, in natural units. Only called when kv_len > 0.
SIGATTN_DEVICE float read_bias(FwdParams const& p, int b, int kv_len) {
  switch (p.bias_mode) {
    case BiasMode::kScalar:
      return p.bias;
    case BiasMode::kPerBatch:
      return __ldg(p.bias_per_batch + b);
    default:
      return -logf(static_cast<float>(kv_len));
  }
}

}  // namespace sigattn::kernel
