"""Per-device daemon: one process per network namespace, configured with VRP text."""
