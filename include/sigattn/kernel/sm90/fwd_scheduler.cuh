// The length-aware order of the persistent Hopper forward's work tiles (SPEC section 4: longest
// sequences first, so that the last wave is not one long straggler), computed by every CTA from
// the device-side lengths, in shared memory, before the warp specialisation. No global state:
// every CTA derives the same order, and CTA c takes positions c, 2G - 1 - c, 2G + c,
// 4G - 1 - c, ... of it (G CTAs, a snake, so that CTAs that take a heavy tile in one round take a
// light one in the next). Only the split tail below uses a workspace.
//
// The order: first the real tiles (query rows below q_len), then the tiles past q_len, which only
// write zeros (in batch order). The real tiles:
//   - without a causal mask, batch entries by decreasing kv_len (ties by index), and within a
//     batch entry head by head, each head's query tiles last to first. Costs are non-increasing
//     along the order, and all the tiles of one (batch, head) are adjacent, so the CTAs that
//     stream its K and V at the same time share them in L2.
//   - under a causal mask, batch entries by decreasing q_len (ties by index), as a tile's cost
//     grows with its query tile index m. When a sequence's saw tooth of costs is long against the
//     wave (causal_level_block: 5 num_q_tiles >= G), the order goes by levels in blocks of k = 4:
//     level l is query tile m = num_q_tiles - 1 - l, levels are taken k at a time from the
//     largest m down, and in a block each (batch entry, head) that has tiles there takes them
//     together, m from the largest down, entries in that order, heads inner. Head by head
//     instead, the costs would run as one saw tooth per (batch, head), as long as the wave (128
//     key tiles down to 1 at S = 16K, 132 CTAs), which the snake, made for a non-increasing
//     sequence, cannot balance: measured on an H200 (D = 128, bf16, dense causal, 16384 tokens,
//     hidden 2048) 566 TFLOP/s by levels against 382 head by head at S = 16K; a padded batch's
//     saw teeth of unequal lengths unbalance it from 4K on. By levels proper (k = 1), the
//     concurrent tiles spread over all the heads, whose K and V (128 MB) do not fit the 60 MB L2,
//     and each K or V tile is read from memory by about one CTA: dense batches of 1K-4K ran
//     9-16% slower than head by head. In blocks of k, about k CTAs run one (batch, head) together
//     and share its K and V in L2, while the costs along the order rise by at most k - 1 tiles
//     inside a block, a short saw tooth that the snake balances. A shorter saw tooth (below a
//     fifth of the wave) the snake balances head by head, and there the order stays head by
//     head, whose concurrent tiles share the fewest heads' K and V (docs/tuning.md, session 19).
// With more than kMaxSortedBatches batch entries, or by levels more than kMaxLevels query tiles,
// the real and zero tiles keep the plain order (batch, head, query tile last to first).
//
// The split tail (non-causal launches given a workspace, FwdSplit below). With whole tiles only,
// the last wave of the snake is partly empty: the benchmark's shapes make 2048 equal tiles for
// 132 CTAs, 15.5 waves, so that 64 SMs idle for a tile's time. Sigmoid attention has no row
// normalisation, so O is a plain sum over key tiles, and a tile can be cut along its keys into
// pieces whose fp32 partial sums add up. The order's real tiles that see a key (a prefix of it)
// are then taken in two parts: all but the last one or two waves by the snake, as before; the
// rest, the tail, as one line of key tiles ("units", the tiles in order, each its key tiles
// first to last) cut into `ctas` equal ranges, one per CTA (stream-K). A CTA's range holds at most
// two pieces of tiles that other CTAs share: the head of the tile its range ends in (it writes its
// partial sum to the workspace and raises a flag: the writer piece), and the tail of the tile its
// range begins in (it waits for the flags of the CTAs before it that hold that tile's earlier
// pieces, adds their partial sums and stores O: the owner piece). It takes the writer piece
// first and the owner piece last, so the owner rarely waits, and it only ever waits for CTAs with
// a lower index, which the hardware dispatches first (a persistent grid of at most one CTA per SM
// is resident at once in practice; the writers never wait for anyone). The tail is one or two
// waves of adjacent tiles, so its concurrent tiles still share K and V in L2 as the snake's do.
#pragma once

