"""hub's pytest plugin (registered by the ``pytest11`` entry point)."""
