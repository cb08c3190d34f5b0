"""Forward and gradients of sigattn_torch.sigmoid_attention against a float64 eager reference.

Cases: padded (ragged lengths, not tile multiples), causal in both alignments, GQA and MQA, a
strided [B, H, S, D] layout, the three bias modes; bf16 and fp16; D = 64 and 128. Every padded
row of q, k, v and dO holds NaN; padded rows of O, dQ, dK and dV must come back as exact zeros.
Every real row with a key has more than 16 of them except near the causal diagonal (the
backward's one-key rows are inherently above the bar; SPEC section 2 and tests/gpu).
"""

import pytest

from common import (DEVICE, REL_L2_BAR, assert_padded_rows_zero, lengths_tensor, random_tensor, real_rows,
                    reference_sigmoid_attention, rel_l2, sigattn_torch, torch)

# name -> problem. Lengths None = every sequence full.
CASES = {
    "padded": dict(batch=3, sq=200, skv=200, hq=4, hkv=4, q_lens=[200, 137, 40],
                   kv_lens=[200, 137, 40]),
    "full": dict(batch=2, sq=96, skv=96, hq=2, hkv=2),
    "causal_top_left": dict(batch=2, sq=160, skv=160, hq=2, hkv=2, q_lens=[160, 97],
                            kv_lens=[160, 97], causal="top_left"),
    "causal_true": dict(batch=2, sq=130, skv=130, hq=2, hkv=2, q_lens=[130, 65], kv_lens=[130, 65],
                        causal=True),
    "causal_bottom_right": dict(batch=2, sq=70, skv=200, hq=2, hkv=2, q_lens=[70, 50],
                                kv_lens=[200, 120], causal="bottom_right"),
    "gqa": dict(batch=2, sq=150, skv=150, hq=4, hkv=2, q_lens=[150, 91], kv_lens=[150, 91]),
    "mqa_causal": dict(batch=2, sq=120, skv=120, hq=3, hkv=1, q_lens=[120, 70], kv_lens=[120, 70],
                       causal=True),
    "strided_bhsd": dict(batch=2, sq=128, skv=128, hq=2, hkv=2, q_lens=[128, 77], kv_lens=[128, 77],
                         layout="bhsd"),
    "cross_lengths": dict(batch=2, sq=130, skv=257, hq=2, hkv=2, q_lens=[100, 130],
                          kv_lens=[257, 31]),
    "scalar_bias": dict(batch=2, sq=100, skv=100, hq=2, hkv=2, q_lens=[100, 60], kv_lens=[100, 60],
                        bias=-2.5),
    "per_batch_bias": dict(batch=2, sq=100, skv=100, hq=2, hkv=2, q_lens=[100, 60],
                           kv_lens=[100, 60], bias=[-1.0, -4.0]),
}


def run_case(case, dtype, dim, seed=0):
    """Runs forward and backward through sigattn_torch and the fp64 reference; returns the errors
    and checks the padded rows."""
    c = {"layout": "bshd", "causal": False, "bias": "neg_log_kv_len", "q_lens": None,
         "kv_lens": None, **case}
    b, sq, skv, hq, hkv = c["batch"], c["sq"], c["skv"], c["hq"], c["hkv"]
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    q_lens = lengths_tensor(c["q_lens"], b, sq)
    kv_lens = lengths_tensor(c["kv_lens"], b, skv)
    q_real = real_rows(q_lens, b, sq)
    kv_real = real_rows(kv_lens, b, skv)
    bias = c["bias"]
    if isinstance(bias, list):
        bias = torch.tensor(bias, dtype=torch.float32, device=DEVICE)

    q = random_tensor(b, sq, hq, dim, dtype, c["layout"], q_real, gen, requires_grad=True)
    k = random_tensor(b, skv, hkv, dim, dtype, c["layout"], kv_real, gen, requires_grad=True)
    v = random_tensor(b, skv, hkv, dim, dtype, c["layout"], kv_real, gen, requires_grad=True)
    dout = random_tensor(b, sq, hq, dim, dtype, "bshd", q_real, gen)

    o = sigattn_torch.sigmoid_attention(q, k, v, q_lens, kv_lens, causal=c["causal"], bias=bias)
    o.backward(dout)

    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = reference_sigmoid_attention(q64, k64, v64, q_lens, kv_lens, causal=c["causal"], bias=bias)
    ref.backward(dout.double().masked_fill(~q_real[:, :, None, None], 0))

    assert o.dtype == dtype and o.shape == (b, sq, hq, dim)
    for name, x, real in (("O", o, q_real), ("dQ", q.grad, q_real), ("dK", k.grad, kv_real),
                          ("dV", v.grad, kv_real)):
        assert_padded_rows_zero(x, real, name)
    return {"O": rel_l2(o, ref, q_real), "dQ": rel_l2(q.grad, q64.grad, q_real),
            "dK": rel_l2(k.grad, k64.grad, kv_real), "dV": rel_l2(v.grad, v64.grad, kv_real)}


