"""Student search: the fastest student keeping a quality floor (depth x width x precision)."""
