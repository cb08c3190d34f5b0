// The Hopper forward's tile order (include/sigattn/kernel/sm90/fwd_scheduler.cuh), on the host:
// tile_at_position must be a bijection from positions onto work tiles, for the length-sorted
// order and for the plain order used beyond kMaxSortedBatches entries, and the snake assignment
// must hand every position to exactly one CTA. The tables are built here from their definition
// (batch entries by decreasing kv_len, or q_len under a causal mask, ties by index; prefix sums of
// real tiles in that order, of zero tiles in batch order and, under a causal mask, of the real
// tiles per level), which is what build_fwd_schedule computes on the device; the GPU tests check
// the device builder through the forward's results. Under a causal mask the costs along the order
// must not increase, and the snake must then balance the CTAs.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "sigattn/kernel/sm90/fwd_scheduler.cuh"

namespace {

using sigattn::kernel::TileCoord;
using sigattn::kernel::sm90::FwdScheduleSmem;
using sigattn::kernel::sm90::kMaxLevels;
using sigattn::kernel::sm90::kMaxSortedBatches;
using sigattn::kernel::sm90::snake_position;
using sigattn::kernel::sm90::tile_at_position;

constexpr int kTileQ = 128;

struct Problem {
  int batch, heads, max_q, max_kv;
  std::vector<int> q_lens, kv_lens;
  bool causal = false;
  int num_q_tiles() const { return (max_q + kTileQ - 1) / kTileQ; }
  int q_tiles(int b) const { return (q_lens[b] + kTileQ - 1) / kTileQ; }
  int64_t num_tiles() const { return int64_t{num_q_tiles()} * batch * heads; }
};

Problem random_problem(std::mt19937& rng, int batch, int heads, int max_len) {
  Problem p{batch, heads, max_len, max_len, {}, {}};
  std::uniform_int_distribution<int> len(0, max_len);
  for (int b = 0; b < batch; ++b) {
    p.q_lens.push_back(len(rng));
    p.kv_lens.push_back(len(rng));
  }
  return p;
}

std::unique_ptr<FwdScheduleSmem> tables(Problem const& p) {
  auto s = std::make_unique<FwdScheduleSmem>();
  s->sorted = p.batch <= kMaxSortedBatches && !(p.causal && p.num_q_tiles() > kMaxLevels) ? 1 : 0;
  s->levels = p.causal ? 1 : 0;
  if (!s->sorted) return s;
  std::vector<int> const& key = p.causal ? p.q_lens : p.kv_lens;
  std::vector<int> order(p.batch);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return key[a] > key[b]; });
  int level_sum = 0;
  for (int l = 0; l < p.num_q_tiles(); ++l) {  // level l: query tile num_q_tiles - 1 - l
    s->level_prefix[l] = level_sum;
    for (int b = 0; b < p.batch; ++b) level_sum += p.q_tiles(b) > p.num_q_tiles() - 1 - l ? p.heads : 0;
  }
  s->level_prefix[p.num_q_tiles()] = level_sum;
  int real = 0, zero = 0;
  for (int i = 0; i < p.batch; ++i) {
    s->order[i] = order[i];
    s->real_prefix[i] = real * p.heads;
    s->zero_prefix[i] = zero * p.heads;
    real += p.q_tiles(order[i]);
    zero += p.num_q_tiles() - p.q_tiles(i);
  }
  s->real_prefix[p.batch] = real * p.heads;
  s->zero_prefix[p.batch] = zero * p.heads;
  return s;
}

// q_tiles(b) for tile_at_position, callable from its host/device body (a plain host lambda is
// not, without --expt-relaxed-constexpr).
struct QTilesOf {
  int const* tiles;
  SIGATTN_HOST_DEVICE int operator()(int b) const { return tiles[b]; }
};

// Checks the order of one problem; returns the tiles in order.
std::vector<TileCoord> check_order(Problem const& p) {
  auto s = tables(p);
  std::vector<int> tiles_of(p.batch);
  for (int b = 0; b < p.batch; ++b) tiles_of[b] = p.q_tiles(b);
  QTilesOf const q_tiles{tiles_of.data()};
  std::set<std::tuple<int, int, int>> seen;
  std::vector<TileCoord> tiles;
  for (int64_t pos = 0; pos < p.num_tiles(); ++pos) {
    TileCoord c = tile_at_position(*s, p.batch, p.heads, p.num_q_tiles(), pos, q_tiles);
    REQUIRE(c.b >= 0);
    REQUIRE(c.b < p.batch);
    REQUIRE(c.h >= 0);
    REQUIRE(c.h < p.heads);
    REQUIRE(c.m >= 0);
    REQUIRE(c.m < p.num_q_tiles());
    REQUIRE(seen.insert({c.b, c.h, c.m}).second);  // never twice
    tiles.push_back(c);
  }
  REQUIRE(static_cast<int64_t>(seen.size()) == p.num_tiles());  // hence every tile once
  return tiles;
}

}  // namespace