@pytest.mark.parametrize("dim", [64, 128])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("case", list(CASES))
def test_matches_fp64_reference(case, dtype, dim):
    errors = run_case(CASES[case], dtype, dim)
    bar = REL_L2_BAR[dtype]
    worst = max(errors, key=errors.get)
    assert errors[worst] <= bar, f"{worst}: rel. L2 {errors[worst]:.2e} > {bar:.0e}; all: {errors}"


def test_long_ragged_bf16_d128():
    """One larger case: two sequences of 2048 and 1500 tokens, 4 heads, D = 128, bf16."""
    case = dict(batch=2, sq=2048, skv=2048, hq=4, hkv=4, q_lens=[2048, 1500], kv_lens=[2048, 1500])
    errors = run_case(case, torch.bfloat16, 128, seed=1)
    assert max(errors.values()) <= REL_L2_BAR[torch.bfloat16], errors


def test_lengths_as_int64_on_cpu_are_accepted():
    """Lengths of any integer type and device are converted (int32, q's device)."""
    gen = torch.Generator(device=DEVICE).manual_seed(2)
    real = torch.ones(2, 64, dtype=torch.bool, device=DEVICE)
    q, k, v = (random_tensor(2, 64, 2, 64, torch.bfloat16, "bshd", real, gen) for _ in range(3))
    a = sigattn_torch.sigmoid_attention(q, k, v, torch.tensor([64, 20]), torch.tensor([64, 20]))
    lens = torch.tensor([64, 20], dtype=torch.int32, device=DEVICE)
    b = sigattn_torch.sigmoid_attention(q, k, v, lens, lens)
    assert torch.equal(a, b)


def test_deterministic_mode_is_bitwise_reproducible():
    """torch.use_deterministic_algorithms(True) selects the library's deterministic backward."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        grads = []
        for _ in range(2):
            gen = torch.Generator(device=DEVICE).manual_seed(3)
            real = real_rows(None, 2, 150)
            q = random_tensor(2, 150, 4, 128, torch.bfloat16, "bshd", real, gen, True)
            k = random_tensor(2, 150, 2, 128, torch.bfloat16, "bshd", real, gen, True)
            v = random_tensor(2, 150, 2, 128, torch.bfloat16, "bshd", real, gen, True)
            sigattn_torch.sigmoid_attention(q, k, v).float().square().sum().backward()
            grads.append([t.grad for t in (q, k, v)])
        for a, b in zip(*grads):
            assert torch.equal(a, b)
    finally:
        torch.use_deterministic_algorithms(previous)


def test_broadcast_kv_matches_reference():
    """k and v expanded over the batch (stride 0) give what their materialised copies give."""
    gen = torch.Generator(device=DEVICE).manual_seed(4)
    lens = torch.tensor([100, 64, 37], dtype=torch.int32, device=DEVICE)
    real = real_rows(lens, 3, 100)
    q = random_tensor(3, 100, 4, 64, torch.bfloat16, "bshd", real, gen)
    full = torch.ones(1, 100, dtype=torch.bool, device=DEVICE)
    k = random_tensor(1, 100, 2, 64, torch.bfloat16, "bshd", full, gen).expand(3, -1, -1, -1)
    v = random_tensor(1, 100, 2, 64, torch.bfloat16, "bshd", full, gen).expand(3, -1, -1, -1)
    assert k.stride(0) == 0
    o = sigattn_torch.sigmoid_attention(q, k, v, lens, lens)
    assert torch.equal(o, sigattn_torch.sigmoid_attention(q, k.contiguous(), v.contiguous(), lens,
                                                          lens))
    ref = reference_sigmoid_attention(q.double(), k.double(), v.double(), lens, lens)
    assert rel_l2(o, ref, real) <= REL_L2_BAR[torch.bfloat16]
