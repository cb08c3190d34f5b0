"""A plain eager implementation of the same function (SPEC section 1), for tests and comparisons.

Computed in the dtype of its inputs (pass float64 tensors for an exact reference), with the whole
``[B, H, Sq, Skv]`` score matrix materialised, so only for small shapes. Padded rows of q, k and v
are zeroed before use, so NaN in padding never reaches an output, as in the library.
"""

from __future__ import annotations

from typing import Optional, Union

import torch


def _full_lengths(lens: Optional[torch.Tensor], batch: int, full: int, device) -> torch.Tensor:
    if lens is None:
        return torch.full((batch,), full, dtype=torch.int64, device=device)
    return lens.to(device=device, dtype=torch.int64).clamp(0, full)


def reference_sigmoid_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_lens: Optional[torch.Tensor] = None,
    kv_lens: Optional[torch.Tensor] = None,
    causal: Union[bool, str] = False,
    scale: Optional[float] = None,
    bias: Union[str, float, torch.Tensor] = "neg_log_kv_len",
) -> torch.Tensor:
    """Same arguments and result layout ([B, Sq, Hq, D]) as ``sigmoid_attention``; differentiable."""
    batch, sq, hq, d = q.shape
    skv, hkv = k.shape[1], k.shape[2]
    dev = q.device
    ql = _full_lengths(q_lens, batch, sq, dev)
    kl = _full_lengths(kv_lens, batch, skv, dev)
    if scale is None:
        scale = d ** -0.5

    q_real = (torch.arange(sq, device=dev)[None, :] < ql[:, None])  # [B, Sq]
    k_real = (torch.arange(skv, device=dev)[None, :] < kl[:, None])  # [B, Skv]
    qf = q.masked_fill(~q_real[:, :, None, None], 0).transpose(1, 2)  # [B, Hq, Sq, D]
    kf = k.masked_fill(~k_real[:, :, None, None], 0).transpose(1, 2)
    vf = v.masked_fill(~k_real[:, :, None, None], 0).transpose(1, 2)
    if hq != hkv:
        kf = kf.repeat_interleave(hq // hkv, dim=1)
        vf = vf.repeat_interleave(hq // hkv, dim=1)

    if isinstance(bias, str):
        b = -torch.log(kl.clamp(min=1).to(q.dtype))
    elif isinstance(bias, torch.Tensor):
        b = bias.to(device=dev, dtype=q.dtype).expand(batch)
    else:
        b = torch.full((batch,), float(bias), dtype=q.dtype, device=dev)

    s = scale * (qf @ kf.transpose(-1, -2)) + b[:, None, None, None]  # [B, Hq, Sq, Skv]
    i = torch.arange(sq, device=dev)[:, None]
    j = torch.arange(skv, device=dev)[None, :]
    keep = q_real[:, None, :, None] & k_real[:, None, None, :]
    if causal is True or causal == "top_left":
        keep = keep & (j <= i)[None, None]
    elif causal == "bottom_right":
        keep = keep & (j[None] <= i[None] + (kl - ql)[:, None, None])[:, None]
    elif causal not in (False, None, "none"):
        raise ValueError(f"causal={causal!r}")
    p = torch.sigmoid(s).masked_fill(~keep, 0)
    return (p @ vf).transpose(1, 2)
