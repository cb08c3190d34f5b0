// Host validation (sigattn/host/validate.hpp): one case per invalid input, the exact status for
// each, the order in which checks decide, empty problems; then the same cases through the public
// entry points (can_implement, forward, backward), which must reject them before touching CUDA,
// so this file runs without a GPU. Device pointers here are fake addresses, never dereferenced.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "sigattn/api.hpp"
#include "sigattn/host/validate.hpp"

namespace {

using sigattn::BiasMode;
using sigattn::BwdParams;
using sigattn::Causal;
using sigattn::DType;
using sigattn::FwdParams;
using sigattn::Result;
using sigattn::SigmoidMode;
using sigattn::Status;
using sigattn::detail::is_empty;
using sigattn::detail::validate;

template <class T = void>
T* fake_ptr(uintptr_t address) {
  return reinterpret_cast<T*>(address);
}

sigattn::Strides bshd(int64_t seq, int64_t heads, int64_t dim) {
  return {seq * heads * dim, heads * dim, dim};
}

/// A valid GQA forward: B=2, Hq=8, Hkv=2, D=128, Sq=100, Skv=120, ragged lengths.
FwdParams valid_fwd() {
  FwdParams p{};
  p.q = fake_ptr(0x100000);
  p.k = fake_ptr(0x200000);
  p.v = fake_ptr(0x300000);
  p.o = fake_ptr(0x400000);
  p.dtype = DType::kBF16;
  p.batch = 2;
  p.num_heads = 8;
  p.num_kv_heads = 2;
  p.head_dim = 128;
  p.max_q_len = 100;
  p.max_kv_len = 120;
  p.q_lens = fake_ptr<int32_t const>(0x500000);
  p.kv_lens = fake_ptr<int32_t const>(0x500100);
  p.q_stride = p.o_stride = bshd(100, 8, 128);
  p.k_stride = p.v_stride = bshd(120, 2, 128);
  return p;
}

/// A valid backward of that forward; its fwd.o is null, which backward never reads.
BwdParams valid_bwd() {
  BwdParams p{};
  p.fwd = valid_fwd();
  p.fwd.o = nullptr;
  p.dout = fake_ptr(0x600000);
  p.dq = fake_ptr(0x700000);
  p.dk = fake_ptr(0x800000);
  p.dv = fake_ptr(0x900000);
  p.dout_stride = p.dq_stride = p.fwd.q_stride;
  p.dk_stride = p.dv_stride = p.fwd.k_stride;
  return p;
}

struct FwdCase {
  char const* name;
  std::function<void(FwdParams&)> change;
  Status expected;
};

struct BwdCase {
  char const* name;
  std::function<void(BwdParams&)> change;
  Status expected;
};

constexpr Status kInvalid = Status::kErrorInvalidArgument;
constexpr Status kNotSupported = Status::kErrorNotSupported;
constexpr Status kMisaligned = Status::kErrorMisalignedPointer;
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

/// Every invalid forward input, with the status it must produce.
std::vector<FwdCase> invalid_fwd_cases() {
  return {
      // Negative sizes.
      {"negative batch", [](FwdParams& p) { p.batch = -1; }, kInvalid},
      {"negative num_heads", [](FwdParams& p) { p.num_heads = -8; }, kInvalid},
      {"negative num_kv_heads", [](FwdParams& p) { p.num_kv_heads = -2; }, kInvalid},
      {"negative head_dim", [](FwdParams& p) { p.head_dim = -128; }, kInvalid},
      {"negative max_q_len", [](FwdParams& p) { p.max_q_len = -1; }, kInvalid},
      {"negative max_kv_len", [](FwdParams& p) { p.max_kv_len = -1; }, kInvalid},
      // Heads.
      {"num_kv_heads 0", [](FwdParams& p) { p.num_kv_heads = 0; }, kInvalid},
      {"num_heads % num_kv_heads != 0", [](FwdParams& p) { p.num_kv_heads = 3; }, kInvalid},
      {"num_kv_heads > num_heads", [](FwdParams& p) { p.num_kv_heads = 16; }, kInvalid},
      // Unsupported configs.
      {"head_dim 0", [](FwdParams& p) { p.head_dim = 0; }, kNotSupported},
      {"head_dim 32", [](FwdParams& p) { p.head_dim = 32; }, kNotSupported},
      {"head_dim 96", [](FwdParams& p) { p.head_dim = 96; }, kNotSupported},
      {"head_dim 256", [](FwdParams& p) { p.head_dim = 256; }, kNotSupported},
      {"dtype 2", [](FwdParams& p) { p.dtype = static_cast<DType>(2); }, kNotSupported},
      {"dtype -1", [](FwdParams& p) { p.dtype = static_cast<DType>(-1); }, kNotSupported},
      // Sizes beyond what the kernels' int32 tile counts and the workspace's byte count hold.
      {"max_q_len 2^30 + 1", [](FwdParams& p) { p.max_q_len = (1 << 30) + 1; }, kNotSupported},
      {"max_kv_len INT_MAX",
       [](FwdParams& p) { p.max_kv_len = std::numeric_limits<int32_t>::max(); }, kNotSupported},
      {"more than 2^60 elements",
       [](FwdParams& p) {
         p.batch = 1 << 30;
         p.max_q_len = 1 << 30;
       },
       kNotSupported},
      // Enums out of range.
      {"bias_mode 3", [](FwdParams& p) { p.bias_mode = static_cast<BiasMode>(3); }, kInvalid},
      {"bias_mode -1", [](FwdParams& p) { p.bias_mode = static_cast<BiasMode>(-1); }, kInvalid},
      {"causal 3", [](FwdParams& p) { p.causal = static_cast<Causal>(3); }, kInvalid},
      {"sigmoid 2", [](FwdParams& p) { p.sigmoid = static_cast<SigmoidMode>(2); }, kInvalid},
      {"path 3", [](FwdParams& p) { p.path = static_cast<sigattn::Path>(3); }, kInvalid},
      {"path -1", [](FwdParams& p) { p.path = static_cast<sigattn::Path>(-1); }, kInvalid},
      // Scalars.
      {"scale NaN", [](FwdParams& p) { p.scale = kNaN; }, kInvalid},
      {"scale +Inf", [](FwdParams& p) { p.scale = kInf; }, kInvalid},
      {"scale -Inf", [](FwdParams& p) { p.scale = -kInf; }, kInvalid},
      {"scale 3e38 (infinite times log2 e)", [](FwdParams& p) { p.scale = 3e38f; }, kInvalid},
      {"scalar bias -3e38 (infinite times log2 e)",
       [](FwdParams& p) {
         p.bias_mode = BiasMode::kScalar;
         p.bias = -3e38f;
       },
       kInvalid},
      {"scalar bias NaN",
       [](FwdParams& p) {
         p.bias_mode = BiasMode::kScalar;
         p.bias = kNaN;
       },
       kInvalid},
      {"scalar bias -Inf",
       [](FwdParams& p) {
         p.bias_mode = BiasMode::kScalar;
         p.bias = -kInf;
       },
       kInvalid},
      // Null pointers.
      {"null q", [](FwdParams& p) { p.q = nullptr; }, kInvalid},
      {"null k", [](FwdParams& p) { p.k = nullptr; }, kInvalid},
      {"null v", [](FwdParams& p) { p.v = nullptr; }, kInvalid},
      {"null o", [](FwdParams& p) { p.o = nullptr; }, kInvalid},
      {"per-batch bias without bias_per_batch",
       [](FwdParams& p) { p.bias_mode = BiasMode::kPerBatch; }, kInvalid},
      {"null q with max_kv_len 0",
       [](FwdParams& p) {
         p.max_kv_len = 0;
         p.q = nullptr;
       },
       kInvalid},
      // Misaligned base pointers (16 bytes for tensors, 4 for the int32/fp32 arrays).
      {"q + 2 bytes", [](FwdParams& p) { p.q = fake_ptr(0x100002); }, kMisaligned},
      {"k + 8 bytes", [](FwdParams& p) { p.k = fake_ptr(0x200008); }, kMisaligned},
      {"v + 4 bytes", [](FwdParams& p) { p.v = fake_ptr(0x300004); }, kMisaligned},
      {"o + 14 bytes", [](FwdParams& p) { p.o = fake_ptr(0x40000e); }, kMisaligned},
      {"q_lens + 2 bytes", [](FwdParams& p) { p.q_lens = fake_ptr<int32_t const>(0x500002); },
       kMisaligned},
      {"kv_lens + 1 byte", [](FwdParams& p) { p.kv_lens = fake_ptr<int32_t const>(0x500101); },
       kMisaligned},
      {"bias_per_batch + 2 bytes",
       [](FwdParams& p) {
         p.bias_mode = BiasMode::kPerBatch;
         p.bias_per_batch = fake_ptr<float const>(0x500202);
       },
       kMisaligned},
      // Strides not multiples of 8 elements (16 bytes).
      {"q batch stride", [](FwdParams& p) { p.q_stride.batch += 4; }, kMisaligned},
      {"q token stride", [](FwdParams& p) { p.q_stride.token = 8 * 128 + 2; }, kMisaligned},
      {"q head stride", [](FwdParams& p) { p.q_stride.head = 132; }, kMisaligned},
      {"k head stride", [](FwdParams& p) { p.k_stride.head = 129; }, kMisaligned},
      {"v token stride", [](FwdParams& p) { p.v_stride.token = 260; }, kMisaligned},
      {"o batch stride", [](FwdParams& p) { p.o_stride.batch = 1; }, kMisaligned},
      {"fp16 head stride",
       [](FwdParams& p) {
         p.dtype = DType::kFP16;
         p.o_stride.head = 136 - 4;
       },
       kMisaligned},
      // Negative strides.
      {"q negative batch stride", [](FwdParams& p) { p.q_stride.batch = -800; }, kInvalid},
      {"k negative token stride", [](FwdParams& p) { p.k_stride.token = -256; }, kInvalid},
      {"v negative head stride", [](FwdParams& p) { p.v_stride.head = -128; }, kInvalid},
      {"o negative token stride", [](FwdParams& p) { p.o_stride.token = -1024; }, kInvalid},
      // Several faults at once: the earliest check in validate.hpp's list decides.
      {"negative batch beats null q",
       [](FwdParams& p) {
         p.batch = -1;
         p.q = nullptr;
       },
       kInvalid},
      {"head_dim 96 beats misaligned q",
       [](FwdParams& p) {
         p.head_dim = 96;
         p.q = fake_ptr(0x100002);
       },
       kNotSupported},
      {"bad kv heads beat bad dtype",
       [](FwdParams& p) {
         p.num_kv_heads = 3;
         p.dtype = static_cast<DType>(9);
       },
       kInvalid},
      {"null o beats misaligned q",
       [](FwdParams& p) {
         p.o = nullptr;
         p.q = fake_ptr(0x100002);
       },
       kInvalid},
      {"misaligned q beats negative stride",
       [](FwdParams& p) {
         p.q = fake_ptr(0x100002);
         p.k_stride.token = -256;
       },
       kMisaligned},
      {"unaligned stride beats negative stride",
       [](FwdParams& p) {
         p.q_stride.head = 130;
         p.k_stride.token = -256;
       },
       kMisaligned},
  };
}

/// Every invalid input specific to the backward, with the status it must produce.
std::vector<BwdCase> invalid_bwd_cases() {
  return {
      {"negative batch", [](BwdParams& p) { p.fwd.batch = -1; }, kInvalid},
      {"num_heads % num_kv_heads != 0", [](BwdParams& p) { p.fwd.num_kv_heads = 3; }, kInvalid},
      {"head_dim 96", [](BwdParams& p) { p.fwd.head_dim = 96; }, kNotSupported},
      {"dtype 5", [](BwdParams& p) { p.fwd.dtype = static_cast<DType>(5); }, kNotSupported},
      {"causal -1", [](BwdParams& p) { p.fwd.causal = static_cast<Causal>(-1); }, kInvalid},
      {"scale NaN", [](BwdParams& p) { p.fwd.scale = kNaN; }, kInvalid},
      {"scale -3e38", [](BwdParams& p) { p.fwd.scale = -3e38f; }, kInvalid},
      {"max_kv_len 2^30 + 1", [](BwdParams& p) { p.fwd.max_kv_len = (1 << 30) + 1; },
       kNotSupported},
      {"null q", [](BwdParams& p) { p.fwd.q = nullptr; }, kInvalid},
      {"null k", [](BwdParams& p) { p.fwd.k = nullptr; }, kInvalid},
      {"null v", [](BwdParams& p) { p.fwd.v = nullptr; }, kInvalid},
      {"null dout", [](BwdParams& p) { p.dout = nullptr; }, kInvalid},
      {"null dq", [](BwdParams& p) { p.dq = nullptr; }, kInvalid},
      {"null dk", [](BwdParams& p) { p.dk = nullptr; }, kInvalid},
      {"null dv", [](BwdParams& p) { p.dv = nullptr; }, kInvalid},
      {"null dk with no queries (dK must still be zeroed)",
       [](BwdParams& p) {
         p.fwd.max_q_len = 0;
         p.dk = nullptr;
       },
       kInvalid},
      {"per-batch bias without bias_per_batch",
       [](BwdParams& p) { p.fwd.bias_mode = BiasMode::kPerBatch; }, kInvalid},
      {"dout + 2 bytes", [](BwdParams& p) { p.dout = fake_ptr(0x600002); }, kMisaligned},
      {"dq + 8 bytes", [](BwdParams& p) { p.dq = fake_ptr(0x700008); }, kMisaligned},
      {"dk + 4 bytes", [](BwdParams& p) { p.dk = fake_ptr(0x800004); }, kMisaligned},
      {"dv + 6 bytes", [](BwdParams& p) { p.dv = fake_ptr(0x900006); }, kMisaligned},
      {"k + 2 bytes", [](BwdParams& p) { p.fwd.k = fake_ptr(0x200002); }, kMisaligned},
      {"dout head stride", [](BwdParams& p) { p.dout_stride.head = 130; }, kMisaligned},
      {"dq token stride", [](BwdParams& p) { p.dq_stride.token = 1028; }, kMisaligned},
      {"dk batch stride", [](BwdParams& p) { p.dk_stride.batch += 2; }, kMisaligned},
      {"dv head stride", [](BwdParams& p) { p.dv_stride.head = 127; }, kMisaligned},
      {"q token stride", [](BwdParams& p) { p.fwd.q_stride.token = 1025; }, kMisaligned},
      {"dq negative batch stride", [](BwdParams& p) { p.dq_stride.batch = -8; }, kInvalid},
      {"dk negative token stride", [](BwdParams& p) { p.dk_stride.token = -256; }, kInvalid},
      {"dv negative head stride", [](BwdParams& p) { p.dv_stride.head = -128; }, kInvalid},
  };
}

}  // namespace

