"""Teacher and student models: loading, the task head, and locating model folders."""
