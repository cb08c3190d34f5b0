"""``sigmoid_attention``: the functional entry point."""

from __future__ import annotations

import math
from typing import Optional, Union

import torch

from . import _ops

# sigattn::Causal and sigattn::BiasMode (include/sigattn/api.hpp).
_CAUSAL = {False: 0, None: 0, "none": 0, True: 1, "top_left": 1, "bottom_right": 2}
_BIAS_NEG_LOG_KV_LEN, _BIAS_SCALAR, _BIAS_PER_BATCH = 0, 1, 2


def _causal_code(causal) -> int:
    try:
        return _CAUSAL[causal]
    except (KeyError, TypeError):
        raise ValueError(
            f"sigattn: causal must be False, True, 'top_left' or 'bottom_right', got {causal!r}"
        ) from None


def _lengths(lens: Optional[torch.Tensor], q: torch.Tensor) -> Optional[torch.Tensor]:
    """Integer lengths become int32 on q's device (a no-op when they already are); anything else is
    passed on for the operator to reject with the library's message."""
    if lens is None:
        return None
    if not isinstance(lens, torch.Tensor):
        lens = torch.as_tensor(lens, dtype=torch.int32)
    if lens.is_floating_point() or lens.is_complex() or lens.dtype == torch.bool:
        return lens
    return lens.to(device=q.device, dtype=torch.int32).contiguous()


def sigmoid_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    q_lens: Optional[torch.Tensor] = None,
    kv_lens: Optional[torch.Tensor] = None,
    causal: Union[bool, str] = False,
    scale: Optional[float] = None,
    bias: Union[str, float, torch.Tensor] = "neg_log_kv_len",
) -> torch.Tensor:
    """Fused sigmoid attention over a padded batch:
    ``O[b,i,h] = sum_{j < kv_len} sigmoid(scale * <Q[b,i,h], K[b,j,g]> + bias_b) V[b,j,g]``.

    Args:
        q: ``[B, Sq, Hq, D]``, bfloat16 or float16, on a CUDA device. D is 64 or 128.
        k, v: ``[B, Skv, Hkv, D]``, same dtype and device; ``Hq % Hkv == 0`` (grouped-query
            attention: query head h reads key/value head ``h // (Hq // Hkv)``).
            Any batch, token and head strides are used as they are (for example ``x.transpose(1,
            2)`` of a ``[B, H, S, D]`` tensor), as long as they and the data pointer are multiples
            of 16 bytes; the head dim must be contiguous (a tensor whose head-dim stride is not 1
            is copied with ``.contiguous()``, as is a broadcast one with a stride of 0; no other
            layout is copied).
        q_lens, kv_lens: ``[B]`` integer tensors of real lengths (padding is trailing: tokens
            ``[0, len)`` are real), or None for "every sequence is full". Converted to int32 on
            q's device. For self-attention pass the same tensor twice. When every sequence is
            full, pass None rather than a tensor of full lengths: at D=64 a non-causal call
            without q_lens may then run a tile shape that pads S less (the library's
            dispatcher; at D=128 it does so with q_lens too).
        causal: False; True or ``"top_left"`` (key j <= query i); ``"bottom_right"``
            (j <= i + kv_len - q_len, for cross-attention and decoding).
        scale: factor on ``Q K^T``; default ``1 / sqrt(D)``.
        bias: ``"neg_log_kv_len"`` (``-log(kv_len)`` per sequence, the recommended default), a
            float for every sequence, or a ``[B]`` tensor (converted to float32 on q's device).

    Returns:
        O, a new contiguous ``[B, Sq, Hq, D]`` tensor of q's dtype. Rows ``i >= q_len`` are exact
        zeros. Differentiable in q, k and v; works under ``torch.compile(fullgraph=True)``.

    Raises:
        RuntimeError: with the library's status text ("sigattn: configuration not supported
            (...)", "sigattn: pointer or stride not aligned to 16 bytes (...)", "sigattn: invalid
            argument (...)") for input the library or the binding rejects.
    """
    causal_code = _causal_code(causal)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.dim() == 4 else 0.0
    bias_per_batch = None
    if isinstance(bias, str):
        if bias != "neg_log_kv_len":
            raise ValueError(f"sigattn: bias must be 'neg_log_kv_len', a float or a tensor, got {bias!r}")
        bias_mode, bias_value = _BIAS_NEG_LOG_KV_LEN, 0.0
    elif isinstance(bias, torch.Tensor):
        bias_mode, bias_value = _BIAS_PER_BATCH, 0.0
        bias_per_batch = bias.to(device=q.device, dtype=torch.float32)
        if bias_per_batch.dim() == 0 and q.dim() == 4:
            bias_per_batch = bias_per_batch.expand(q.shape[0])
        bias_per_batch = bias_per_batch.contiguous()
    else:
        bias_mode, bias_value = _BIAS_SCALAR, float(bias)
    return _ops.fwd(q, k, v, _lengths(q_lens, q), _lengths(kv_lens, q), causal_code, float(scale),
                    bias_mode, bias_value, bias_per_batch)
