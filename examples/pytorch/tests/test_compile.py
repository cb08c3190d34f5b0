"""torch.compile(fullgraph=True) traces the operators (fake implementations, autograd) without
graph breaks and gives what eager gives; torch.library.opcheck agrees with the registrations."""

from common import (DEVICE, random_tensor, real_rows, rel_l2, sigattn_torch, torch)


def _problem(seed, dtype=torch.bfloat16, dim=64, poison=True):
    """q [2, 96, 4, D] (contiguous), k (strided) and v [2, 96, 2, D], lengths 96 and 41; NaN in
    the padding unless poison is False (opcheck compares inputs before and after, and NaN never
    equals itself)."""
    gen = torch.Generator(device=DEVICE).manual_seed(seed)
    lens = torch.tensor([96, 41], dtype=torch.int32, device=DEVICE)
    real = real_rows(lens, 2, 96)
    if not poison:
        real = torch.ones_like(real)
    q = random_tensor(2, 96, 4, dim, dtype, "bshd", real, gen, requires_grad=True)
    k = random_tensor(2, 96, 2, dim, dtype, "bhsd", real, gen, requires_grad=True)
    v = random_tensor(2, 96, 2, dim, dtype, "bshd", real, gen, requires_grad=True)
    dout = random_tensor(2, 96, 4, dim, dtype, "bshd", real, gen)
    return q, k, v, lens, real, dout


def _attention_block(q, k, v, lens):
    o = sigattn_torch.sigmoid_attention(q, k, v, lens, lens, causal="top_left")
    return o * 2  # something around the operator for Inductor to fuse


def test_compile_fullgraph_matches_eager():
    torch._dynamo.reset()
    q, k, v, lens, real, dout = _problem(0)
    out_eager = _attention_block(q, k, v, lens)
    out_eager.backward(dout)
    grads_eager = [t.grad.clone() for t in (q, k, v)]
    for t in (q, k, v):
        t.grad = None

    compiled = torch.compile(_attention_block, fullgraph=True)
    out_compiled = compiled(q, k, v, lens)
    out_compiled.backward(dout)
    # Same kernel, same inputs: the forward is bitwise equal. The backward adds dQ with fp32
    # atomics in a run-dependent order, so it is compared with a tolerance.
    assert torch.equal(out_eager, out_compiled)
    for name, ge, t in zip("qkv", grads_eager, (q, k, v)):  # q and kv lengths are equal here
        assert rel_l2(t.grad, ge, real) < 1e-3, name
        assert (t.grad[~real] == 0).all(), f"d{name}: padded rows not zero under torch.compile"


def test_compile_fullgraph_module_matches_eager():
    """A small model built on SigmoidAttention (fp32 parameters; the attention runs in bf16)."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    attn = sigattn_torch.SigmoidAttention(embed_dim=256, num_heads=4, num_kv_heads=2,
                                          causal=True).to(DEVICE)
    x = torch.randn(3, 80, 256, device=DEVICE)
    lens = torch.tensor([80, 33, 64], dtype=torch.int32, device=DEVICE)

    def loss_of(fn):
        attn.zero_grad(set_to_none=True)
        y = fn(x, lens)
        loss = y.float().square().mean()
        loss.backward()
        return y.detach(), {n: p.grad.clone() for n, p in attn.named_parameters()}

    y_eager, g_eager = loss_of(attn)
    y_compiled, g_compiled = loss_of(torch.compile(attn, fullgraph=True))
    # Inductor may fuse the fp32 projections differently, so q, k, v can differ by one bf16
    # rounding before the attention: a loose tolerance.
    err = ((y_compiled - y_eager).norm() / y_eager.norm()).item()
    assert err < 1e-2, err
    for name in g_eager:
        err = ((g_compiled[name] - g_eager[name]).norm() / g_eager[name].norm()).item()
        assert err < 2e-2, (name, err)


def test_opcheck_fwd():
    q, k, v, lens, _, _ = _problem(1, poison=False)
    args = (q, k, v, lens, lens, 1, 0.125, 0, 0.0, None)
    torch.library.opcheck(torch.ops.sigattn.fwd.default, args)
    bias = torch.tensor([-1.0, -3.0], device=DEVICE)
    args = (q, k, v, None, lens, 2, 0.125, 2, 0.0, bias)
    torch.library.opcheck(torch.ops.sigattn.fwd.default, args)


def test_opcheck_bwd():
    q, k, v, lens, _, dout = _problem(2, dtype=torch.float16, dim=128, poison=False)
    q, k, v = (t.detach() for t in (q, k, v))
    # Deterministic mode: opcheck compares runs with fp16 tolerances, and the atomic mode's dQ
    # may differ between runs by one rounding.
    args = (dout, q, k, v, lens, lens, 0, 0.0, 1, -2.0, None, True)
    torch.library.opcheck(torch.ops.sigattn.bwd.default, args)
