// The benchmark's command line (bench/bench_options.hpp): the timing options' defaults, what
// --quick changes, and that an option given explicitly wins over --quick's default. Only the
// accepting paths: a bad value ends the process (usage_error), which Catch2 cannot observe.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "../../bench/bench_options.hpp"

namespace {

sigattn_bench::Options parse(std::vector<std::string> args) {
  args.insert(args.begin(), "sigattn_bench");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return sigattn_bench::parse_options(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("bench options: timing defaults", "[bench]") {
  sigattn_bench::Options const o = parse({});
  CHECK(o.iters == 20);
  CHECK(o.warmup == 3);
  CHECK(o.warmup_ms == 1000.0);
  CHECK(o.cooldown_ms == 0.0);
  CHECK(o.fwd_workspace);
  CHECK_FALSE(o.null_lens);
}

TEST_CASE("bench options: --quick shortens the timing unless told otherwise", "[bench]") {
  sigattn_bench::Options const quick = parse({"--quick"});
  CHECK(quick.iters == 5);
  CHECK(quick.warmup == 1);
  CHECK(quick.warmup_ms == 100.0);
  CHECK(quick.seqlens == std::vector<int>{1024, 4096});
  CHECK(quick.head_dims == std::vector<int>{128});

  // Explicit values win, before or after --quick, and 0 is a value (no time-based warm-up).
  sigattn_bench::Options const a = parse({"--warmup-ms", "0", "--quick", "--iters", "7"});
  CHECK(a.warmup_ms == 0.0);
  CHECK(a.iters == 7);
  CHECK(a.warmup == 1);
  sigattn_bench::Options const b = parse({"--quick", "--warmup-ms=250", "--warmup", "0"});
  CHECK(b.warmup_ms == 250.0);
  CHECK(b.warmup == 0);
}

TEST_CASE("bench options: the burst timing, the workspace switch and null lengths", "[bench]") {
  sigattn_bench::Options const o =
      parse({"--warmup-ms", "0", "--cooldown-ms", "500", "--no-fwd-workspace", "--null-lens"});
  CHECK(o.warmup_ms == 0.0);
  CHECK(o.cooldown_ms == 500.0);
  CHECK_FALSE(o.fwd_workspace);
  CHECK(o.null_lens);
  CHECK(parse({"--cooldown-ms=60000"}).cooldown_ms == 60000.0);
  CHECK(parse({"--warmup-ms=60000"}).warmup_ms == 60000.0);
}
