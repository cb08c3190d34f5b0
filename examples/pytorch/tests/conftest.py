# Makes `import sigattn_torch` work when pytest runs from the repository root
# (python3 -m pytest examples/pytorch/tests). Imports nothing else: without PyTorch or a GPU the
# test modules skip themselves.
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
