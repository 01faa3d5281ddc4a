"""A high-contrast theme for a bright kitchen: black ground, white text, saturated amber, red and green."""

from __future__ import annotations

from textual.theme import Theme

KITCHEN_THEME = Theme(
    name="kitchen",
    primary="#2979ff",
    secondary="#455a64",
    accent="#ffd600",
    warning="#ffab00",
    error="#ff1744",
    success="#00c853",
    foreground="#ffffff",
    background="#000000",
    surface="#111111",
    panel="#1c1c1c",
    dark=True,
    text_alpha=1.0,
)