TEST_CASE("validate: the baseline problems are valid", "[validate]") {
  CHECK(validate(valid_fwd()).status == Status::kSuccess);
  CHECK(validate(valid_fwd()).cuda == cudaSuccess);
  CHECK_FALSE(is_empty(valid_fwd()));
  CHECK(validate(valid_bwd()).status == Status::kSuccess);
  CHECK_FALSE(is_empty(valid_bwd()));
}

TEST_CASE("validate: valid variations", "[validate]") {
  auto fwd_ok = [](std::function<void(FwdParams&)> const& change) {
    FwdParams p = valid_fwd();
    change(p);
    return validate(p).status;
  };
  CHECK(fwd_ok([](FwdParams& p) { p.head_dim = 64; }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.dtype = DType::kFP16; }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.num_kv_heads = 8; }) == Status::kSuccess);  // MHA
  CHECK(fwd_ok([](FwdParams& p) { p.num_kv_heads = 1; }) == Status::kSuccess);  // MQA
  CHECK(fwd_ok([](FwdParams& p) {
          p.q_lens = nullptr;
          p.kv_lens = nullptr;
        }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) {  // [B, H, S, D]
          p.q_stride = p.o_stride = {8 * 100 * 128, 128, 100 * 128};
          p.k_stride = p.v_stride = {2 * 120 * 128, 128, 120 * 128};
        }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.q_stride.token = 8 * 128 + 8; }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.scale = -0.5f; }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.scale = 2e38f; }) == Status::kSuccess);  // finite x log2 e
  CHECK(fwd_ok([](FwdParams& p) { p.max_kv_len = 1 << 30; }) == Status::kSuccess);  // the limit
  CHECK(fwd_ok([](FwdParams& p) { p.bias = kNaN; }) == Status::kSuccess);  // unused bias
  CHECK(fwd_ok([](FwdParams& p) {
          p.bias_mode = BiasMode::kPerBatch;
          p.bias_per_batch = fake_ptr<float const>(0x500204);
        }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) {
          p.causal = Causal::kBottomRight;
          p.sigmoid = SigmoidMode::kFast;
        }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.path = sigattn::Path::kHopper; }) == Status::kSuccess);
  CHECK(fwd_ok([](FwdParams& p) { p.o_stride.head = 0; }) == Status::kSuccess);  // overlap:
  // strides that alias rows are a documented precondition, not detected.
}

