"""insloc's version (setup.py states the same)."""

__version__ = "0.1.0"
