"""Shared by the test modules: the skip rules, input builders and the error measure.

Importing this module skips the importing test module when PyTorch is missing or there is no
usable CUDA device (the extension's kernels need compute capability 8.0 or newer).
"""

import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device: these tests run sigattn's kernels", allow_module_level=True)
if torch.cuda.get_device_capability() < (8, 0):
    pytest.skip("sigattn needs compute capability 8.0 or newer", allow_module_level=True)

import sigattn_torch  # noqa: E402  (builds the extension on first use)
from sigattn_torch import reference_sigmoid_attention  # noqa: E402

DEVICE = "cuda"

# SPEC section 2: relative L2 error over the real rows against an fp64 reference computed from
# the same rounded inputs.
REL_L2_BAR = {torch.bfloat16: 3e-3, torch.float16: 1e-3}


def lengths_tensor(lens, batch, full):
    """int32 CUDA lengths, or None."""
    if lens is None:
        return None
    assert len(lens) == batch and all(0 <= x <= full for x in lens)
    return torch.tensor(lens, dtype=torch.int32, device=DEVICE)


def real_rows(lens, batch, seq):
    """[B, S] bool: True at real tokens."""
    if lens is None:
        return torch.ones(batch, seq, dtype=torch.bool, device=DEVICE)
    return torch.arange(seq, device=DEVICE)[None, :] < lens.to(torch.int64)[:, None]


def random_tensor(batch, seq, heads, dim, dtype, layout, real, gen, requires_grad=False):
    """N(0, 1) values in the logical [B, S, H, D] shape, stored as `layout` ("bshd", or "bhsd":
    a contiguous [B, H, S, D] tensor seen through .transpose(1, 2)), with NaN in every padded
    token (`real` [B, S] False), as the library's own tests poison padding."""
    if layout == "bshd":
        t = torch.randn(batch, seq, heads, dim, device=DEVICE, generator=gen).to(dtype)
    elif layout == "bhsd":
        t = torch.randn(batch, heads, seq, dim, device=DEVICE, generator=gen).to(dtype)
        t = t.transpose(1, 2)
    else:
        raise ValueError(layout)
    t.masked_fill_(~real[:, :, None, None], float("nan"))
    return t.detach().requires_grad_(requires_grad)


def rel_l2(x, ref, real):
    """||x - ref|| / ||ref|| over the real rows (`real` [B, S]) of [B, S, H, D] tensors, in fp64."""
    x = x.detach().double()[real]
    ref = ref.detach().double()[real]
    denom = ref.norm().item()
    return (x - ref).norm().item() / (denom if denom > 0 else 1.0)


def assert_padded_rows_zero(x, real, name):
    """Every element of the padded rows of x is exactly 0 (not NaN, not garbage)."""
    pad = x.detach()[~real]
    if pad.numel():
        bad = (pad != 0).sum().item()  # NaN != 0 counts too
        assert bad == 0, f"{name}: {bad} non-zero elements in padded rows"
