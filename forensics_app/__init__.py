"""Forensic attribution of AI-generated images to the generator that made them."""

__version__ = "0.1.0"
