// Hopper forward shapes launched directly, against the fp64 CPU reference on the length cases of
// test_forward: those that no registry row names, as bench/tune times them (O stored straight
// from the accumulator fragment, FwdTraits<..., PreferStagedO = false>; 160- and 176-key tiles,
// the N = 160 / 176 wgmma wrappers; tiles with one Q buffer, no room for two beside the stages: O
// staged in that buffer or stored from registers), the D = 128 row that the dispatcher takes only
// from a max_q_len of 12288 on (16384 under a causal mask; 192 x 64 x 3) and the general D = 64
// row's 256 x 64 x 4 (four consumer warpgroups, which test_forward also reaches through the
// dispatcher), here at short lengths, causal too, and with both sigmoids; then the D = 64 rows on
// either side of 3072 through the dispatcher, and the long row taking a call of full sequences
// below it.
// Runs on compute capability 9.0 only (elsewhere it warns and checks nothing).
#include <catch2/catch.hpp>
#include <sigattn/sigattn.cuh>
#include <vector>

#include "../support/gpu_problem.cuh"
#include "../support/gpu_test.cuh"

namespace sigattn::test {
uint64_t const kSeedBase = 0x5368617065ull;  // this file's seed sequence (gpu_test.cuh)
}  // namespace sigattn::test

using namespace sigattn;
using namespace sigattn::test;

namespace {

/// Whether the registry has a bf16 Hopper forward row of this head dim, tile and threshold.
constexpr bool has_forward_row(int head_dim, int tile_q, int tile_kv, int stages, int min_len) {
  for (KernelConfig const& c : kKernelConfigs)
    if (c.direction == Direction::kForward && c.path == Path::kHopper && c.dtype == DType::kBF16 &&
        c.head_dim == head_dim && c.tile.tile_q == tile_q && c.tile.tile_kv == tile_kv &&
        c.tile.stages == stages && c.min_max_q_len == min_len)
      return true;
  return false;
}

using Launch = Result (*)(FwdParams const&, void*, int, cudaStream_t, bool);

/// The split tail's workspace for the shape `Traits`: the flags and a TileQ x D fp32 slot for each
/// of up to kMaxSplitCtas CTAs (launch_sm90_fwd_traits). Sized per shape rather than by
/// workspace_bytes(), which follows the registry's enabled rows, not the shapes launched here.
template <class Traits>
constexpr size_t split_workspace_bytes() {
  return detail::kFwdSplitFlagBytes +
         size_t{kernel::sm90::kMaxSplitCtas} * Traits::kTileQ * Traits::kHeadDim * sizeof(float);
}

/// forward() through the dispatcher, as a Launch.
Result dispatched(FwdParams const& p, void* workspace, int, cudaStream_t stream, bool) {
  return forward(p, workspace, stream);
}

/// O of `prob` (poisoned first) after one call of `launch` with a workspace of `workspace_size`
/// bytes.
std::vector<float> run_shape(Launch launch, size_t workspace_size, DeviceProblem& prob) {
  int device = 0;
  SIGATTN_TEST_CUDA(cudaGetDevice(&device));
  Stream stream;
  DeviceBuffer workspace(workspace_size);
  prob.o().poison(prob.spec().dtype);
  Result r = launch(prob.params(), workspace.get(), device, stream.s, false);
  INFO("launch: " << to_string(r));
  REQUIRE(r);
  SIGATTN_TEST_CUDA(cudaStreamSynchronize(stream.s));
  return prob.o().download(prob.spec().dtype);
}

/// One shape against the fp64 reference (gpu_test.cuh), launched through `launch` with a workspace
/// of `workspace` bytes, so that a non-causal case long enough for the split tail to pay (the last
/// one below) takes it.
void check_shape(Launch launch, size_t workspace_size, ProblemSpec const& spec) {
  check_forward_against_fp64(spec, rel_l2_tolerance(spec.dtype), [&](DeviceProblem& prob) {
    return run_shape(launch, workspace_size, prob);
  });
}

/// A bf16 call that only the dispatcher's thresholds tell apart: padded to `max_len`, with real
/// lengths far below it (so that the fp64 references stay cheap), three entries, two query heads
/// over one kv head.
ProblemSpec padded_call(int head_dim, int max_len, Causal causal) {
  ProblemSpec s;
  s.dtype = DType::kBF16;
  s.head_dim = head_dim;
  s.path = Path::kAuto;
  s.batch = 3;
  s.num_heads = 2;
  s.num_kv_heads = 1;
  s.max_q_len = s.max_kv_len = max_len;
  s.q_lens = {700, 1, 390};
  s.kv_lens = {1100, 257, 390};
  s.causal = causal;
  s.seed = next_seed();
  return s;
}

/// forward() through the dispatcher gives the same bits as the shape `direct` launched with the
/// same workspace, whose size workspace_bytes() must give as `expected_bytes`. Where `other` (the
/// row the dispatcher must not take) is given, that shape launched the same way must give
/// different bits: the negative control that shows this call's bit check can tell the two rows
/// apart. Pass it only for calls built so that exactly one of the two shapes splits its keys.
void check_dispatched_bits(ProblemSpec const& s, Launch direct, size_t expected_bytes,
                           Launch other = nullptr) {
  INFO(s.describe());
  DeviceProblem prob(s);
  size_t const bytes = workspace_bytes(prob.params());
  CHECK(bytes == expected_bytes);
  std::vector<float> const expected = run_shape(direct, bytes, prob);
  CHECK(same_bits(run_shape(&dispatched, bytes, prob), expected));
  if (other != nullptr) {
    INFO("negative control: the other row's bits");
    CHECK_FALSE(same_bits(run_shape(other, bytes, prob), expected));
  }
}

}  // namespace

