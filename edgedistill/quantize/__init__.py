"""Quantize exported ONNX models (ONNX Runtime dynamic INT8)."""