#include <climits>

#include "sigattn/detail/config.cuh"
#include "sigattn/kernel/fwd_args.cuh"
#include "sigattn/kernel/seqlen.cuh"

namespace sigattn::kernel::sm90 {

constexpr int kMaxSortedBatches = 1024;
constexpr int kMaxLevels = 1024;  // query tiles per sequence ordered by level (causal)

/// Shared-memory tables of the order: the batch entries by decreasing kv_len (q_len under a
/// causal mask), prefix sums of real tiles (in that order) and of zero tiles (in batch order),
/// and when the causal order goes by levels prefix sums of the real tiles per level (level l is
/// query tile num_q_tiles - 1 - l).
/// The split tail of the order (see above), when `ctas` > 0. Positions [0, dp_end) go by the
/// snake (dp_end a multiple of the grid), [dp_end, tail_end) are the tail, cut into `units` key
/// tiles shared by CTAs 0 .. ctas - 1, and [tail_end, num_tiles) (tiles without a visible key and
/// zero tiles, which cost no key tile) go round robin.
struct FwdSplit {
  int ctas;  // 0: no split tail (the snake over every position)
  int dp_end;
  int tail_end;
  int units;
};

/// The fewest key tiles a CTA's range of the tail holds: a range is a piece of the pipeline's
/// start and end, and its partial sum costs a 64 KB write and read, so a small tail is spread over
/// fewer CTAs rather than cut finer.
constexpr int kMinSplitUnits = 4;

/// The most CTAs a split tail may have: the partial-sum slots and flags the workspace holds
/// (workspace_bytes). No sm_90 device has more than 132 SMs; a larger grid runs unsplit.
constexpr int kMaxSplitCtas = 144;

/// A tile of the split tail: its position, its first unit (counted from the tail's start) and
/// its key tiles.
struct TailTile {
  int pos;
  int begin;
  int cost;
};

/// CTA `cta`'s pieces of the split tail: its units [a, b), the tiles of its first and last unit,
/// whether it holds a writer piece (its last tile goes on past b) and an owner piece (its first
/// tile began before a and ends within the range), and the whole tiles between them.
struct TailPieces {
  int a = 0, b = 0;
  TailTile first{}, last{};
  bool writer = false, owner = false;
  int whole_begin = 0, whole_count = 0;  // positions
  SIGATTN_HOST_DEVICE int count() const { return (writer ? 1 : 0) + whole_count + (owner ? 1 : 0); }
};

struct FwdScheduleSmem {
  int order[kMaxSortedBatches];
  int real_prefix[kMaxSortedBatches + 1];
  int zero_prefix[kMaxSortedBatches + 1];
  // By levels: prefix sums of the real tiles per level. With a split tail (never by levels, as it
  // is non-causal): prefix sums over the order's entries of their key tiles inside the tail.
  int level_prefix[kMaxLevels + 1];
  FwdSplit split;
  TailPieces mine;      // this CTA's pieces of the split tail (none without one)
  int64_t items;        // this CTA's work items (fwd_item_count)
  int64_t snake_items;  // how many of them come first from the snake (fwd_snake_items)
  int sorted;  // 1 when the tables are in use
  int levels;  // k >= 1 when the real tiles go by levels in blocks of k (causal_level_block)
};
static_assert(kMaxLevels >= kMaxSortedBatches, "level_prefix holds the tail's per-entry sums");

/// The level block of a causal order (0: head by head; k >= 1: by levels in blocks of k levels),
/// the same for every CTA: blocks of kCausalLevelBlock levels when the longest sequence's saw tooth
/// of costs (num_q_tiles) is at least a fifth of the wave (`grid` persistent CTAs), head by head
/// below. Measured on an H200 (docs/tuning.md, session 19; bench/tune forced each order, causal,
/// 16,384 tokens, 132 CTAs): the plain order by levels loses up to 16% on dense batches of 1K-4K
/// at D = 128 (the concurrent tiles read every head's K and V; L2 misses, not profiled), blocks of
/// 4 lose 1.6-4.6% there and keep most of the gain of levels on padded batches from 4K on (+12% at
/// 4K, +24% at 8K, D = 128); they lose 4% on the dense 8K batch and 3-6% at D = 64, 12K. Below 27
/// query tiles neither order pays on both kinds of batch. Host and device, so that the CPU tests
/// apply the same rule.
constexpr int kCausalLevelBlock = 4;
SIGATTN_HOST_DEVICE constexpr int causal_level_block(bool causal, int num_q_tiles, int grid) {
  return causal && 5 * int64_t{num_q_tiles} >= grid ? kCausalLevelBlock : 0;
}

/// Key tiles of batch entry b for the kernels (kv_len clamped, in tiles of TileKV keys).
template <int TileKV>
struct KvTilesOf {
  FwdParams const* p;
  SIGATTN_DEVICE int operator()(int b) const {
    return (clamp_len(p->kv_lens, b, p->max_kv_len) + TileKV - 1) / TileKV;
  }
};

/// Exclusive prefix sums of count(i), i in [0, n), into out[0 .. n] (out[n] the total), by one
/// warp: lane l sums a contiguous chunk, then a shuffle scan over the lanes. count(i) may read
/// out[i] (a scan in place): each lane reads its own chunk's counts before it writes them.
template <class Count>
SIGATTN_DEVICE void warp_prefix_sums(int n, int lane, int* out, Count count) {
  int const chunk = (n + 31) / 32;
  int const begin = min(lane * chunk, n);
  int const end = min(begin + chunk, n);
  int sum = 0;
  for (int i = begin; i < end; ++i) sum += count(i);
  int incl = sum;
  SIGATTN_PRAGMA_UNROLL
  for (int d = 1; d < 32; d *= 2) {
    int const v = __shfl_up_sync(0xffffffffu, incl, d);
    if (lane >= d) incl += v;
  }
  int run = incl - sum;
  for (int i = begin; i < end; ++i) {
    int const c = count(i);
    out[i] = run;
    run += c;
  }
  if (lane == 31) out[n] = incl;
}

/// The split tail's first position for `keyed` real tiles with a visible key on `grid` CTAs: all
/// but the last one or two waves go by the snake, so the tail holds between one and two waves of
/// tiles (all of them when there are fewer than two waves).
SIGATTN_HOST_DEVICE constexpr int split_dp_end(int keyed, int grid) {
  return keyed / grid >= 2 ? (keyed / grid - 1) * grid : 0;
}

/// What a cut costs, in key tiles of work: a piece has the pipeline start and end of a tile of its
/// own, and its partial sum is written and read once. Measured on an H200 (docs/performance.md,
/// session 13): splitting the dense 1K forward (8 key tiles a tile, 15.5 waves) gained 0.3% where
/// whole tiles leave 3.1% of the CTAs' time idle, about 3.5 key tiles a CTA.
constexpr int kSplitCostUnits = 8;

/// Whether cutting a tail of `tiles` tiles and `units` key tiles pays on `grid` CTAs: as whole
/// tiles of the average cost the busiest CTA takes ceil(tiles / grid) of them, cut it takes the
/// mean; the difference must reach kSplitCostUnits. (So the last wave of long sequences is cut;
/// that of short ones, or a nearly full one, is not.)
SIGATTN_HOST_DEVICE constexpr bool split_pays(int tiles, int units, int grid) {
  return tiles > 0 && int64_t{(tiles + grid - 1) / grid * grid - tiles} * units >=
                          int64_t{kSplitCostUnits} * tiles * grid;
}

/// The CTAs that share a tail of `units` key tiles: at most grid, and few enough that each range
/// holds at least kMinSplitUnits units (all of them when there are fewer), so no range is empty.
SIGATTN_HOST_DEVICE constexpr int split_ctas(int units, int grid) {
  return units <= 0                       ? 0
         : units / kMinSplitUnits >= grid ? grid
         : units / kMinSplitUnits >= 1    ? units / kMinSplitUnits
                                          : 1;
}

/// Position `k` of CTA `cta` among `ctas` in the snake assignment.
SIGATTN_HOST_DEVICE int64_t snake_position(int64_t k, int cta, int ctas) {
  return k * ctas + ((k & 1) ? ctas - 1 - cta : cta);
}

/// The largest i in [0, n) with prefix[i] <= x (prefix is non-decreasing, prefix[0] = 0).
SIGATTN_HOST_DEVICE int upper_index(int const* prefix, int n, int x) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int const mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= x)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/// The work tile at position `pos` of the order, given the tables and `q_tiles(b)`, the number of
/// query tiles of batch entry b that hold real rows (ceil(q_len_b / TileQ)). Host and device (the
/// CPU tests check that the order is a bijection, and that its costs are non-increasing).
template <class QTiles>
SIGATTN_HOST_DEVICE TileCoord tile_at_position(FwdScheduleSmem const& s, int batch, int num_heads,
                                               int num_q_tiles, int64_t pos, QTiles q_tiles) {
  TileCoord c;
  if (!s.sorted) {
    int64_t const bh = pos / num_q_tiles;
    c.m = num_q_tiles - 1 - static_cast<int>(pos % num_q_tiles);
    c.b = static_cast<int>(bh / num_heads);
    c.h = static_cast<int>(bh % num_heads);
    return c;
  }
  // (The tables are only built when the tile count fits in int.)
  int const x = static_cast<int>(pos);
  int const total_real = s.real_prefix[batch];
  if (x < total_real && s.levels) {
    // The block of k levels [l0, l1) that holds x. In it, the entries go in the order and each
    // (entry, head) takes its levels of the block together, first to last; an entry present from
    // level l0 + g on has l1 - l0 - g of them, and those entries follow the ones present from
    // l0 + g - 1 (the order is by decreasing q_len). k = 1 is the order by levels proper.
    int const k = s.levels;
    int const l = upper_index(s.level_prefix, num_q_tiles, x);
    int const l0 = l - l % k;
    int const l1 = l0 + k < num_q_tiles ? l0 + k : num_q_tiles;
    int y = x - s.level_prefix[l0];
    int entry = 0;  // entries present before level l0 + g: the first one new at l0 + g
    for (int g = 0; g < l1 - l0; ++g) {
      int const present = (s.level_prefix[l0 + g + 1] - s.level_prefix[l0 + g]) / num_heads;
      int const span = l1 - l0 - g;  // levels of the block that each of them has
      int const size = (present - entry) * num_heads * span;
      if (y < size) {
        c.b = s.order[entry + y / (num_heads * span)];
        c.h = y / span % num_heads;
        c.m = num_q_tiles - 1 - (l0 + g + y % span);
        return c;
      }
      y -= size;
      entry = present;
    }
    c.m = c.b = c.h = 0;  // (not reached: x lies in the block)
  } else if (x < total_real) {
    int const i = upper_index(s.real_prefix, batch, x);
    c.b = s.order[i];
    int const tiles = q_tiles(c.b);
    int const within = x - s.real_prefix[i];
    c.h = within / tiles;
    c.m = tiles - 1 - within % tiles;
  } else {
    int const y = x - total_real;
    c.b = upper_index(s.zero_prefix, batch, y);
    int const tiles = q_tiles(c.b);
    int const zeros = num_q_tiles - tiles;
    int const within = y - s.zero_prefix[c.b];
    c.h = within / zeros;
    c.m = tiles + within % zeros;
  }
  return c;
}

