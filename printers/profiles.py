"""What a printer can do: its capability profile, from the store config and python-escpos's printer database.

Layouts ask the profile (columns, dots, Chinese font, native QR codes, cutter), never the printer model. The
escpos capability profile (`profile = "TM-T20II"` in the config; `default` when not set) gives the features and
code pages; the config gives what the store knows of its own printer: paper width, columns, a GB18030 font.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from escpos.capabilities import CAPABILITIES, Profile

from kds.config import Printer, StoreConfig

DOTS_PER_COLUMN = 12
"""Font A is 12 × 24 dots: 32 columns fill 384 dots (58 mm paper), 48 columns 576 dots (80 mm)."""
LINE_DOTS = 24
DPI = 203


class UnknownProfile(ValueError):
    """The config names an escpos capability profile that python-escpos does not know."""


@dataclass(frozen=True, slots=True)
class PrinterProfile:
    """Everything a layout needs to know about the printer it renders for."""

    name: str
    """The escpos capability profile."""
    columns: int
    gb18030: bool
    """The printer has a GB18030 font: Chinese prints as text (Kanji mode), not as images."""
    qr_native: bool
    """The printer draws QR codes itself (GS ( k); otherwise they are sent as raster images."""
    cut: str | None
    """'PART', 'FULL' or None (no cutter)."""
    status_query: bool = True
    features: dict[str, bool] = field(default_factory=dict, compare=False)

    @property
    def dots(self) -> int:
        """Printable width in dots."""
        return self.columns * DOTS_PER_COLUMN

    def escpos_profile(self) -> Profile:
        """The python-escpos profile for a `Dummy` printer, with this printer's width and columns."""
        return _escpos_profile(self.name, self.columns)


def known_profiles() -> list[str]:
    """The capability profiles python-escpos knows."""
    return sorted(CAPABILITIES["profiles"])


def make_profile(
    name: str = "default", *, columns: int = 48, gb18030: bool = False, status_query: bool = True
) -> PrinterProfile:
    """A profile from an escpos capability profile name and what the store says of the printer."""
    data = CAPABILITIES["profiles"].get(name)
    if data is None:
        raise UnknownProfile(f"unknown printer profile {name!r} (python-escpos knows: {', '.join(known_profiles())})")
    features: dict[str, bool] = {k: bool(v) for k, v in data.get("features", {}).items()}
    cut = "PART" if features.get("paperPartCut") else "FULL" if features.get("paperFullCut") else None
    return PrinterProfile(
        name=name,
        columns=columns,
        gb18030=gb18030,
        qr_native=features.get("qrCode", False),
        cut=cut,
        status_query=status_query,
        features=features,
    )


def profile_for(printer: Printer) -> PrinterProfile:
    """The profile of a configured printer."""
    return make_profile(
        printer.profile, columns=printer.columns, gb18030=printer.gb18030, status_query=printer.status_query
    )


def check_profiles(config: StoreConfig) -> list[str]:
    """Problems with the printers' profiles (unknown names), as `printers.N(id).profile: …` lines."""
    problems = []
    for k, p in enumerate(config.printers):
        try:
            profile_for(p)
        except UnknownProfile as exc:
            problems.append(f"printers.{k}({p.id}).profile: {exc}")
    return problems


@lru_cache(maxsize=64)
def _escpos_profile(name: str, columns: int) -> Profile:
    base: dict[str, Any] = CAPABILITIES["profiles"][name]
    data = copy.deepcopy(base)
    dots = columns * DOTS_PER_COLUMN
    data["media"] = {"dpi": DPI, "width": {"mm": round(dots * 25.4 / DPI, 1), "pixels": dots}}
    data.setdefault("fonts", {}).setdefault("0", {"name": "Font A"})["columns"] = columns
    cls = type("KdsProfile", (Profile,), {"profile_data": data})
    profile: Profile = cls(columns=columns, features=data.get("features", {}))
    return profile
