"""Data readers: scored sentence pairs (STS Benchmark) for evaluation, and text corpora for distillation."""
