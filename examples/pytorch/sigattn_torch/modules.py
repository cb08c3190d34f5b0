"""``SigmoidAttention``: a self-attention block to use where a model used softmax attention."""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import nn

from .functional import sigmoid_attention


class SigmoidAttention(nn.Module):
    """Multi-head self-attention with sigmoid in place of softmax, over padded batches.

    ``x [B, S, embed_dim] -> qkv projection -> heads -> sigmoid_attention -> output projection``.
    Q, K and V are views into the one qkv projection's output (no copies). The attention runs in
    bfloat16 or float16; when the input is of another type (float32 without autocast), q, k and v
    are cast to ``compute_dtype`` for the attention and its output is cast back.

    Args:
        embed_dim: model width.
        num_heads: query heads; ``head_dim = embed_dim // num_heads`` unless given (64 or 128).
        num_kv_heads: key/value heads (grouped-query attention); default ``num_heads``.
        head_dim: per-head width; default ``embed_dim // num_heads``.
        causal: as in :func:`sigmoid_attention` (False, True, "top_left", "bottom_right").
        attn_bias: the bias inside the sigmoid: ``"neg_log_kv_len"`` (default) or a float.
        scale: factor on ``Q K^T``; default ``1 / sqrt(head_dim)``.
        bias: whether the projections have a bias.
        compute_dtype: the attention's dtype for inputs that are neither bfloat16 nor float16.

    ``forward(x, lengths=None)``: ``lengths`` is an integer ``[B]`` tensor of real lengths (trailing
    padding), used for both queries and keys; from a ``key_padding_mask`` (True at padding, as
    ``nn.MultiheadAttention`` takes it) with trailing padding, ``lengths = (~mask).sum(1)``. Rows
    of the attention output at padded positions are zero (the output projection then adds its
    bias).
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        num_kv_heads: Optional[int] = None,
        head_dim: Optional[int] = None,
        causal: Union[bool, str] = False,
        attn_bias: Union[str, float] = "neg_log_kv_len",
        scale: Optional[float] = None,
        bias: bool = True,
        compute_dtype: torch.dtype = torch.bfloat16,
        device=None,
        dtype=None,
    ):
        super().__init__()
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        head_dim = embed_dim // num_heads if head_dim is None else head_dim
        if num_heads % num_kv_heads != 0:
            raise ValueError(f"num_heads ({num_heads}) must be a multiple of num_kv_heads ({num_kv_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        self.causal = causal
        self.attn_bias = attn_bias
        self.scale = scale
        self.compute_dtype = compute_dtype
        factory = {"device": device, "dtype": dtype}
        self.qkv = nn.Linear(embed_dim, (num_heads + 2 * num_kv_heads) * head_dim, bias=bias, **factory)
        self.out = nn.Linear(num_heads * head_dim, embed_dim, bias=bias, **factory)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, seq, _ = x.shape
        h, hkv, d = self.num_heads, self.num_kv_heads, self.head_dim
        qkv = self.qkv(x)
        q, k, v = qkv.split([h * d, hkv * d, hkv * d], dim=-1)
        q = q.view(batch, seq, h, d)
        k = k.view(batch, seq, hkv, d)
        v = v.view(batch, seq, hkv, d)
        in_dtype = q.dtype
        if in_dtype not in (torch.bfloat16, torch.float16):
            q, k, v = (t.to(self.compute_dtype) for t in (q, k, v))
        o = sigmoid_attention(q, k, v, q_lens=lengths, kv_lens=lengths, causal=self.causal,
                              scale=self.scale, bias=self.attn_bias)
        o = o.reshape(batch, seq, h * d).to(in_dtype)
        return self.out(o)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"num_kv_heads={self.num_kv_heads}, head_dim={self.head_dim}, causal={self.causal}, "
                f"attn_bias={self.attn_bias!r}")
