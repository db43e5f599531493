"""dalle: the DALL·E family of text-to-image systems, end to end."""

__version__ = "0.1.0"
