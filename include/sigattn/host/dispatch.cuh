// Runtime values -> registry row -> compile-time kernel. A row is chosen from kKernelConfigs by
// direction, head dim, dtype, max_q_len, causal mask, requested path and the device's compute
// capability (the first row that matches, so a row for some calls only, long ones for example,
// comes before its general row; for a non-causal call of full query sequences, or any non-causal
// call for a row with rows_rule_padded_too, a row with full_rows_from may take the call from the
// general row, by the rows its tile pads); the launcher of that row is then instantiated with the
// row's constants. Nothing falls through to a "nearest" config: an unmatched request returns
// kErrorNotSupported (or kErrorArchMismatch when a row exists but the device is too old for it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "sigattn/api.hpp"
#include "sigattn/detail/numeric.cuh"
#include "sigattn/host/registry.hpp"

namespace sigattn::detail {

/// DType -> element type.
template <DType T>
using ElementOf = std::conditional_t<T == DType::kBF16, __nv_bfloat16, __half>;

/// What a request asks of the registry.
struct ConfigQuery {
  Direction direction;
  int head_dim;
  DType dtype;
  int max_q_len;
  bool causal;
  Path path;                  // kPortable or kHopper, never kAuto here
  bool full_queries = false;  // no q_lens: every query sequence is max_q_len long
};

/// max_q_len rounded up to a whole number of query tiles of `tile_q` rows.
constexpr int64_t padded_query_rows(int max_q_len, int tile_q) {
  return (int64_t{max_q_len} + tile_q - 1) / tile_q * tile_q;
}

/// Whether row `c` is of the request's key (direction, head dim, dtype, path) and enabled.
constexpr bool same_key(KernelConfig const& c, ConfigQuery const& q) {
  return c.direction == q.direction && c.head_dim == q.head_dim && c.dtype == q.dtype &&
         c.path == q.path && is_enabled(c);
}

constexpr bool matches(KernelConfig const& c, ConfigQuery const& q) {
  return same_key(c, q) && q.max_q_len >= min_max_q_len_of(c, q.causal);
}

/// Index of the first row matching `q` that runs on `cc`, or -1; `exists` reports whether any row
/// matches `q` regardless of the device. When that is a general row and `q` is a non-causal call
/// of full query sequences (or any non-causal call, for a row with `rows_rule_padded_too`), a row
/// of the same key with `full_rows_from` at or below max_q_len whose query tile pads max_q_len to
/// fewer rows takes the call instead (the first such row).
inline int find_config(ConfigQuery const& q, int cc, bool* exists) {
  int found = -1;
  *exists = false;
  for (size_t i = 0; i < kNumKernelConfigs; ++i) {
    if (!matches(kKernelConfigs[i], q)) continue;
    *exists = true;
    if (found < 0 && runs_on(kKernelConfigs[i], cc)) found = static_cast<int>(i);
  }
  if (found < 0 || q.causal || serves_some_calls_only(kKernelConfigs[found])) return found;
  int64_t const general_rows =
      padded_query_rows(q.max_q_len, kKernelConfigs[found].tile.tile_q);
  for (size_t i = 0; i < kNumKernelConfigs; ++i) {
    KernelConfig const& c = kKernelConfigs[i];
    if (c.full_rows_from > 0 && q.max_q_len >= c.full_rows_from &&
        (q.full_queries || c.rows_rule_padded_too) && same_key(c, q) && runs_on(c, cc) &&
        padded_query_rows(q.max_q_len, c.tile.tile_q) < general_rows)
      return static_cast<int>(i);
  }
  return found;
}

/// Picks the row for a request, resolving Path::kAuto to the fastest path the device runs.
/// `full_queries`: the call has no q_lens (every query sequence is max_q_len long).
inline Result select_config(Direction dir, int head_dim, DType dtype, int max_q_len, bool causal,
                            Path path, int cc, int* row, bool full_queries = false) {
  bool any_exists = false;
  Path const order[2] = {Path::kHopper, Path::kPortable};
  for (Path candidate : order) {
    if (path != Path::kAuto && path != candidate) continue;
    bool exists = false;
    int r = find_config(
        ConfigQuery{dir, head_dim, dtype, max_q_len, causal, candidate, full_queries}, cc, &exists);
    any_exists = any_exists || exists;
    if (r >= 0) {
      *row = r;
      return Result{};
    }
  }
  return Result{any_exists ? Status::kErrorArchMismatch : Status::kErrorNotSupported,
                cudaSuccess};
}

template <size_t Index, class Launch>
bool call_if_row(size_t row, Launch& launch, Result& out) {
  if constexpr (is_enabled(kKernelConfigs[Index])) {
    if (row == Index) {
      out = launch(std::integral_constant<size_t, Index>{});
      return true;
    }
  }
  return false;
}

template <class Launch, size_t... Index>
Result visit_row_impl(size_t row, Launch& launch, std::index_sequence<Index...>) {
  Result out{Status::kErrorNotSupported, cudaSuccess};
  (call_if_row<Index>(row, launch, out) || ...);
  return out;
}

/// Calls `launch(std::integral_constant<size_t, row>{})`: the runtime row index becomes a
/// compile-time one, so the launcher can read kKernelConfigs[row] in constant expressions.
template <class Launch>
Result visit_row(size_t row, Launch&& launch) {
  return visit_row_impl(row, launch, std::make_index_sequence<kNumKernelConfigs>{});
}

/// Compute capability (major * 10 + minor) of a device.
inline Result device_cc(int device, int* cc) {
  int major = 0;
  int minor = 0;
  cudaError_t e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  if (e == cudaSuccess)
    e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  if (e != cudaSuccess) return Result{Status::kErrorCuda, e};
  *cc = major * 10 + minor;
  return Result{};
}

}  // namespace sigattn::detail
