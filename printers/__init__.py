"""Thermal printing: ESC/POS layouts, transports, spooler and emulator (see the printing issue)."""