/// The work tile at position `pos` of the order, in a kernel.
template <int TileQ>
SIGATTN_DEVICE TileCoord fwd_tile_at(FwdArgs const& args, FwdScheduleSmem const& s, int64_t pos) {
  FwdParams const& p = args.p;
  return tile_at_position(s, p.batch, p.num_heads, args.num_q_tiles, pos, [&](int b) {
    return (clamp_len(p.q_lens, b, p.max_q_len) + TileQ - 1) / TileQ;
  });
}

/// What a CTA does with one of its work items (see the split tail above).
enum FwdRole : int {
  kWholeTile = 0,    // every key tile; O stored
  kWriterPiece = 1,  // the first key tiles of a tile that CTAs after this one end
  kOwnerPiece = 2,   // the last key tiles; the earlier pieces' partial sums added, O stored
};

/// One work item of a CTA: the tile at position `pos` of the order, its key tiles
/// [n_begin, n_end) (n_end INT_MAX: all that its rows see), and for an owner piece the first CTA
/// that holds an earlier piece of the tile (the others up to this CTA do too, unless their range
/// is empty).
struct FwdItem {
  int64_t pos;
  int n_begin, n_end;
  int role;
  int first_writer;
};

/// The first unit of CTA `cta`'s range of the tail (cta in [0, ctas]; ctas gives the end).
SIGATTN_HOST_DEVICE int split_begin(FwdSplit const& sp, int cta) {
  return static_cast<int>(int64_t{sp.units} * cta / sp.ctas);
}

