"""widget-server: a self-hosted help widget backend."""

__version__ = "0.1.0"
