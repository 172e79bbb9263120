"""Quality metrics used identically for every artifact: fidelity to the teacher and STS Spearman.

Every model runs through a :class:`edgedistill.engines.Session`, so torch, ONNX and quantized models are
measured by the same code on the same texts.
"""

from edgedistill.evaluate.metrics import encode, fidelity_cosine, sts_spearman
from edgedistill.evaluate.run import evaluate_artifact, load_tokenizer, teacher_reference

__all__ = ["encode", "evaluate_artifact", "fidelity_cosine", "load_tokenizer", "sts_spearman", "teacher_reference"]
