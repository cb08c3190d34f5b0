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

/// The status of select_config and, on success, the path of the row it chose.
struct Choice {
  Status status;
  Path path;
};

Choice choose(Direction dir, int head_dim, DType dtype, Path path, int cc) {
  int row = -1;
  sigattn::Result const r = select_config(dir, head_dim, dtype, path, cc, &row);
  if (r.status != Status::kSuccess) return {r.status, Path::kAuto};
  REQUIRE(row >= 0);
  REQUIRE(static_cast<size_t>(row) < sigattn::kNumKernelConfigs);
  auto const& c = kKernelConfigs[row];
  CHECK(c.direction == dir);
  CHECK(c.head_dim == head_dim);
  CHECK(c.dtype == dtype);
  return {r.status, c.path};
}

}  // namespace

TEST_CASE("dispatch: a device older than every matching row is an architecture mismatch",
          "[dispatch]") {
  for (Direction dir : {Direction::kForward, Direction::kBackward}) {
    for (int d : {64, 128}) {
      INFO("direction " << static_cast<int>(dir) << ", D = " << d);
      CHECK(choose(dir, d, DType::kBF16, Path::kAuto, 75).status == Status::kErrorArchMismatch);
      CHECK(choose(dir, d, DType::kFP16, Path::kPortable, 70).status ==
            Status::kErrorArchMismatch);
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