TEST_CASE("validate: each invalid forward input gets its own status", "[validate]") {
  for (FwdCase const& c : invalid_fwd_cases()) {
    DYNAMIC_SECTION(c.name) {
      FwdParams p = valid_fwd();
      c.change(p);
      Result const r = validate(p);
      CHECK(r.status == c.expected);
      CHECK(r.cuda == cudaSuccess);
      CHECK_FALSE(static_cast<bool>(r));
    }
  }
}

TEST_CASE("validate: each invalid backward input gets its own status", "[validate]") {
  for (BwdCase const& c : invalid_bwd_cases()) {
    DYNAMIC_SECTION(c.name) {
      BwdParams p = valid_bwd();
      c.change(p);
      CHECK(validate(p).status == c.expected);
    }
  }
}

TEST_CASE("validate: zero-size problems are valid no-ops", "[validate]") {
  SECTION("batch, heads or query rows of 0, even with null pointers") {
    for (int which = 0; which < 3; ++which) {
      INFO("zero field " << which);
      FwdParams p = valid_fwd();
      (which == 0 ? p.batch : which == 1 ? p.num_heads : p.max_q_len) = 0;
      CHECK(is_empty(p));
      CHECK(validate(p).status == Status::kSuccess);
      p.q = p.k = p.v = p.o = nullptr;
      p.q_stride = p.k_stride = p.v_stride = p.o_stride = {};
      CHECK(validate(p).status == Status::kSuccess);
      p.q = fake_ptr(0x100002);  // memory of an empty problem is not looked at
      p.k_stride.token = -3;
      CHECK(validate(p).status == Status::kSuccess);
    }
  }
  SECTION("an empty problem still gets its configuration checked") {
    FwdParams p = valid_fwd();
    p.batch = 0;
    p.head_dim = 96;
    CHECK(validate(p).status == kNotSupported);
    p = valid_fwd();
    p.num_heads = 0;
    p.num_kv_heads = 0;
    CHECK(validate(p).status == kInvalid);  // Hkv must be positive even with Hq == 0
    p.num_kv_heads = 2;
    CHECK(validate(p).status == Status::kSuccess);
  }
  SECTION("max_kv_len == 0 is not empty: O must be written, K and V may be null") {
    FwdParams p = valid_fwd();
    p.max_kv_len = 0;
    CHECK_FALSE(is_empty(p));
    CHECK(validate(p).status == Status::kSuccess);
    p.k = p.v = nullptr;
    CHECK(validate(p).status == Status::kSuccess);
    p.o = nullptr;
    CHECK(validate(p).status == kInvalid);
  }
  SECTION("backward: empty only when no gradient has an element") {
    BwdParams p = valid_bwd();
    p.fwd.batch = 0;
    CHECK(is_empty(p));
    CHECK(validate(p).status == Status::kSuccess);

    p = valid_bwd();
    p.fwd.max_q_len = 0;  // dK, dV still need zeros; Q, dO, dQ have no element
    CHECK_FALSE(is_empty(p));
    p.fwd.q = p.dout = p.dq = nullptr;
    CHECK(validate(p).status == Status::kSuccess);

    p = valid_bwd();
    p.fwd.max_kv_len = 0;  // dQ still needs zeros; K, V, dK, dV have no element
    CHECK_FALSE(is_empty(p));
    p.fwd.k = p.fwd.v = p.dk = p.dv = nullptr;
    CHECK(validate(p).status == Status::kSuccess);

    p = valid_bwd();
    p.fwd.max_q_len = 0;
    p.fwd.max_kv_len = 0;
    CHECK(is_empty(p));
    p.fwd.q = p.fwd.k = p.fwd.v = p.dout = p.dq = p.dk = p.dv = nullptr;
    CHECK(validate(p).status == Status::kSuccess);
  }
}

