"""Control socket: command dispatch and display renderers (text and JSON)."""
