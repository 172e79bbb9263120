"""Distillation tests run single-threaded: tiny models gain nothing from threads on a shared machine."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

torch.set_num_threads(1)
sys.path.insert(0, str(Path(__file__).parent))  # the test HTTP server module
