"""Textual terminals: kitchen station screen and counter screen (see the terminal issues)."""
