"""An ONNX model run with ONNX Runtime as teacher (black-box: final outputs only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import sha256_path
from edgedistill.errors import InputError
from edgedistill.models.teachers.base import Teacher


class OnnxTeacher(Teacher):
    name = "onnx"

    def __init__(self, path: Path, tokenizer_dir: Path | None, max_length: int):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir or path.parent)
        except Exception as err:  # ORT and tokenizers raise many types; one line is what the user needs
            raise InputError(f"cannot load ONNX teacher {path}: {str(err).splitlines()[0]}") from None
        self.path, self.max_length = path, max_length
        self.inputs = [i.name for i in self.session.get_inputs()]

    def identity(self) -> dict[str, Any]:
        return {"source": "onnx", "weights": sha256_path(self.path), "max_length": self.max_length}

    def run(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="np")
        feeds = {name: enc[name].astype(np.int64) for name in self.inputs if name in enc}
        missing = set(self.inputs) - set(feeds)
        if missing:
            raise InputError(f"ONNX teacher {self.path} needs inputs {sorted(missing)} the tokenizer does not give")
        out: np.ndarray = self.session.run(None, feeds)[0]
        return out.astype(np.float32)
