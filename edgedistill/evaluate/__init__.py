"""Quality measured identically for every artifact, with its Task's metrics: fidelity to the teacher (embedding
cosine; classifier agreement and KL) and the task metric on scored sets (STS Spearman, accuracy).

Every model runs through a :class:`edgedistill.engines.Session`, so torch, ONNX and quantized models are
measured by the same code on the same samples.
"""

from edgedistill.evaluate.metrics import encode, fidelity_cosine, sts_spearman
from edgedistill.evaluate.run import evaluate_artifact, teacher_reference

__all__ = ["encode", "evaluate_artifact", "fidelity_cosine", "sts_spearman", "teacher_reference"]
