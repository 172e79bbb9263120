"""The text-generation Task's quality metrics, for Hugging Face causal LMs (all under ``torch.no_grad``, batched,
padding-safe: a batch gives what each sequence alone gives).

- :func:`perplexity`: token-weighted perplexity on real text.
- :func:`teacher_forcing`: top-1 agreement and KL(teacher ‖ student) on the teacher's answers, from a live teacher
  (full vocabulary) or the cached top-k (with a tail bucket).
- :func:`greedy_agreement`: exact match and ROUGE-L of the student's greedy answers against the teacher's.
- :func:`multiple_choice`: ``acc`` / ``acc_norm`` by log-likelihood, as lm-evaluation-harness defines them.
"""

from __future__ import annotations

from edgedistill.lm.metrics_fidelity import greedy_agreement, greedy_generate, teacher_forcing
from edgedistill.lm.metrics_likelihood import multiple_choice, perplexity

__all__ = ["greedy_agreement", "greedy_generate", "multiple_choice", "perplexity", "teacher_forcing"]
