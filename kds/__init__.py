"""Hema KDS core and hub."""

__version__ = "0.1.0"
