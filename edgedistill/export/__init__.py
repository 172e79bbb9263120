"""Export a task model to ONNX and verify ONNX Runtime's outputs against torch."""