/// The CTA whose range holds unit u: the largest c with split_begin(c) <= u.
SIGATTN_HOST_DEVICE int split_cta_of(FwdSplit const& sp, int u) {
  int64_t const c = ((int64_t{u} + 1) * sp.ctas - 1) / sp.units;
  return c < sp.ctas - 1 ? static_cast<int>(c) : sp.ctas - 1;
}

/// The tail tile that holds unit u; kv_tiles(b) as in build_fwd_schedule.
template <class KvTiles>
SIGATTN_HOST_DEVICE TailTile tail_tile_of(FwdScheduleSmem const& s, int batch, int u,
                                          KvTiles kv_tiles) {
  int const i = upper_index(s.level_prefix, batch, u);
  int const cost = kv_tiles(s.order[i]);
  int const first = s.real_prefix[i] > s.split.dp_end ? s.real_prefix[i] : s.split.dp_end;
  int const t = (u - s.level_prefix[i]) / cost;
  return TailTile{first + t, s.level_prefix[i] + t * cost, cost};
}

template <class KvTiles>
SIGATTN_HOST_DEVICE TailPieces tail_pieces(FwdScheduleSmem const& s, int batch, int cta,
                                           KvTiles kv_tiles) {
  TailPieces t;
  if (cta >= s.split.ctas) return t;
  t.a = split_begin(s.split, cta);
  t.b = split_begin(s.split, cta + 1);
  if (t.a == t.b) return t;
  t.first = tail_tile_of(s, batch, t.a, kv_tiles);
  t.last = tail_tile_of(s, batch, t.b - 1, kv_tiles);
  t.writer = t.last.begin + t.last.cost > t.b;
  t.owner = t.first.begin < t.a && t.first.begin + t.first.cost <= t.b;
  int const whole_begin = t.first.begin == t.a ? t.first.pos : t.first.pos + 1;
  int const whole_end = t.last.begin + t.last.cost == t.b ? t.last.pos + 1 : t.last.pos;
  t.whole_begin = whole_begin;
  t.whole_count = whole_end > whole_begin ? whole_end - whole_begin : 0;
  return t;
}

