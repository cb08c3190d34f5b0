"""``python3 -m sigattn_torch``: build (if needed) and load the extension, then say what was loaded."""

import sys

import torch

from . import _build  # importing the package has built and loaded the operators

print(f"sigattn_torch: {_build.load_library()} loaded "
      f"(torch {torch.__version__}, archs {','.join(_build.cuda_archs())}); operators "
      f"{torch.ops.sigattn.fwd.default._schema.name}, {torch.ops.sigattn.bwd.default._schema.name}")
sys.exit(0)
