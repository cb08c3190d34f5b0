// The dispatcher's choice of registry row (include/sigattn/host/dispatch.cuh), on the host: which
// status an unmatched request gets (SPEC section 3: kErrorNotSupported when no row exists,
// kErrorArchMismatch when rows exist but none runs on the device), and which path kAuto takes
// for a compute capability. select_config needs no device, so this runs without a GPU. Whether
// the Hopper rows exist depends on the build (SIGATTN_ENABLE_SM90A: sm_90a code in the
// architectures); both builds are covered.
#include <catch2/catch.hpp>

#include "sigattn/host/dispatch.cuh"

namespace {

using sigattn::DType;
using sigattn::Path;
using sigattn::Status;
using sigattn::Direction;
using sigattn::kKernelConfigs;
using sigattn::detail::select_config;

constexpr bool kHopperBuilt = SIGATTN_ENABLE_SM90A != 0;

/// Whether the build keeps the rows of this head dim and dtype (the CMake options
/// SIGATTN_HEAD_DIMS and SIGATTN_DTYPES prune the others, which are then not supported).
constexpr bool built(int head_dim, DType t) {
  bool const hdim = (head_dim == 64 && SIGATTN_ENABLE_HDIM_64) ||
                    (head_dim == 128 && SIGATTN_ENABLE_HDIM_128);
  bool const dtype = (t == DType::kBF16 && SIGATTN_ENABLE_BF16) ||
                     (t == DType::kFP16 && SIGATTN_ENABLE_FP16);
  return hdim && dtype;
}

/// The status of select_config and, on success, the path of the row it chose.
struct Choice {
  Status status;
  Path path;
};

/// The row select_config picks, or -1 (and the status) when it picks none. `full`: a call of full
/// query sequences (no q_lens).
int choose_row(Direction dir, int head_dim, DType dtype, int max_q_len, bool causal, Path path,
               int cc, Status* status, bool full = false) {
  int row = -1;
  sigattn::Result const r =
      select_config(dir, head_dim, dtype, max_q_len, causal, path, cc, &row, full);
  *status = r.status;
  if (r.status != Status::kSuccess) return -1;
  REQUIRE(row >= 0);
  REQUIRE(static_cast<size_t>(row) < sigattn::kNumKernelConfigs);
  auto const& c = kKernelConfigs[row];
  CHECK(c.direction == dir);
  CHECK(c.head_dim == head_dim);
  CHECK(c.dtype == dtype);
  CHECK((sigattn::min_max_q_len_of(c, causal) <= max_q_len ||
         ((full || c.rows_rule_padded_too) && !causal && c.full_rows_from > 0 &&
          c.full_rows_from <= max_q_len)));
  return row;
}

Choice choose(Direction dir, int head_dim, DType dtype, Path path, int cc, int max_q_len = 1024) {
  Status status = Status::kSuccess;
  int const row = choose_row(dir, head_dim, dtype, max_q_len, false, path, cc, &status);
  return {status, row < 0 ? Path::kAuto : kKernelConfigs[row].path};
}

}  // namespace

TEST_CASE("dispatch: a device older than every matching row is an architecture mismatch",
          "[dispatch]") {
  for (Direction dir : {Direction::kForward, Direction::kBackward}) {
    for (int d : {64, 128}) {
      INFO("direction " << static_cast<int>(dir) << ", D = " << d);
      auto expected = [&](DType t) {
        return built(d, t) ? Status::kErrorArchMismatch : Status::kErrorNotSupported;
      };
      CHECK(choose(dir, d, DType::kBF16, Path::kAuto, 75).status == expected(DType::kBF16));
      CHECK(choose(dir, d, DType::kFP16, Path::kPortable, 70).status == expected(DType::kFP16));
    }
  }
}

TEST_CASE("dispatch: a request no row serves is not supported", "[dispatch]") {
  CHECK(choose(Direction::kForward, 96, DType::kBF16, Path::kAuto, 90).status ==
        Status::kErrorNotSupported);
  CHECK(choose(Direction::kBackward, 256, DType::kFP16, Path::kPortable, 80).status ==
        Status::kErrorNotSupported);
  CHECK(choose(Direction::kForward, 64, static_cast<DType>(7), Path::kAuto, 90).status ==
        Status::kErrorNotSupported);
}

