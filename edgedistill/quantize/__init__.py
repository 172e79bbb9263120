"""Quantize exported ONNX models: dynamic and static INT8 (ONNX Runtime), INT8 QDQ for TensorRT, FP16, and
quantization-aware distillation (``qad-int8``: the float student fake-quantized, distilled from the teacher,
written as QDQ with the learned ranges).

Entry point: :func:`edgedistill.quantize.stage.run`. Static INT8 calibrates once (ranges cached), can
rank node groups by sensitivity and keep the most sensitive in float until an accuracy budget holds.
"""