TEST_CASE("forward: Hopper shapes outside the registry", "[forward][small][shapes]") {
#if SIGATTN_ENABLE_SM90A
  if (current_device_cc() != 90) {
    WARN("not a compute capability 9.0 device: the Hopper shapes are not checked");
    return;
  }
  using kernel::sm90::FwdTraits;
  struct Shape {
    char const* name;
    Launch launch;
    bool staged_o;
    bool fast_sigmoid_too;
    size_t workspace;
    int head_dim;
  };
  using DirectO = FwdTraits<128, __nv_bfloat16, 128, 128, 2, false>;
  using Keys160 = FwdTraits<128, __nv_bfloat16, 128, 160, 2>;
  using Keys176 = FwdTraits<128, __nv_bfloat16, 128, 176, 2>;
  using Keys176DirectO = FwdTraits<128, __nv_bfloat16, 128, 176, 2, false>;
  using LongRow = FwdTraits<128, __nv_bfloat16, 192, 64, 3>;
  using FourConsumers = FwdTraits<64, __nv_bfloat16, 256, 64, 4>;
  static_assert(has_forward_row(128, LongRow::kTileQ, LongRow::kTileKV, 3, 12288),
                "the registry's D = 128 row for long calls");
  Shape const shapes[] = {
      {"128 x 128, O from registers", &detail::launch_sm90_fwd_traits<DirectO>, DirectO::kStagedO,
       false, split_workspace_bytes<DirectO>(), 128},
      {"128 x 160", &detail::launch_sm90_fwd_traits<Keys160>, Keys160::kStagedO, false,
       split_workspace_bytes<Keys160>(), 128},
      {"128 x 176", &detail::launch_sm90_fwd_traits<Keys176>, Keys176::kStagedO, false,
       split_workspace_bytes<Keys176>(), 128},
      {"128 x 176, O from registers", &detail::launch_sm90_fwd_traits<Keys176DirectO>,
       Keys176DirectO::kStagedO, false, split_workspace_bytes<Keys176DirectO>(), 128},
      {"192 x 64 x 3 (the row for max_q_len >= 12288)", &detail::launch_sm90_fwd_traits<LongRow>,
       LongRow::kStagedO, true, split_workspace_bytes<LongRow>(), 128},
      {"256 x 64 x 4 at D = 64 (the general D = 64 row, four consumer warpgroups)",
       &detail::launch_sm90_fwd_traits<FourConsumers>, FourConsumers::kStagedO, true,
       split_workspace_bytes<FourConsumers>(), 64},
  };
  static_assert(DirectO::kQBuffers == 2 && !DirectO::kStagedO,
                "two Q buffers, O from registers");
  static_assert(Keys160::kQBuffers == 1 && Keys176::kQBuffers == 1 && Keys176::kStagedO &&
                    !Keys176DirectO::kStagedO,
                "one Q buffer, O staged in it or from registers");
  for (Shape const& shape : shapes) {
    INFO("shape " << shape.name << (shape.staged_o ? ", O staged" : ", O from registers"));
    ProblemSpec s;
    s.dtype = DType::kBF16;
    s.head_dim = shape.head_dim;
    s.path = Path::kHopper;
    s.batch = 3;
    s.num_heads = s.num_kv_heads = 2;
    s.max_q_len = s.max_kv_len = 300;
    s.q_lens = s.kv_lens = {300, 173, 1};  // ragged, one of length 1
    check_shape(shape.launch, shape.workspace, s);

    s.batch = 4;  // around the tiles: 128 / 160 / 176 keys, 64 / 128 query rows
    s.max_q_len = s.max_kv_len = 400;
    s.q_lens = {64, 129, 177, 400};
    s.kv_lens = {159, 161, 175, 352};
    check_shape(shape.launch, shape.workspace, s);

    s.batch = 2;
    s.max_q_len = 130;  // Sq != Skv, no queries in one entry, no keys in the other
    s.max_kv_len = 257;
    s.q_lens = {0, 130};
    s.kv_lens = {77, 0};
    check_shape(shape.launch, shape.workspace, s);

    s.q_lens = {100, 130};  // causal, bottom-right
    s.kv_lens = {257, 31};
    s.causal = Causal::kBottomRight;
    check_shape(shape.launch, shape.workspace, s);
    s.causal = Causal::kTopLeft;
    check_shape(shape.launch, shape.workspace, s);
    s.causal = Causal::kNone;
    if (shape.fast_sigmoid_too) {
      s.sigmoid = SigmoidMode::kFast;
      check_shape(shape.launch, shape.workspace, s);
      // Bottom-right: in entry 0 (100 queries, 257 keys) the first consumer's rows see keys up to
      // 220 only, so the 64-key tile that crosses kv_len is the second consumer's alone, while
      // the first one zeroes its V rows (with turns: the fast sigmoid's three-consumer kernels).
      s.causal = Causal::kBottomRight;
      check_shape(shape.launch, shape.workspace, s);
      s.causal = Causal::kNone;
      s.sigmoid = SigmoidMode::kAccurate;
    }

    s.num_heads = 4;  // GQA: two query heads per kv head
    s.num_kv_heads = 2;
    check_shape(shape.launch, shape.workspace, s);

    // One sequence of 2048 (with 128-row tiles 16 tiles of 13-16 key tiles; with 192 x 64 11 of
    // 32), each cut over several CTAs by the split tail (writer pieces with O from registers or
    // with one Q buffer: only these shapes have them).
    s.batch = s.num_heads = s.num_kv_heads = 1;
    s.max_q_len = s.max_kv_len = 2048;
    s.q_lens.clear();
    s.kv_lens.clear();
    check_shape(shape.launch, shape.workspace, s);
  }
#else
  WARN("built without sm_90a code: the Hopper shapes are not checked");
#endif
}