TEST_CASE("dispatch: kAuto takes the Hopper rows on 9.0 only, the portable ones elsewhere",
          "[dispatch]") {
  for (Direction dir : {Direction::kForward, Direction::kBackward}) {
    for (int d : {64, 128}) {
      for (DType t : {DType::kBF16, DType::kFP16}) {
        INFO("direction " << static_cast<int>(dir) << ", D = " << d);
        if (!built(d, t)) {  // pruned from this build: no row, on any device or path
          for (Path path : {Path::kAuto, Path::kPortable, Path::kHopper})
            for (int cc : {80, 90})
              CHECK(choose(dir, d, t, path, cc).status == Status::kErrorNotSupported);
          continue;
        }
        for (int cc : {80, 86, 89, 100}) {
          Choice const c = choose(dir, d, t, Path::kAuto, cc);
          CHECK(c.status == Status::kSuccess);
          CHECK(c.path == Path::kPortable);
        }
        Choice const on_hopper = choose(dir, d, t, Path::kAuto, 90);
        CHECK(on_hopper.status == Status::kSuccess);
        CHECK(on_hopper.path == (kHopperBuilt ? Path::kHopper : Path::kPortable));
        // Forced paths.
        CHECK(choose(dir, d, t, Path::kPortable, 90).path == Path::kPortable);
        Choice const forced = choose(dir, d, t, Path::kHopper, 80);
        CHECK(forced.status ==
              (kHopperBuilt ? Status::kErrorArchMismatch : Status::kErrorNotSupported));
      }
    }
  }
}

TEST_CASE("dispatch: a row for long calls takes them from its thresholds on, and only them",
          "[dispatch]") {
  bool any_long_row = false;
  for (size_t i = 0; i < sigattn::kNumKernelConfigs; ++i) {
    auto const& c = kKernelConfigs[i];
    if (!sigattn::serves_some_calls_only(c) || !sigattn::is_enabled(c)) continue;
    any_long_row = true;
    int const cc = c.min_cc;
    Status status = Status::kSuccess;
    for (bool causal : {false, true}) {
      int const from = sigattn::min_max_q_len_of(c, causal);
      INFO("row " << i << ": D = " << c.head_dim << (causal ? ", causal" : ", non-causal")
                  << ", from max_q_len " << from);
      // From its threshold on (and far beyond it) the dispatcher picks this row...
      for (int len : {from, from + 1, 4 * from}) {
        if (len <= 0) continue;
        for (Path path : {c.path, Path::kAuto})
          CHECK(choose_row(c.direction, c.head_dim, c.dtype, len, causal, path, cc, &status) ==
                static_cast<int>(i));
      }
      // ...and below it a general row of the same key (tile_q differs, so the two are told apart).
      for (int len : {1, from - 1}) {
        if (len < 1 || len >= from) continue;
        int const row =
            choose_row(c.direction, c.head_dim, c.dtype, len, causal, c.path, cc, &status);
        REQUIRE(status == Status::kSuccess);
        CHECK(row != static_cast<int>(i));
        CHECK_FALSE(sigattn::serves_some_calls_only(kKernelConfigs[row]));
        CHECK(kKernelConfigs[row].path == c.path);
      }
    }
  }
  // The Hopper build has two: the D=128 forward's 192 x 64 rows, from 12288 without a causal mask
  // and from 16384 with one, and the D=64 forward's 192 x 128 rows from 3072 with or without one
  // (below it the general row's 256 x 64).
  if (kHopperBuilt) {
    CHECK(any_long_row);
    Status status = Status::kSuccess;
    auto tile_q = [&](Direction dir, int len, bool causal, int head_dim = 128) {
      int const r =
          choose_row(dir, head_dim, DType::kBF16, len, causal, Path::kAuto, 90, &status);
      REQUIRE(r >= 0);
      return kKernelConfigs[r].tile.tile_q;
    };
#if SIGATTN_ENABLE_HDIM_64 && SIGATTN_ENABLE_BF16
    for (bool causal : {false, true}) {
      CHECK(tile_q(Direction::kForward, 16384, causal, 64) == 192);
      CHECK(tile_q(Direction::kForward, 3072, causal, 64) == 192);
      CHECK(tile_q(Direction::kForward, 3071, causal, 64) == 256);
      CHECK(tile_q(Direction::kForward, 1024, causal, 64) == 256);
    }
#endif
#if SIGATTN_ENABLE_HDIM_128 && SIGATTN_ENABLE_BF16
    CHECK(tile_q(Direction::kForward, 16384, false) == 192);
    CHECK(tile_q(Direction::kForward, 12288, false) == 192);
    CHECK(tile_q(Direction::kForward, 12287, false) == 128);
    CHECK(tile_q(Direction::kForward, 8192, false) == 128);
    CHECK(tile_q(Direction::kForward, 16384, true) == 192);
    CHECK(tile_q(Direction::kForward, 16383, true) == 128);
    CHECK(tile_q(Direction::kForward, 12288, true) == 128);
    // The backward has no such row: the same row at every length.
    CHECK(tile_q(Direction::kBackward, 1024, false) == tile_q(Direction::kBackward, 16384, false));
#endif
  }
}

