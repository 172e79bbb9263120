"""Backend sessions behind one protocol, so evaluation and benchmarks treat every artifact alike.

``open_session(artifact)`` returns a :class:`Session` whose ``run(feeds)`` maps numpy inputs to numpy
outputs: torch for Hugging Face folders, ONNX Runtime for ``.onnx`` files, TensorRT for engine files.
"""

from edgedistill.engines.base import BACKEND_FOR_KIND, ENGINE_BACKENDS, Session, open_session
from edgedistill.engines.options import SessionOptions
from edgedistill.engines.size import model_file_mb
from edgedistill.engines.tokenizer import load_preprocessor

__all__ = ["BACKEND_FOR_KIND", "ENGINE_BACKENDS", "Session", "SessionOptions", "load_preprocessor", "model_file_mb",
           "open_session"]