// The dispatcher sends a D = 128 call with max_q_len >= 12288 (16384 under a causal mask) to the
// 192 x 64 x 3 row: forward() gives the same bits as that shape launched directly (with the same
// workspace, so the same split), and a shorter causal one the same bits as the general row's
// 128 x 128 x 2. Long padded sequences with short real lengths, so that the references stay cheap.
// Below 12288 a non-causal call goes to 192 x 64 x 3 too from 129 on where its tiles pad max_q_len
// to fewer rows, with q_lens or without: one sequence of 1344 queries (7 tiles of 192 rows or 11
// of 128) with and without q_lens, one of 1000 real queries padded to 1344, and one of 150, against
// the shape's bits and against fp64, and one of 128 on the general row. With the workspace the
// split tail spreads a tail over every SM, and only the 64-key tiles can take it here (700 keys:
// 11 key tiles, more than kSplitCostUnits; 6 of 128, not more), so on an H200 one shape adds each
// row's key ranges in pieces and the other does not, and the bit checks can tell the rows apart
// where the pieces' order of fp32 sums changes a rounded output. The 1344-query calls assert that
// they do (the general row's bits must differ: a negative control); the short calls' few outputs
// may not differ, so there tests/cpu/test_dispatch.cu's check of the choice is the one that counts.
TEST_CASE("forward: the dispatcher's row for long calls", "[forward][small][shapes]") {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (current_device_cc() != 90) {
    WARN("not a compute capability 9.0 device: the Hopper rows are not checked");
    return;
  }
  using kernel::sm90::FwdTraits;
  using LongRow = FwdTraits<128, __nv_bfloat16, 192, 64, 3>;
  using General = FwdTraits<128, __nv_bfloat16, 128, 128, 2>;
  static_assert(has_forward_row(128, 128, 128, 2, 0), "the registry's general D = 128 row");
  Launch const long_row = &detail::launch_sm90_fwd_traits<LongRow>;
  Launch const general = &detail::launch_sm90_fwd_traits<General>;
  size_t const split_bytes = split_workspace_bytes<LongRow>();
  check_dispatched_bits(padded_call(128, 12288, Causal::kNone), long_row, split_bytes);
  check_dispatched_bits(padded_call(128, 16384, Causal::kTopLeft), long_row, 0);
  check_dispatched_bits(padded_call(128, 12288, Causal::kTopLeft), general, 0);
  ProblemSpec full = padded_call(128, 1344, Causal::kNone);
  full.batch = full.num_heads = full.num_kv_heads = 1;
  full.kv_lens = {700};
  full.q_lens = {1344};  // at D = 128 the rule by padded rows takes padded batches too
  check_dispatched_bits(full, long_row, split_bytes, general);
  full.q_lens = {1000};
  check_dispatched_bits(full, long_row, split_bytes, general);
  check_shape(&dispatched, split_bytes, full);
  full.q_lens.clear();  // every query sequence full
  check_dispatched_bits(full, long_row, split_bytes, general);
  check_shape(&dispatched, split_bytes, full);
  // A short call: 150 queries (one tile of 192 rows, whose box reaches past the tensor, or two of
  // 128), and 128, where 128-row tiles pad no more rows.
  full.max_q_len = 150;
  check_dispatched_bits(full, long_row, split_bytes);
  check_shape(&dispatched, split_bytes, full);
  full.max_q_len = 128;
  check_dispatched_bits(full, general, split_bytes);
  // And the result itself, against the fp64 reference, through the dispatcher.
  ProblemSpec s;
  s.dtype = DType::kBF16;
  s.head_dim = 128;
  s.batch = 2;
  s.num_heads = s.num_kv_heads = 1;
  s.max_q_len = s.max_kv_len = 12288;
  s.q_lens = s.kv_lens = {640, 77};
  check_shape(&dispatched, split_bytes, s);
#else
  WARN("built without the bf16 D = 128 Hopper rows: not checked");
#endif
}

