"""Routing of every order item to exactly one station, and validation of items against the catalogue.

Rule order: the cooking method's station, then the SKU's station, then the category's station, then the store's
default station with the item flagged `unrouted`. An item is never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kds.config import CatalogueItem, SoldBy, StoreConfig


@dataclass(frozen=True, slots=True)
class Route:
    """Where an item goes and why."""

    station: str
    rule: str
    """'method', 'sku', 'category' or 'default'."""

    @property
    def unrouted(self) -> bool:
        """True when no rule matched and the item fell back to the default station."""
        return self.rule == "default"


def route_item(config: StoreConfig, sku: str, cook: str | None) -> Route:
    """The station for one item (the item must be in the catalogue)."""
    if cook is not None:
        method = config.method(cook)
        if method is not None:
            return Route(method.station, "method")
    item = config.item(sku)
    if item is not None:
        if item.station:
            return Route(item.station, "sku")
        category = config.category(item.category)
        if category is not None and category.station:
            return Route(category.station, "category")
    return Route(config.store.default_station, "default")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an incoming order or amendment, with the path of the field at fault."""

    loc: tuple[str | int, ...]
    msg: str

    def as_dict(self) -> dict[str, Any]:
        """The wire form used in `error.errors`."""
        return {"loc": list(self.loc), "msg": self.msg}


def check_item(
    config: StoreConfig,
    loc: tuple[str | int, ...],
    sku: str,
    weight_g: int | None,
    cook: str | None,
    allergens: Sequence[str] = (),
) -> list[Problem]:
    """Every problem of one item against the catalogue: unknown SKU, weight, cooking method, and allergens the
    store does not declare (`[[allergens]]`: free text such as `peanutt`, `花生` or `cut_in_half` is refused)."""
    item: CatalogueItem | None = config.item(sku)
    problems: list[Problem] = []
    for j, a in enumerate(allergens):
        if config.allergen(a) is None:
            what = f"{item.name} ({sku})" if item is not None else repr(sku)
            known = ", ".join(x.id for x in config.allergens)
            problems.append(
                Problem((*loc, "allergens", j), f"unknown allergen {a!r} on {what}; the store's allergens: {known}")
            )
    if item is None:
        return [Problem((*loc, "sku"), f"unknown SKU {sku!r}"), *problems]
    if item.sold_by is SoldBy.WEIGHT:
        lo, hi = item.min_weight_g, item.max_weight_g
        if weight_g is None:
            problems.append(Problem((*loc, "weight_g"), f"{item.name} is sold by weight: weight_g is required"))
        elif lo is not None and hi is not None and not lo <= weight_g <= hi:
            problems.append(Problem((*loc, "weight_g"), f"{weight_g} g is outside {lo}–{hi} g for {item.name}"))
    elif weight_g is not None:
        problems.append(Problem((*loc, "weight_g"), f"{item.name} is not sold by weight"))
    if cook is not None:
        if config.method(cook) is None:
            problems.append(Problem((*loc, "cook"), f"unknown cooking method {cook!r}"))
        elif cook not in item.methods:
            allowed = ", ".join(item.methods) or "none"
            problems.append(
                Problem((*loc, "cook"), f"{cook!r} is not a cooking method for {item.name} (allowed: {allowed})")
            )
    elif item.methods:
        problems.append(Problem((*loc, "cook"), f"choose a cooking method for {item.name}: {', '.join(item.methods)}"))
    return problems