// A non-causal call of full query sequences (no q_lens) goes to a row with full_rows_from below
// that row's threshold, from full_rows_from on, where the row's query tile pads max_q_len to fewer
// rows than the general row's; a call with q_lens (a padded batch) too when the row has
// rows_rule_padded_too. A tie or a causal mask leave the thresholds alone to decide.
TEST_CASE("dispatch: full sequences take the row whose tile pads fewer rows", "[dispatch]") {
  using sigattn::detail::padded_query_rows;
  bool any = false;
  for (size_t i = 0; i < sigattn::kNumKernelConfigs; ++i) {
    auto const& c = kKernelConfigs[i];
    if (c.full_rows_from <= 0 || !sigattn::is_enabled(c)) continue;
    any = true;
    int const cc = c.min_cc;
    int const from = sigattn::min_max_q_len_of(c, false);
    REQUIRE(c.full_rows_from < from);
    // Which rows take padded batches too (docs/tuning.md): the D = 128 ones, not the D = 64 ones.
    CHECK(c.rows_rule_padded_too == (c.head_dim == 128));
    // (Every max_q_len up to past the threshold: the mismatches are counted, not each checked.)
    auto row_of = [&](int len, bool causal, bool full) {
      int row = -1;
      sigattn::Result const r =
          select_config(c.direction, c.head_dim, c.dtype, len, causal, c.path, cc, &row, full);
      return r.status == Status::kSuccess ? row : -1;
    };
    // The row by the thresholds alone (the first that matches and runs), an oracle apart from
    // find_config's.
    auto first_match = [&](int len, bool causal) {
      for (size_t j = 0; j < sigattn::kNumKernelConfigs; ++j) {
        sigattn::detail::ConfigQuery const q{c.direction, c.head_dim, c.dtype, len, causal, c.path};
        auto const& row = kKernelConfigs[j];
        if (sigattn::detail::matches(row, q) && sigattn::runs_on(row, cc))
          return static_cast<int>(j);
      }
      return -1;
    };
    int taken = 0;
    int taken_padded = 0;
    int wrong = 0;
    int first_wrong = 0;
    for (int len = 1; len < from + 256; ++len) {
      int const first = first_match(len, false);
      int const first_causal = first_match(len, true);  // (no rule under a causal mask)
      bool const pads_fewer =
          first >= 0 && len >= c.full_rows_from &&
          padded_query_rows(len, c.tile.tile_q) <
              padded_query_rows(len, kKernelConfigs[first].tile.tile_q);
      // Below the threshold the first match is a general row, and the rule may take its call.
      bool const general = first >= 0 && !sigattn::serves_some_calls_only(kKernelConfigs[first]);
      int const full_expected = len < from && pads_fewer ? static_cast<int>(i) : first;
      int const padded_expected =
          len < from && pads_fewer && c.rows_rule_padded_too ? static_cast<int>(i) : first;
      int const full = row_of(len, false, true);
      int const padded = row_of(len, false, false);
      bool const right = first >= 0 && (len >= from || general) && full == full_expected &&
                         padded == padded_expected &&
                         row_of(len, true, true) == first_causal &&
                         row_of(len, true, false) == first_causal;
      if (!right && wrong++ == 0) first_wrong = len;
      taken += len < from && full == static_cast<int>(i);
      taken_padded += len < from && padded == static_cast<int>(i);
    }
    INFO("row " << i << ": D = " << c.head_dim << ", first wrong max_q_len " << first_wrong);
    CHECK(wrong == 0);
    CHECK(taken > 0);  // the rule takes some calls below the threshold
    CHECK((taken_padded > 0) == c.rows_rule_padded_too);
  }
  // No backward row has full_rows_from: a backward call takes the same row with q_lens or without.
  for (int d : {64, 128}) {
    for (int len : {1, 129, 321, 896, 960, 1152, 1344, 1920, 3071, 12287, 16384}) {
      for (bool causal : {false, true}) {
        INFO("backward, D = " << d << ", max_q_len " << len << (causal ? ", causal" : ""));
        Status padded_status = Status::kSuccess;
        Status full_status = Status::kSuccess;
        int const padded = choose_row(Direction::kBackward, d, DType::kBF16, len, causal,
                                      Path::kAuto, 90, &padded_status);
        int const full = choose_row(Direction::kBackward, d, DType::kBF16, len, causal,
                                    Path::kAuto, 90, &full_status, true);
        CHECK(full_status == padded_status);
        CHECK(full == padded);
      }
    }
  }
  if (!kHopperBuilt) return;
  CHECK(any);
  // The Hopper forward's rows for long calls: 192-row tiles at D = 64 from 321 where they pad
  // fewer rows than 256-row ones (full sequences only), at D = 128 from 129 where they pad fewer
  // than 128-row ones (padded batches too); a tie stays on the general row (docs/tuning.md has the
  // measurements behind the thresholds).
  struct Expect {
    int head_dim;
    int len;
    int tile_q;
  };
  Expect const expected[] = {
      {64, 128, 256},    {64, 192, 256},    {64, 320, 256},    {64, 321, 192},
      {64, 384, 192},    {64, 385, 256},    {64, 512, 256},    {64, 544, 192},
      {64, 640, 256},    {64, 768, 256},    {64, 800, 192},    {64, 895, 192},
      {64, 896, 192},    {64, 1024, 256},   {64, 1152, 192},   {64, 1280, 256},
      {64, 1344, 192},   {64, 1536, 256},   {64, 1920, 192},   {64, 2688, 192},
      {64, 3071, 256},   {64, 3072, 192},   {128, 128, 128},   {128, 129, 192},
      {128, 192, 192},   {128, 193, 128},   {128, 384, 128},   {128, 576, 192},
      {128, 640, 128},   {128, 959, 192},   {128, 960, 192},   {128, 1024, 128},
      {128, 1152, 128},  {128, 1344, 192},  {128, 2880, 192},  {128, 4096, 128},
      {128, 12287, 128}, {128, 12288, 192},
  };
  for (Expect const& e : expected) {
    if (!built(e.head_dim, DType::kBF16)) continue;
    INFO("D = " << e.head_dim << ", max_q_len " << e.len);
    Status status = Status::kSuccess;
    auto tile_q = [&](bool causal, bool full) {
      int const r = choose_row(Direction::kForward, e.head_dim, DType::kBF16, e.len, causal,
                               Path::kAuto, 90, &status, full);
      REQUIRE(r >= 0);
      return kKernelConfigs[r].tile.tile_q;
    };
    int const from = e.head_dim == 64 ? 3072 : 12288;
    int const general = e.head_dim == 64 ? 256 : 128;
    CHECK(tile_q(false, true) == e.tile_q);
    // (A padded batch: at D = 128 the same rule, at D = 64 the threshold.)
    CHECK(tile_q(false, false) == (e.head_dim == 128 ? e.tile_q : e.len >= from ? 192 : general));
    if (e.head_dim == 64) CHECK(tile_q(true, true) == (e.len >= from ? 192 : general));
    if (e.head_dim == 128) CHECK(tile_q(true, true) == general);  // (16384 with a causal mask)
  }
}