// The D = 64 rows: from a max_q_len of 3072 on (with or without a causal mask) the dispatcher
// takes 192 x 128 x 3, below it the general row's 256 x 64 x 4 (four consumer warpgroups), except
// for a non-causal call of full query sequences (no q_lens) from 321 on where 192-row tiles pad
// max_q_len to fewer rows: forward() gives the same bits as the shape launched directly, with the
// same workspace. (Which row it picks is checked on the host, tests/cpu/test_dispatch.cu: without
// a split the two shapes give the same bits, since their P V steps visit the keys in the same
// order and each score takes the same form of the sigmoid.) The call of full sequences (one of
// 1920 queries: 10 tiles of 192 rows or 8 of 256; 700 keys, which only the 64-key tiles can split,
// so that on an H200 one shape adds each row's key ranges in pieces and the other does not, and
// the other row's bits must differ: a negative control) also against fp64, and with q_lens on the
// general row (with the same control); one of 340 queries against the long row's bits
// and fp64, and one of 320 against the general row's bits (with fewer outputs, the split's order
// may change none of them, so these bits need not tell the rows apart). Then the fast sigmoid's
// 192 x 128 x 3 kernel, the only D = 64 kernel that takes turns, against fp64 through the
// dispatcher.
TEST_CASE("forward: the D = 64 rows by max_q_len", "[forward][small][shapes]") {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_64 && SIGATTN_ENABLE_BF16
  if (current_device_cc() != 90) {
    WARN("not a compute capability 9.0 device: the Hopper rows are not checked");
    return;
  }
  using kernel::sm90::FwdTraits;
  using LongRow = FwdTraits<64, __nv_bfloat16, 192, 128, 3>;
  using General = FwdTraits<64, __nv_bfloat16, 256, 64, 4>;
  static_assert(has_forward_row(64, 192, 128, 3, 3072),
                "the registry's D = 64 row for long calls");
  static_assert(has_forward_row(64, 256, 64, 4, 0), "the registry's general D = 64 row");
  Launch const long_row = &detail::launch_sm90_fwd_traits<LongRow>;
  Launch const general = &detail::launch_sm90_fwd_traits<General>;
  // (One workspace serves every call of the head dim: room for the larger tile, 256 x 64.)
  size_t const split_bytes = split_workspace_bytes<General>();
  check_dispatched_bits(padded_call(64, 3072, Causal::kNone), long_row, split_bytes);
  check_dispatched_bits(padded_call(64, 4096, Causal::kTopLeft), long_row, 0);
  check_dispatched_bits(padded_call(64, 3071, Causal::kNone), general, split_bytes);
  check_dispatched_bits(padded_call(64, 2048, Causal::kBottomRight), general, 0);
  ProblemSpec full = padded_call(64, 1920, Causal::kNone);
  full.batch = full.num_heads = full.num_kv_heads = 1;
  full.kv_lens = {700};
  full.q_lens = {1920};
  check_dispatched_bits(full, general, split_bytes, long_row);
  full.q_lens.clear();  // every query sequence full: the rule by padded rows applies
  check_dispatched_bits(full, long_row, split_bytes, general);
  check_shape(&dispatched, split_bytes, full);
  // Short calls: 340 queries (two tiles of 192 rows or of 256), and 320, below the rule's start.
  full.max_q_len = 340;
  check_dispatched_bits(full, long_row, split_bytes);
  check_shape(&dispatched, split_bytes, full);
  full.max_q_len = 320;
  check_dispatched_bits(full, general, split_bytes);

  for (Causal causal : {Causal::kNone, Causal::kTopLeft}) {
    ProblemSpec s = padded_call(64, 3072, causal);
    s.sigmoid = SigmoidMode::kFast;
    check_shape(&dispatched, causal == Causal::kNone ? split_bytes : 0, s);
  }
#else
  WARN("built without the bf16 D = 64 Hopper rows: not checked");
#endif
}

