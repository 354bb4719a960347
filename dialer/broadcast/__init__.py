"""Live updates: in memory in one process, Redis pub/sub across processes."""
