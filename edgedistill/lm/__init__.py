"""Generative language models: teachers that write answers (white-box, HTTP, recorded), prompts (files or the
teacher's own, Magpie), token alignment, sparse teacher caches, the losses, the student and the metrics of the
``text-generation`` Task."""