namespace {

/// launch_sm90_fwd_traits_ordered<Traits> with the order `Order`, as a Launch.
template <class Traits, detail::CausalOrder Order>
Result ordered(FwdParams const& p, void* workspace, int device, cudaStream_t stream, bool dry) {
  return detail::launch_sm90_fwd_traits_ordered<Traits>(p, workspace, device, stream, dry, Order);
}

}  // namespace

// The causal tile order forced (bench/tune's --causal-order): the same bits as the library's own
// choice, since each tile is computed whole by one CTA, and by levels, or by levels in blocks of
// 3 levels, also where the library never takes them (its rule goes head by head below a fifth of
// the grid in query tiles, as here on any device of more than 45 SMs, so the forced head-by-head
// call repeats the rule's order), against fp64. The longest sequence has 9 query tiles: three
// blocks of 3, or blocks of 4, 4 and 1.
TEST_CASE("forward: the causal order forced by levels, in blocks of levels or head by head",
          "[forward][small][shapes]") {
#if SIGATTN_ENABLE_SM90A && SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
  if (current_device_cc() != 90) {
    WARN("not a compute capability 9.0 device: the Hopper shapes are not checked");
    return;
  }
  using General = kernel::sm90::FwdTraits<128, __nv_bfloat16, 128, 128, 2>;
  using detail::CausalOrder;
  for (Causal causal : {Causal::kTopLeft, Causal::kBottomRight}) {
    ProblemSpec s;
    s.dtype = DType::kBF16;
    s.head_dim = 128;
    s.path = Path::kHopper;
    s.batch = 3;
    s.num_heads = 4;  // GQA: two query heads per kv head
    s.num_kv_heads = 2;
    s.max_q_len = 1100;
    s.max_kv_len = 1300;
    s.q_lens = {1100, 1, 390};
    s.kv_lens = {1300, 257, 390};
    s.causal = causal;
    INFO(s.describe());
    check_shape(&ordered<General, CausalOrder::kLevels>, 0, s);
    s.seed = next_seed();
    check_shape(&ordered<General, detail::causal_levels_in_blocks(3)>, 0, s);
    s.seed = next_seed();
    DeviceProblem prob(s);
    std::vector<float> const automatic = run_shape(&ordered<General, CausalOrder::kAuto>, 0, prob);
    CHECK(same_bits(run_shape(&ordered<General, CausalOrder::kLevels>, 0, prob), automatic));
    CHECK(same_bits(run_shape(&ordered<General, CausalOrder::kHeads>, 0, prob), automatic));
    CHECK(same_bits(run_shape(&ordered<General, detail::causal_levels_in_blocks(3)>, 0, prob),
                    automatic));
    CHECK(same_bits(run_shape(&ordered<General, detail::causal_levels_in_blocks(4)>, 0, prob),
                    automatic));
  }
#else
  WARN("built without the bf16 D = 128 Hopper rows: not checked");
#endif
}