TEST_CASE("validate: effective_scale", "[validate]") {
  using sigattn::detail::effective_scale;
  FwdParams p = valid_fwd();
  CHECK(effective_scale(p) == 1.0f / std::sqrt(128.0f));
  p.head_dim = 64;
  CHECK(effective_scale(p) == 0.125f);
  p.scale = 0.3f;
  CHECK(effective_scale(p) == 0.3f);
}

// ---------------------------------------------------------------------------------------------
// The public entry points (defined by the dispatcher, include/sigattn/sigattn.cuh, compiled into
// the test support library). On invalid input they must return the validation status without
// touching CUDA, so these run on machines without a GPU.

TEST_CASE("public API: invalid input is rejected before any CUDA call", "[validate][api]") {
  for (FwdCase const& c : invalid_fwd_cases()) {
    DYNAMIC_SECTION("forward: " << c.name) {
      FwdParams p = valid_fwd();
      c.change(p);
      CHECK(sigattn::can_implement(p, 0).status == c.expected);
      Result const r = sigattn::forward(p, nullptr);
      CHECK(r.status == c.expected);
      CHECK(r.cuda == cudaSuccess);
    }
  }
  for (BwdCase const& c : invalid_bwd_cases()) {
    DYNAMIC_SECTION("backward: " << c.name) {
      BwdParams p = valid_bwd();
      c.change(p);
      CHECK(sigattn::can_implement(p, 0).status == c.expected);
      Result const r = sigattn::backward(p, nullptr, nullptr);
      CHECK(r.status == c.expected);
      CHECK(r.cuda == cudaSuccess);
    }
  }
}

