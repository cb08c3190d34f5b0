"""sigattn for PyTorch: fused sigmoid attention over padded batches as a custom operator.

    import sigattn_torch
    o = sigattn_torch.sigmoid_attention(q, k, v, q_lens=lens, kv_lens=lens)   # [B, S, H, D]

Importing the package builds the extension the first time (about a minute; see ``_build.py`` for
the environment variables that steer it) and registers ``torch.ops.sigattn.fwd`` and
``torch.ops.sigattn.bwd`` with their fake implementations and autograd.
"""

from . import _ops
from ._build import load_library
from .functional import sigmoid_attention
from .modules import SigmoidAttention
from .reference import reference_sigmoid_attention

__all__ = ["sigmoid_attention", "SigmoidAttention", "reference_sigmoid_attention", "load_library"]
