"""Loads ``torch.ops.sigattn.{fwd,bwd}`` and registers their fake implementations and autograd.

The operators are defined and implemented in C++ (``csrc/sigattn_ops.cpp``); their
``TORCH_LIBRARY`` block names this module (``m.set_python_module``) as the one that registers:

- a fake (meta) implementation of each, so that ``torch.compile(fullgraph=True)``, FakeTensor
  tracing and ``torch.export`` see the output shapes without running a kernel. The outputs are new
  contiguous ``[B, S, H, D]`` tensors, exactly as the CUDA implementation allocates them;
- autograd for ``sigattn::fwd``: the backward calls ``sigattn::bwd``, which recomputes the
  probabilities from q and k (sigmoid attention needs neither O nor a log-sum-exp), so only the
  inputs are saved. Lengths and the bias get no gradient.
"""

from __future__ import annotations

import torch

from . import _build

_build.load_library()

fwd = torch.ops.sigattn.fwd.default
bwd = torch.ops.sigattn.bwd.default


@torch.library.register_fake("sigattn::fwd")
def _fwd_fake(q, k, v, q_lens, kv_lens, causal, scale, bias_mode, bias, bias_per_batch):
    torch._check(q.dim() == 4, lambda: f"sigattn: invalid argument (q must be 4-D, got {q.dim()}-D)")
    return q.new_empty(q.shape)


@torch.library.register_fake("sigattn::bwd")
def _bwd_fake(dout, q, k, v, q_lens, kv_lens, causal, scale, bias_mode, bias, bias_per_batch,
              deterministic=False):
    torch._check(q.dim() == 4 and k.dim() == 4 and v.dim() == 4,
                 lambda: "sigattn: invalid argument (q, k and v must be 4-D)")
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


def _readable(t: torch.Tensor) -> bool:
    """Can the library read ``t`` without a copy: unit head-dim stride, 16-byte aligned strides
    and offset (the base allocation itself is aligned by the caching allocator)?"""
    if t.dim() != 4 or t.stride(3) != 1:
        return False
    if t.storage_offset() % 8 != 0:
        return False
    return all(t.size(d) == 1 or t.stride(d) % 8 == 0 for d in range(3))


def _setup_context(ctx, inputs, output):
    q, k, v, q_lens, kv_lens, causal, scale, bias_mode, bias, bias_per_batch = inputs
    ctx.save_for_backward(q, k, v, q_lens, kv_lens, bias_per_batch)
    ctx.causal = causal
    ctx.scale = scale
    ctx.bias_mode = bias_mode
    ctx.bias = bias


def _backward(ctx, grad_out):
    q, k, v, q_lens, kv_lens, bias_per_batch = ctx.saved_tensors
    # dO comes from whatever consumed O; a layout the library cannot read (an odd stride, for
    # example after slicing) is copied here rather than reported as an error to the user.
    if not _readable(grad_out):
        grad_out = grad_out.contiguous()
    dq, dk, dv = bwd(grad_out, q, k, v, q_lens, kv_lens, ctx.causal, ctx.scale, ctx.bias_mode,
                     ctx.bias, bias_per_batch, torch.are_deterministic_algorithms_enabled())
    return dq, dk, dv, None, None, None, None, None, None, None


torch.library.register_autograd("sigattn::fwd", _backward, setup_context=_setup_context)
