"""kb-assistant: a local, private knowledge-base assistant with cited answers."""

__version__ = "0.1.0"
