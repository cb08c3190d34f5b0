"""Bad input raises a Python exception that carries the library's status text
(include/sigattn/sigattn.cuh, to_string(Status))."""

import pytest

from common import DEVICE, sigattn_torch, torch

NOT_SUPPORTED = "sigattn: configuration not supported"
MISALIGNED = "sigattn: pointer or stride not aligned to 16 bytes"
INVALID = "sigattn: invalid argument"


def qkv(batch=1, seq=32, heads=2, kv_heads=None, dim=64, dtype=torch.bfloat16, device=DEVICE):
    kv_heads = heads if kv_heads is None else kv_heads
    q = torch.randn(batch, seq, heads, dim, device=device).to(dtype)
    k = torch.randn(batch, seq, kv_heads, dim, device=device).to(dtype)
    v = torch.randn(batch, seq, kv_heads, dim, device=device).to(dtype)
    return q, k, v


def raises_with(text, *args, **kwargs):
    with pytest.raises(RuntimeError) as info:
        sigattn_torch.sigmoid_attention(*args, **kwargs)
    assert text in str(info.value), str(info.value)
    return str(info.value)


def test_head_dim_96_not_supported():
    raises_with(NOT_SUPPORTED, *qkv(dim=96))


def test_float32_not_supported():
    raises_with(NOT_SUPPORTED, *qkv(dtype=torch.float32))


def test_odd_strides_are_misaligned():
    # A [B, S, H, 68] buffer seen as D = 64: token and head strides of 68 elements (136 bytes).
    q, k, v = (torch.randn(1, 32, 2, 68, device=DEVICE).to(torch.bfloat16)[..., :64]
               for _ in range(3))
    raises_with(MISALIGNED, q, k, v)


def test_misaligned_base_pointer():
    q, k, v = qkv()
    flat = torch.empty(q.numel() + 1, device=DEVICE, dtype=q.dtype)
    shifted = flat[1:].view(q.shape)  # 2 bytes past a 16-byte boundary
    shifted.copy_(q)
    raises_with(MISALIGNED, shifted, k, v)


def test_heads_not_a_multiple():
    raises_with(INVALID, *qkv(heads=3, kv_heads=2))


def test_mismatched_shapes():
    q, k, v = qkv()
    raises_with(INVALID, q, k, v[:, :16])  # k and v lengths differ
    q2, k2, v2 = qkv(batch=2)
    raises_with(INVALID, q, k2, v2)  # batch differs
    raises_with(INVALID, q[0], k[0], v[0])  # 3-D


def test_mismatched_dtypes():
    q, k, v = qkv()
    raises_with(INVALID, q, k.half(), v)


def test_wrong_device():
    q, k, v = qkv()
    text = raises_with(INVALID, q.cpu(), k.cpu(), v.cpu())
    assert "CUDA" in text
    raises_with(INVALID, q, k.cpu(), v)


def test_bad_lengths():
    q, k, v = qkv(batch=2)
    raises_with(INVALID, q, k, v, q_lens=torch.tensor([32, 1, 4], device=DEVICE))  # 3 != B
    raises_with(INVALID, q, k, v, q_lens=torch.tensor([32.0, 1.0], device=DEVICE))  # float


def test_bad_python_arguments():
    q, k, v = qkv()
    with pytest.raises(ValueError):
        sigattn_torch.sigmoid_attention(q, k, v, causal="diagonal")
    with pytest.raises(ValueError):
        sigattn_torch.sigmoid_attention(q, k, v, bias="neg_log_len")


def test_non_finite_scale_is_invalid():
    raises_with(INVALID, *qkv(), scale=float("nan"))


def test_head_dim_stride_not_one_is_copied():
    """The one layout the binding fixes by itself: a head dim that is not contiguous."""
    q, k, v = qkv()
    o = sigattn_torch.sigmoid_attention(q, k, v)
    qs = q.transpose(2, 3).contiguous().transpose(2, 3)  # same values, head-dim stride 2
    assert qs.stride(3) != 1
    assert torch.equal(sigattn_torch.sigmoid_attention(qs, k, v), o)
