"""numpy reference of multi-head attention in the plugin's layout, in float64."""

from __future__ import annotations

import numpy as np


def visible_keys(batch: int, seq_q: int, seq_kv: int, mask=None, lengths=None, causal: bool | str = False
                 ) -> np.ndarray:
    """Boolean (B, S_q, S_kv): which key each query may attend (causal "bottom-right": query i at S_kv - S_q + i)."""
    keep = np.ones((batch, seq_q, seq_kv), dtype=bool)
    if mask is not None:
        keep &= (np.asarray(mask) != 0)[:, None, :]
    if lengths is not None:
        keep &= np.arange(seq_kv)[None, None, :] < np.asarray(lengths)[:, None, None]
    if causal:
        past = seq_kv - seq_q if causal == "bottom-right" else 0
        keep &= np.tril(np.ones((seq_q, seq_kv), dtype=bool), k=past)[None]
    return keep


def attention(q, k, v, num_heads: int, mask=None, lengths=None, causal=False, scale=None, num_kv_heads=None
              ) -> np.ndarray:
    """softmax(q k^T * scale + mask) v per head; rows with no visible key are zero (as the kernel). Grouped-query:
    each key/value head repeated for its num_heads // num_kv_heads query heads."""
    batch, seq_q, hidden = q.shape
    seq_kv, head_size = k.shape[1], hidden // num_heads
    group = num_heads // (num_kv_heads or num_heads)

    def heads(x: np.ndarray, repeat: int = 1) -> np.ndarray:  # (B, S, H*D) -> (B, H * repeat, S, D)
        x = np.asarray(x, dtype=np.float64)
        return np.repeat(x.reshape(batch, x.shape[1], -1, head_size).transpose(0, 2, 1, 3), repeat, axis=1)

    scale = 1.0 / np.sqrt(head_size) if scale is None else scale
    scores = heads(q) @ heads(k, group).transpose(0, 1, 3, 2) * scale  # (B, H, S_q, S_kv)
    keep = visible_keys(batch, seq_q, seq_kv, mask, lengths, causal)[:, None]
    scores = np.where(keep, scores, -np.inf)
    row_max = np.max(scores, axis=-1, keepdims=True)
    row_max = np.where(np.isfinite(row_max), row_max, 0.0)
    p = np.where(keep, np.exp(scores - row_max), 0.0)
    denom = p.sum(-1, keepdims=True)
    p = np.divide(p, denom, out=np.zeros_like(p), where=denom > 0)
    out = p @ heads(v, group)  # (B, H, S_q, D)
    return out.transpose(0, 2, 1, 3).reshape(batch, seq_q, hidden)
