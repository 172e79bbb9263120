"""Distillation: students derived from the teacher, named losses, and the training loop."""
