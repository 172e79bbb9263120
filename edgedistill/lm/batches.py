"""Training sequences made into one right-padded batch, with a mask per kind of target.

Logits at position t predict token t + 1, so a sequence whose response starts at ``s`` is scored at positions
``s − 1 … T − 2``. ``mask``: those positions (full-logit losses, the live teacher sees the same tokens);
``target_mask``: the same where the tokens are the teacher's (SeqKD; zero for the student's own on-policy
samples); ``sparse_mask``: where a teacher top-k is present and aligned (sparse KL).
"""

from __future__ import annotations

import numpy as np
import torch

from edgedistill.lm.records import SequenceTargets

Batch = dict[str, torch.Tensor]


def collate(seqs: list[SequenceTargets], pad_id: int, k: int, own: bool = False) -> Batch:
    """One batch of ``seqs`` (``own``: the sequences are the student's own samples, not the teacher's)."""
    width = max(len(s.input_ids) for s in seqs)
    b = len(seqs)
    ids = np.full((b, width), pad_id, dtype=np.int64)
    attention = np.zeros((b, width), dtype=np.int64)
    mask = np.zeros((b, width), dtype=np.float32)
    labels = np.full((b, width), -100, dtype=np.int64)
    top_ids = np.full((b, width, max(k, 1)), -1, dtype=np.int64)
    top_lp = np.full((b, width, max(k, 1)), -np.inf, dtype=np.float32)
    sparse = np.zeros((b, width), dtype=np.float32)
    for row, seq in enumerate(seqs):
        n, start = len(seq.input_ids), seq.response_start
        ids[row, :n], attention[row, :n] = seq.input_ids, 1
        positions = slice(start - 1, n - 1)
        mask[row, positions] = 1.0
        labels[row, positions] = seq.input_ids[start:]
        if seq.top_ids is not None and seq.top_logprobs is not None and k:
            kk = min(k, seq.top_ids.shape[1])
            top_ids[row, positions, :kk] = seq.top_ids[:, :kk]
            top_lp[row, positions, :kk] = seq.top_logprobs[:, :kk]
            aligned = seq.aligned if seq.aligned is not None else np.ones(n - start, dtype=bool)
            sparse[row, positions] = aligned.astype(np.float32)
    tensors = {"input_ids": ids, "attention_mask": attention, "mask": mask, "labels": labels,
               "target_mask": np.zeros_like(mask) if own else mask, "top_ids": top_ids, "top_logprobs": top_lp,
               "sparse_mask": sparse}
    return {name: torch.from_numpy(value) for name, value in tensors.items()}