// A valid backward in the default mode needs its dQ workspace (can_implement, which has none,
// does not ask for it). Only failing calls here: on a GPU machine a passing one would launch on
// the fake pointers.
TEST_CASE("public API: the backward's workspace is checked before any CUDA call",
          "[validate][api]") {
  BwdParams const p = valid_bwd();
  REQUIRE_FALSE(p.deterministic);
  REQUIRE(sigattn::workspace_bytes(p) > 0);
  Result const missing = sigattn::backward(p, nullptr, nullptr);
  CHECK(missing.status == Status::kErrorInvalidArgument);
  CHECK(missing.cuda == cudaSuccess);
  Result const misaligned = sigattn::backward(p, fake_ptr(0xa00004), nullptr);
  CHECK(misaligned.status == Status::kErrorMisalignedPointer);
  CHECK(misaligned.cuda == cudaSuccess);
}

TEST_CASE("public API: to_string names every status", "[validate][api]") {
  Status const all[] = {
      Status::kSuccess,           Status::kErrorInvalidArgument,   Status::kErrorNotSupported,
      Status::kErrorArchMismatch, Status::kErrorMisalignedPointer, Status::kErrorCuda};
  std::set<std::string> names;
  for (Status s : all) {
    char const* name = sigattn::to_string(s);
    REQUIRE(name != nullptr);
    CHECK(std::string(name).size() > 0);
    names.insert(name);
    char const* described = sigattn::to_string(Result{s, cudaSuccess});
    REQUIRE(described != nullptr);
    CHECK(std::string(described).size() > 0);
  }
  CHECK(names.size() == sizeof(all) / sizeof(all[0]));
  CHECK(sigattn::to_string(static_cast<Status>(99)) != nullptr);
  CHECK(sigattn::to_string(Result{Status::kErrorCuda, cudaErrorInvalidValue}) != nullptr);
}