TEST_CASE("scheduler: the length-sorted order is a bijection, longest first, zero tiles last") {
  std::mt19937 rng(20261129);
  for (int trial = 0; trial < 60; ++trial) {
    int const batch = 1 + static_cast<int>(rng() % 40);
    int const heads = 1 + static_cast<int>(rng() % 5);
    int const max_len = 1 + static_cast<int>(rng() % 1500);
    Problem const p = random_problem(rng, batch, heads, max_len);
    INFO("trial " << trial << " B=" << batch << " H=" << heads << " S=" << max_len);
    std::vector<TileCoord> tiles = check_order(p);

    bool in_zero_part = false;
    int last_kv = INT32_MAX;
    for (size_t i = 0; i < tiles.size(); ++i) {
      TileCoord const& c = tiles[i];
      bool const real = c.m < p.q_tiles(c.b);
      if (!real) in_zero_part = true;
      REQUIRE((real || in_zero_part));
      REQUIRE(!(real && in_zero_part));  // no real tile after the first zero tile
      if (real) {
        REQUIRE(p.kv_lens[c.b] <= last_kv);  // batch entries by decreasing kv_len
        last_kv = p.kv_lens[c.b];
        if (i > 0 && tiles[i - 1].b == c.b && tiles[i - 1].h == c.h)
          REQUIRE(tiles[i - 1].m == c.m + 1);  // one (batch, head): last query tile first
      }
    }
  }
}

TEST_CASE("scheduler: under a causal mask the order goes by levels, costs non-increasing") {
  std::mt19937 rng(7331);
  for (int trial = 0; trial < 60; ++trial) {
    int const batch = 1 + static_cast<int>(rng() % 40);
    int const heads = 1 + static_cast<int>(rng() % 5);
    int const max_len = 1 + static_cast<int>(rng() % 3000);
    Problem p = random_problem(rng, batch, heads, max_len);
    p.causal = true;
    INFO("trial " << trial << " B=" << batch << " H=" << heads << " S=" << max_len);
    std::vector<TileCoord> tiles = check_order(p);
    bool in_zero_part = false;
    for (size_t i = 0; i < tiles.size(); ++i) {
      TileCoord const& c = tiles[i];
      bool const real = c.m < p.q_tiles(c.b);
      if (!real) in_zero_part = true;
      REQUIRE(!(real && in_zero_part));  // no real tile after the first zero tile
      if (real && i > 0) {
        TileCoord const& prev = tiles[i - 1];
        // The query tile index (a causal tile's cost with q_len = kv_len) never increases.
        REQUIRE(prev.m >= c.m);
        if (prev.m == c.m) {  // within a level: entries by decreasing q_len, heads inner
          REQUIRE(p.q_lens[prev.b] >= p.q_lens[c.b]);
          if (prev.b == c.b) REQUIRE(prev.h + 1 == c.h);
        }
      }
    }
  }
}

TEST_CASE("scheduler: causal, the snake balances the CTAs' work") {
  // Dense causal self-attention, cost of tile m = m + 1 key tiles (128-key tiles, 128 queries):
  // the largest CTA total over the mean, for the benchmark's shapes on 132 CTAs. Head by head,
  // the S = 16K shape gives 1.54 (measured: causal at 0.73 of the non-causal rate).
  for (int seq : {1024, 4096, 16384}) {
    int const batch = 16384 / seq;
    Problem p{batch, 16, seq, seq, std::vector<int>(batch, seq), std::vector<int>(batch, seq)};
    p.causal = true;
    std::vector<TileCoord> tiles = check_order(p);
    int const ctas = 132;
    std::vector<int64_t> load(ctas, 0);
    for (int cta = 0; cta < ctas; ++cta)
      for (int64_t k = 0;; ++k) {
        int64_t const pos = snake_position(k, cta, ctas);
        if (pos >= p.num_tiles()) break;
        load[cta] += tiles[static_cast<size_t>(pos)].m + 1;
      }
    double const mean = std::accumulate(load.begin(), load.end(), 0.0) / ctas;
    double const worst = static_cast<double>(*std::max_element(load.begin(), load.end()));
    INFO("S=" << seq << " max/mean " << worst / mean);
    REQUIRE(worst / mean < 1.05);
  }
}

TEST_CASE("scheduler: the plain order beyond kMaxSortedBatches is a bijection") {
  std::mt19937 rng(7);
  Problem const p = random_problem(rng, kMaxSortedBatches + 3, 2, 300);
  REQUIRE(tables(p)->sorted == 0);
  std::vector<TileCoord> tiles = check_order(p);
  REQUIRE(tiles.front().b == 0);
  REQUIRE(tiles.front().m == p.num_q_tiles() - 1);
}

TEST_CASE("scheduler: the snake hands every position to exactly one CTA") {
  for (int ctas : {1, 2, 7, 132}) {
    for (int64_t total : {int64_t{1}, int64_t{131}, int64_t{132}, int64_t{133}, int64_t{1000}}) {
      std::vector<int> owner(static_cast<size_t>(total), -1);
      for (int cta = 0; cta < ctas; ++cta) {
        for (int64_t k = 0;; ++k) {
          int64_t const pos = snake_position(k, cta, ctas);
          if (pos >= total) break;  // as the kernel's loops stop
          REQUIRE(owner[static_cast<size_t>(pos)] == -1);
          owner[static_cast<size_t>(pos)] = cta;
        }
      }
      for (int64_t pos = 0; pos < total; ++pos) REQUIRE(owner[static_cast<size_t>(pos)] >= 0);
    }
  }
}
