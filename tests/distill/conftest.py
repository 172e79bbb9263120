"""Distillation tests run single-threaded: tiny models gain nothing from threads on a shared machine."""

from __future__ import annotations

import torch

torch.set_num_threads(1)