/// How many work items CTA `cta` of `grid` takes: its snake positions, or with a split tail its
/// snake positions before the tail, its pieces of the tail, and its share of the positions after
/// the tail (round robin).
template <class KvTiles>
SIGATTN_HOST_DEVICE int64_t fwd_item_count(FwdScheduleSmem const& s, int batch, int64_t num_tiles,
                                           int cta, int grid, KvTiles kv_tiles) {
  if (s.split.ctas == 0) {
    int64_t const full = num_tiles / grid;
    int64_t const in_round = (full & 1) ? grid - 1 - cta : cta;
    return full + (in_round < num_tiles % grid ? 1 : 0);
  }
  int64_t const rest = num_tiles - s.split.tail_end;
  return s.split.dp_end / grid + tail_pieces(s, batch, cta, kv_tiles).count() +
         (rest > cta ? (rest - cta - 1) / grid + 1 : 0);
}

/// How many of a CTA's first items are snake positions: all of them without a split tail.
SIGATTN_HOST_DEVICE int64_t fwd_snake_items(FwdSplit const& sp, int grid) {
  return sp.ctas == 0 ? INT64_MAX : sp.dp_end / grid;
}

/// Item `k` of CTA `cta` (k < fwd_item_count), with s.mine its tail_pieces and s.snake_items
/// fwd_snake_items. In the tail: the writer piece first (the CTA after
/// this one waits for it), then the whole tiles, then the owner piece (by then the CTAs before
/// this one have long written theirs).
SIGATTN_HOST_DEVICE FwdItem fwd_item_at(FwdScheduleSmem const& s, int cta, int grid, int64_t k) {
  FwdItem it{0, 0, INT_MAX, kWholeTile, 0};
  int64_t const snake = s.snake_items;
  if (k < snake) {
    it.pos = snake_position(k, cta, grid);
    return it;
  }
  k -= snake;
  TailPieces const& t = s.mine;
  if (k >= t.count()) {
    it.pos = s.split.tail_end + cta + (k - t.count()) * grid;
    return it;
  }
  if (t.writer && k == 0) {
    it.pos = t.last.pos;
    it.n_begin = (t.a > t.last.begin ? t.a : t.last.begin) - t.last.begin;
    it.n_end = t.b - t.last.begin;
    it.role = kWriterPiece;
    return it;
  }
  int64_t const j = k - (t.writer ? 1 : 0);
  if (j < t.whole_count) {
    it.pos = t.whole_begin + j;
    return it;
  }
  it.pos = t.first.pos;
  it.n_begin = t.a - t.first.begin;
  it.n_end = t.first.cost;
  it.role = kOwnerPiece;
  it.first_writer = split_cta_of(s.split, t.first.begin);
  return it;
}

