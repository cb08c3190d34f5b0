// TMA tile loads completing on mbarriers and TMA tile reductions (add) from shared to global
// memory (sm_90), on libcu++'s <cuda/ptx> wrappers, and the host side: 4-D tensor maps of a
// [B, S, H, D] tensor with 128-byte swizzled boxes of {128 bytes, rows} (64 16-bit elements or
// 32 fp32 ones), encoded by the driver's cuTensorMapEncodeTiled reached through
// cudaGetDriverEntryPoint (users need not link the driver library).
#pragma once

#include <cuda.h>
#include <cuda/ptx>
#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <utility>

#include "sigattn/detail/config.cuh"

namespace sigattn::tile {

// ---------------------------------------------------------------------------------------------
// Device side

SIGATTN_DEVICE void mbarrier_init(uint64_t* bar, uint32_t count) {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::mbarrier_init(bar, count);
#endif
}

/// Makes barrier initialisation visible to the async proxy (TMA) before the CTA-wide barrier.
SIGATTN_DEVICE void fence_barrier_init() {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::fence_mbarrier_init(cuda::ptx::sem_release, cuda::ptx::scope_cluster);
#endif
}

/// Arrives once and announces `bytes` of TMA traffic for the barrier's current phase.
SIGATTN_DEVICE void mbarrier_arrive_expect_tx(uint64_t* bar, uint32_t bytes) {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::mbarrier_arrive_expect_tx(cuda::ptx::sem_release, cuda::ptx::scope_cta,
                                       cuda::ptx::space_shared, bar, bytes);
#endif
}

SIGATTN_DEVICE void mbarrier_arrive(uint64_t* bar) {
#if SIGATTN_ARCH_SM90A
  (void)cuda::ptx::mbarrier_arrive(bar);
#endif
}

/// Blocks until the phase with the given parity has completed.
SIGATTN_DEVICE void mbarrier_wait(uint64_t* bar, uint32_t parity) {
#if SIGATTN_ARCH_SM90A
  while (!cuda::ptx::mbarrier_try_wait_parity(bar, parity)) {
  }
#endif
}

/// Whether the phase with the given parity has completed (mbarrier.test_wait: never blocks; on
/// true it orders like a completed wait).
SIGATTN_DEVICE bool mbarrier_test(uint64_t* bar, uint32_t parity) {
#if SIGATTN_ARCH_SM90A
  return cuda::ptx::mbarrier_test_wait_parity(bar, parity);
#else
  return false;
#endif
}

/// Generic-proxy shared-memory writes made so far become visible to later async-proxy reads
/// (wgmma operands, TMA stores).
SIGATTN_DEVICE void fence_proxy_async_shared() {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::fence_proxy_async(cuda::ptx::space_shared);
#endif
}

/// One 4-D TMA box load into shared memory, completing `bar`'s transaction count.
SIGATTN_DEVICE void tma_load_4d(void* smem, CUtensorMap const* map, int c0, int c1, int c2, int c3,
                                uint64_t* bar) {
#if SIGATTN_ARCH_SM90A
  int32_t const coords[4] = {c0, c1, c2, c3};
  cuda::ptx::cp_async_bulk_tensor(cuda::ptx::space_cluster, cuda::ptx::space_global, smem, map,
                                  coords, bar);
#endif
}

/// Adds one 4-D TMA box read from shared memory (laid out as the map's box, swizzle included;
/// 1024-byte aligned for the 128-byte swizzle) to the global tensor at box origin {c0, c1, c2, c3},
/// element by element (each addition atomic, relaxed, at gpu scope), as one asynchronous tensor
/// reduction in this thread's open bulk group. Box elements outside the tensor are skipped. The
/// source must not be written again before bulk_wait_group_read has covered the group, and
/// generic-proxy writes to it must be fenced (fence_proxy_async_shared) before it is issued.
SIGATTN_DEVICE void tma_reduce_add_4d(CUtensorMap const* map, void const* smem, int c0, int c1,
                                      int c2, int c3) {
#if SIGATTN_ARCH_SM90A
  int32_t const coords[4] = {c0, c1, c2, c3};
  cuda::ptx::cp_reduce_async_bulk_tensor(cuda::ptx::space_global, cuda::ptx::space_shared,
                                         cuda::ptx::op_add, map, coords, smem);
#endif
}

/// Stores one 4-D TMA box from shared memory (laid out as the map's box, swizzle included;
/// 1024-byte aligned for the 128-byte swizzle) to the global tensor at box origin {c0, c1, c2, c3},
/// as one asynchronous copy in this thread's open bulk group. Box elements outside the tensor are
/// not written. The same rules for the source as for tma_reduce_add_4d.
SIGATTN_DEVICE void tma_store_4d(CUtensorMap const* map, void const* smem, int c0, int c1, int c2,
                                 int c3) {
#if SIGATTN_ARCH_SM90A
  int32_t const coords[4] = {c0, c1, c2, c3};
  cuda::ptx::cp_async_bulk_tensor(cuda::ptx::space_global, cuda::ptx::space_shared, map, coords,
                                  smem);
#endif
}

/// Closes this thread's open bulk group (the bulk copies and reductions it issued since the last
/// commit). Bulk groups are per thread: only the issuing thread can wait for them.
SIGATTN_DEVICE void bulk_commit_group() {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::cp_async_bulk_commit_group();
#endif
}

/// Waits until at most `Pending` of this thread's committed bulk groups are still reading their
/// shared-memory sources (their global writes may still be in flight).
template <int Pending>
SIGATTN_DEVICE void bulk_wait_group_read() {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::cp_async_bulk_wait_group_read(cuda::ptx::n32_t<Pending>{});
#endif
}

/// Waits until at most `Pending` of this thread's committed bulk groups are incomplete (their
/// global writes performed).
template <int Pending>
SIGATTN_DEVICE void bulk_wait_group() {
#if SIGATTN_ARCH_SM90A
  cuda::ptx::cp_async_bulk_wait_group(cuda::ptx::n32_t<Pending>{});
#endif
}

// ---------------------------------------------------------------------------------------------
// Host side

/// The driver's cuTensorMapEncodeTiled, looked up until found, then remembered for the process.
inline CUresult encode_tensor_map_tiled(CUtensorMap* map, CUtensorMapDataType type, cuuint32_t rank,
                                        void* address, cuuint64_t const* dims,
                                        cuuint64_t const* strides, cuuint32_t const* box,
                                        cuuint32_t const* element_strides) {
  using Encode = CUresult (*)(CUtensorMap*, CUtensorMapDataType, cuuint32_t, void*,
                              cuuint64_t const*, cuuint64_t const*, cuuint32_t const*,
                              cuuint32_t const*, CUtensorMapInterleave, CUtensorMapSwizzle,
                              CUtensorMapL2promotion, CUtensorMapFloatOOBfill);
  // Looked up once and remembered; a failed lookup is not remembered (it is tried again on the
  // next call, so that a transient failure does not turn the Hopper path off for the process).
  static std::atomic<Encode> cached{nullptr};
  Encode encode = cached.load(std::memory_order_acquire);
  if (encode == nullptr) {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult status{};
#if CUDART_VERSION >= 12050
    // The entry point as it was introduced (CUDA 12.0), whatever the driver's version.
    cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000,
                                                     cudaEnableDefault, &status);
#else
    cudaError_t e = cudaGetDriverEntryPoint("cuTensorMapEncodeTiled", &fn, cudaEnableDefault,
                                            &status);
#endif
    if (e != cudaSuccess || status != cudaDriverEntryPointSuccess) return CUDA_ERROR_NOT_FOUND;
    encode = reinterpret_cast<Encode>(fn);
    cached.store(encode, std::memory_order_release);
  }
  return encode(map, type, rank, address, dims, strides, box, element_strides,
                CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
}

/// Tensor map of a [batch, seq, heads, dim] tensor of `type` (`element_bytes` each) whose rows are
/// read or reduced into in boxes of {128 bytes of elements, box_rows tokens, 1 head, 1 batch
/// entry}, 128-byte swizzled. Strides are in elements. TMA zero-fills loads and skips reductions
/// only outside the tensor: padding inside the sequence is the kernel's business.
inline CUresult make_bshd_tensor_map(CUtensorMap* map, CUtensorMapDataType type, int element_bytes,
                                     void const* base, int64_t batch, int64_t seq, int64_t heads,
                                     int64_t dim, int64_t batch_stride, int64_t token_stride,
                                     int64_t head_stride, int box_rows) {
  // A stride of a size-1 dimension is never used; TMA still wants a non-zero multiple of 16 bytes.
  // A zero stride of a longer dimension (a broadcast view) has no TMA encoding: refuse it.
  for (auto [stride, extent] : {std::pair{token_stride, seq}, std::pair{head_stride, heads},
                                std::pair{batch_stride, batch}})
    if (stride == 0 && extent > 1) return CUDA_ERROR_INVALID_VALUE;
  auto usable = [element_bytes](int64_t stride_elems, int64_t extent) -> cuuint64_t {
    return static_cast<cuuint64_t>(extent <= 1 ? 16 : stride_elems * element_bytes);
  };
  cuuint64_t const dims[4] = {static_cast<cuuint64_t>(dim), static_cast<cuuint64_t>(seq),
                              static_cast<cuuint64_t>(heads), static_cast<cuuint64_t>(batch)};
  cuuint64_t const strides[3] = {usable(token_stride, seq), usable(head_stride, heads),
                                 usable(batch_stride, batch)};
  cuuint32_t const box[4] = {static_cast<cuuint32_t>(128 / element_bytes),
                             static_cast<cuuint32_t>(box_rows), 1, 1};
  cuuint32_t const element_strides[4] = {1, 1, 1, 1};
  return encode_tensor_map_tiled(map, type, 4, const_cast<void*>(base), dims, strides, box,
                                 element_strides);
}

/// make_bshd_tensor_map for 16-bit elements (bf16 or fp16): boxes of {64, box_rows, 1, 1}.
inline CUresult make_bshd_tensor_map(CUtensorMap* map, bool bf16, void const* base, int64_t batch,
                                     int64_t seq, int64_t heads, int64_t dim, int64_t batch_stride,
                                     int64_t token_stride, int64_t head_stride, int box_rows) {
  return make_bshd_tensor_map(
      map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2, base,
      batch, seq, heads, dim, batch_stride, token_stride, head_stride, box_rows);
}

/// make_bshd_tensor_map for fp32 elements: boxes of {32, box_rows, 1, 1}.
inline CUresult make_bshd_f32_tensor_map(CUtensorMap* map, float const* base, int64_t batch,
                                         int64_t seq, int64_t heads, int64_t dim,
                                         int64_t batch_stride, int64_t token_stride,
                                         int64_t head_stride, int box_rows) {
  return make_bshd_tensor_map(map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, base, batch, seq, heads,
                              dim, batch_stride, token_stride, head_stride, box_rows);
}

}  // namespace sigattn::tile