/// The first position of the order whose entry fails `keep` (batch when none does), for a
/// predicate that holds on a prefix of the order.
template <class Keep>
SIGATTN_DEVICE int order_partition(FwdScheduleSmem const& s, int batch, Keep keep) {
  int lo = 0, hi = batch;
  while (lo < hi) {
    int const mid = (lo + hi) / 2;
    if (keep(s.order[mid]))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// Builds the tables; called by every thread of the CTA, followed by a CTA-wide barrier. With
/// `split` (a non-causal launch given a workspace, on at most kMaxSplitCtas CTAs) the order's
/// last one or two waves are a split tail (split_pays, split_ctas; the block under `split` below).
template <int TileQ, int TileKV>
SIGATTN_DEVICE void build_fwd_schedule(FwdArgs const& args, FwdScheduleSmem& s, bool split) {
  FwdParams const& p = args.p;
  int const batch = p.batch;
  bool const causal = p.causal != Causal::kNone;
  // The same for every CTA: the launcher's choice (causal_level_block over the grid, the wave,
  // unless a tuning run forced an order).
  bool const levels = causal && args.causal_levels > 0;
  if (threadIdx.x == 0) s.split = FwdSplit{0, 0, 0, 0};
  // (kMaxLevels bounds the level table only: head by head, a causal order takes any length.)
  if (batch > kMaxSortedBatches || args.num_tiles > INT_MAX ||
      (levels && args.num_q_tiles > kMaxLevels)) {
    if (threadIdx.x == 0) {
      s.sorted = 0;
      s.mine = TailPieces{};
      s.items = fwd_item_count(s, batch, args.num_tiles, static_cast<int>(blockIdx.x),
                               static_cast<int>(gridDim.x), KvTilesOf<TileKV>{&p});
      s.snake_items = fwd_snake_items(s.split, static_cast<int>(gridDim.x));
    }
    return;
  }
  auto q_tiles = [&](int b) { return (clamp_len(p.q_lens, b, p.max_q_len) + TileQ - 1) / TileQ; };
  // Rank of each batch entry by (length descending, index ascending), the length being kv_len,
  // or q_len under a causal mask: a counting rank, spread over the CTA's threads (B^2 / threads
  // comparisons of lengths staged in real_prefix).
  int* const lens = s.real_prefix;
  for (int b = threadIdx.x; b < batch; b += blockDim.x)
    lens[b] = causal ? clamp_len(p.q_lens, b, p.max_q_len) : clamp_len(p.kv_lens, b, p.max_kv_len);
  __syncthreads();
  for (int b = threadIdx.x; b < batch; b += blockDim.x) {
    int const len = lens[b];
    int rank = 0;
    for (int o = 0; o < batch; ++o) {
      int const len_o = lens[o];
      rank += (len_o > len) || (len_o == len && o < b);
    }
    s.order[rank] = b;
  }
  __syncthreads();  // order complete, lens no longer read
  if (levels) {
    // Level l (query tile m = num_q_tiles - 1 - l) holds the entries whose q_tiles exceed m: a
    // prefix of the order (q_tiles is non-increasing along it), found by binary search. The
    // counts go into level_prefix, which warp 0 then scans in place.
    int const num_levels = args.num_q_tiles;
    for (int l = threadIdx.x; l < num_levels; l += blockDim.x) {
      int const m = num_levels - 1 - l;
      // (The first position whose entry has at most m query tiles.)
      s.level_prefix[l] =
          order_partition(s, batch, [&](int b) { return q_tiles(b) > m; }) * p.num_heads;
    }
    __syncthreads();
    if (threadIdx.x < 32)
      warp_prefix_sums(num_levels, threadIdx.x, s.level_prefix,
                       [&](int l) { return s.level_prefix[l]; });
  }
  // Prefix sums of the real tiles in the order and of the zero tiles in batch order, by warp 0.
  if (threadIdx.x < 32) {
    int const lane = threadIdx.x;
    warp_prefix_sums(batch, lane, s.real_prefix,
                     [&](int i) { return q_tiles(s.order[i]) * p.num_heads; });
    warp_prefix_sums(batch, lane, s.zero_prefix,
                     [&](int i) { return (args.num_q_tiles - q_tiles(i)) * p.num_heads; });
    if (lane == 0) {
      s.sorted = 1;
      s.levels = levels ? args.causal_levels : 0;
    }
    if (split && !causal) {
      // The split tail: the real tiles that see a key are the order's entries up to the first
      // with kv_len = 0 (the order is by kv_len), the tail the last one or two waves of them,
      // and its key tiles summed per entry into level_prefix (unused without levels).
      KvTilesOf<TileKV> const kv_tiles{&p};
      int const keyed_entries = order_partition(s, batch, [&](int b) { return kv_tiles(b) > 0; });
      __syncwarp();  // real_prefix complete
      int const keyed = s.real_prefix[keyed_entries];
      int const grid = static_cast<int>(gridDim.x);
      int const dp_end = split_dp_end(keyed, grid);
      int64_t const bound = int64_t{keyed - dp_end} * ((p.max_kv_len + TileKV - 1) / TileKV);
      if (keyed > dp_end && bound <= INT_MAX) {
        warp_prefix_sums(batch, lane, s.level_prefix, [&](int i) {
          int const first = max(s.real_prefix[i], dp_end);
          int const last = min(s.real_prefix[i + 1], keyed);
          return last > first ? (last - first) * kv_tiles(s.order[i]) : 0;
        });
        __syncwarp();
        if (lane == 0) {
          int const units = s.level_prefix[batch];
          if (split_pays(keyed - dp_end, units, grid))
            s.split = FwdSplit{split_ctas(units, grid), dp_end, keyed, units};
        }
      }
    }
    __syncwarp();
    // This CTA's items, worked out here once with the full register file (the producer threads
    // that read them run on 24 or 32 registers).
    if (lane == 0) {
      int const cta = static_cast<int>(blockIdx.x);
      KvTilesOf<TileKV> const kv_tiles{&p};
      s.mine = tail_pieces(s, batch, cta, kv_tiles);
      s.items =
          fwd_item_count(s, batch, args.num_tiles, cta, static_cast<int>(gridDim.x), kv_tiles);
      s.snake_items = fwd_snake_items(s.split, static_cast<int>(gridDim.x));
    }
  }
}

}  // namespace sigattn::kernel::sm90
