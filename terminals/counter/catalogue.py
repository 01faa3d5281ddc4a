"""The store's catalogue as the counter sees it (from the hub's `welcome`): lookup, search and item checks. No I/O.

The counter may run on another machine than the hub, so it never reads the store config: everything here comes from
`welcome.store` (`catalogue` and `methods`). `check_line` mirrors `kds.routing.check_item` with the same words, so
a clerk sees the hub's verdict before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from kds.protocol import CatalogueEntry, StoreView

SCALE_PREFIX = "21"
"""EAN-13 labels printed by the store's scales: 21 + 5-digit item code + 5-digit weight in grams + check digit."""
MAX_NOTE_LEN = 500


def money(cents: int, currency: str = "CNY") -> str:
    """¥79.80 (the store's currency; yuan for the sample store)."""
    sign = {"CNY": "¥", "EUR": "€", "USD": "$", "GBP": "£"}.get(currency, f"{currency} ")
    return f"{sign}{cents // 100}.{cents % 100:02d}"


_WEIGHT = re.compile(r"^(\d+(?:[.,]\d+)?)\s*(kg|g|公斤|千克|克)?$", re.IGNORECASE)
_KG_UNITS = ("kg", "公斤", "千克")


def _english(en: str) -> str:
    return en


def parse_weight(text: str, w: Callable[[str], str] = _english) -> tuple[int | None, str | None]:
    """A weight as the clerk typed it → (grams, None), or (None, why not); (None, None) when empty. `w` says why in
    the screen's language (English by default).

    `1200`, `1200g`, `1200 g`, `1.2kg`, `1.2 kg`, `1,2kg` (decimal comma), `1.2公斤`: a plain number is grams. Refused:
    a plain number with a decimal point or comma (`1.2`: kilograms or grams?), fractions of a gram, anything else.
    """
    raw = text.strip()
    if not raw:
        return None, None
    m = _WEIGHT.match(raw)
    if m is None:
        return None, w("{raw!r} is not a weight: type grams (800) or kilograms with the unit (0.8kg)").format(raw=raw)
    number, unit = m.group(1).replace(",", "."), (m.group(2) or "").casefold()
    whole, _, frac = number.partition(".")
    if not unit:
        if frac:
            why = w("{raw!r}: a plain number is grams; for kilograms add the unit ({number}kg)")
            return None, why.format(raw=raw, number=number)
        grams = int(whole)
    elif unit in _KG_UNITS:
        if len(frac) > 3:
            return None, w("{raw!r}: kilograms to the gram at most (3 decimals)").format(raw=raw)
        grams = int(whole) * 1000 + int((frac + "000")[:3])
    else:
        if frac:
            return None, w("{raw!r}: whole grams only").format(raw=raw)
        grams = int(whole)
    if grams <= 0:
        return None, w("the weight must be more than 0 g")
    return grams, None


def weighed_price(price_per_kg_cents: int, weight_g: int) -> int:
    """The price of `weight_g` grams at a price per kilogram, to the nearest cent (half up)."""
    return (price_per_kg_cents * weight_g + 500) // 1000


def ean13_ok(code: str) -> bool:
    """True when a 13-digit code has a good check digit."""
    if len(code) != 13 or not code.isdigit():
        return False
    total = sum(int(d) * (3 if k % 2 else 1) for k, d in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])


@dataclass(frozen=True, slots=True)
class Method:
    """A cooking method (`welcome.store.methods`)."""

    id: str
    name: str
    name_zh: str
    station: str
    fee_cents: int


class Product(CatalogueEntry):
    """A catalogue item (`welcome.store.catalogue`: the protocol's `CatalogueEntry`), with what the counter works out
    from it."""

    @property
    def weighed(self) -> bool:
        """Sold by weight: the clerk enters the weight of the piece in grams."""
        return self.sold_by == "weight"

    def price_of(self, qty: int, weight_g: int | None) -> int | None:
        """The goods' price for a line: `weight_g` at the price per kg, or `qty` pieces (None: weight not known)."""
        if self.weighed:
            return None if weight_g is None else weighed_price(self.price_cents, weight_g)
        return self.price_cents * qty

    @property
    def from_the_tanks(self) -> bool:
        """Picked by the customer and cooked to order (weighed, or with cooking methods): makes a `shelf` order."""
        return self.weighed or bool(self.methods)

    @classmethod
    def from_entry(cls, d: CatalogueEntry) -> Product:
        """From a welcome's `CatalogueEntry` (the same fields)."""
        return cls.model_validate(d, from_attributes=True)


@dataclass(frozen=True, slots=True)
class Scan:
    """What a typed or scanned code resolved to: the product, and the weight when it was a scale label."""

    product: Product
    weight_g: int | None = None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an entry: the form field at fault (`sku`, `weight_g`, `cook`, `qty`, …) and why."""

    field: str
    msg: str


def _fold(s: str) -> str:
    return re.sub(r"\s+", " ", s.casefold()).strip()


class Catalogue:
    """Products and cooking methods of the store, with lookup by SKU, barcode and name (English or Chinese)."""

    def __init__(self, products: list[Product], methods: list[Method], currency: str = "CNY") -> None:
        self.products = products
        self.methods = {m.id: m for m in methods}
        self.currency = currency
        self._by_sku = {p.sku.upper(): p for p in products}
        self._by_barcode = {p.barcode: p for p in products if p.barcode}
        self._by_scale_code = {
            p.barcode[:7]: p
            for p in products
            if p.weighed and p.barcode and p.barcode.startswith(SCALE_PREFIX) and len(p.barcode) == 13
        }

    @classmethod
    def from_store(cls, store: StoreView | None) -> Catalogue:
        """From `welcome.store` (empty before the first welcome)."""
        if store is None:
            return cls([], [])
        return cls(
            [Product.from_entry(d) for d in store.catalogue],
            [Method(m.id, m.name, m.name_zh, m.station, m.fee_cents) for m in store.methods],
            store.currency,
        )

    def __len__(self) -> int:
        return len(self.products)

    def money(self, cents: int) -> str:
        """An amount in the store's currency."""
        return money(cents, self.currency)

    def get(self, sku: str) -> Product | None:
        """The product with this SKU (any case)."""
        return self._by_sku.get(sku.strip().upper())

    def method(self, method_id: str) -> Method | None:
        """The cooking method with this id."""
        return self.methods.get(method_id)

    def methods_for(self, product: Product) -> list[tuple[Method, int]]:
        """The product's cooking methods with their processing fee for it."""
        return [(m, fee) for mid, fee in product.methods.items() if (m := self.methods.get(mid)) is not None]

    def scan(self, code: str) -> Scan | None:
        """Exact match of what a scanner or the clerk typed: SKU, barcode, or a scale label (weight included)."""
        code = code.strip()
        if not code:
            return None
        product = self.get(code) or self._by_barcode.get(code)
        if product is not None:
            return Scan(product)
        if code.startswith(SCALE_PREFIX) and ean13_ok(code):
            product = self._by_scale_code.get(code[:7])
            if product is not None:
                grams = int(code[7:12])
                return Scan(product, grams or None)
        return None

    def search(self, text: str, limit: int = 20) -> list[Product]:
        """Products matching a SKU, barcode or name fragment, best first (exact, then prefix, then anywhere)."""
        q = _fold(text)
        if not q:
            return []
        ranked: list[tuple[int, int, Product]] = []
        for k, p in enumerate(self.products):
            sku, name, zh = p.sku.casefold(), _fold(p.name), _fold(p.name_zh)
            barcode = p.barcode or ""
            if q in (sku, barcode):
                rank = 0
            elif sku.startswith(q) or (q.isdigit() and barcode.startswith(q)):
                rank = 1
            elif name.startswith(q) or zh.startswith(q) or any(w.startswith(q) for w in name.split()):
                rank = 2
            elif q in name or q in zh or q in sku:
                rank = 3
            else:
                continue
            ranked.append((rank, k, p))
        ranked.sort(key=lambda r: (r[0], r[1]))
        return [p for _, _, p in ranked[:limit]]

    def check_line(
        self,
        product: Product,
        weight_g: int | None,
        cook: str | None,
        w: Callable[[str], str] = str,
        name: str | None = None,
    ) -> list[Problem]:
        """What the hub would refuse in one line (weight, cooking method), in the hub's words (`w` translates the
        words of the counter's screen, `name` is the item's name there: English as it is)."""
        problems: list[Problem] = []
        name = name or product.name
        if product.weighed:
            lo, hi = product.min_weight_g, product.max_weight_g
            if weight_g is None:
                msg = w("{name} is sold by weight: enter the weight (800 = grams, or 0.8kg)")
                problems.append(Problem("weight_g", msg.format(name=name)))
            elif lo is not None and hi is not None and not lo <= weight_g <= hi:
                msg = w("{weight} g is outside {lo}–{hi} g for {name}")
                problems.append(Problem("weight_g", msg.format(weight=weight_g, lo=lo, hi=hi, name=name)))
        elif weight_g is not None:
            problems.append(Problem("weight_g", w("{name} is not sold by weight").format(name=name)))
        if cook is not None:
            if cook not in product.methods:
                allowed = ", ".join(product.methods) or "none"
                msg = w("{cook!r} is not a cooking method for {name} (allowed: {allowed})")
                problems.append(Problem("cook", msg.format(cook=cook, name=name, allowed=allowed)))
        elif product.methods:
            problems.append(Problem("cook", w("choose a cooking method for {name}").format(name=name)))
        return problems


@dataclass(frozen=True, slots=True)
class AllergenChoice:
    """An allergen the store declares (`[[allergens]]`): the only ids the hub takes in a line's `allergens`."""

    id: str
    name: str
    name_zh: str


def find_allergens(choices: list[AllergenChoice], text: str) -> list[AllergenChoice]:
    """The declared allergens matching what the clerk typed (id, English or Chinese name), best first: exact, then
    prefix (of the name or one of its words), then anywhere."""
    q = _fold(text)
    if not q:
        return list(choices)
    ranked: list[tuple[int, int, AllergenChoice]] = []
    for k, a in enumerate(choices):
        keys = [a.id.casefold(), a.id.replace("_", " ").casefold(), _fold(a.name), _fold(a.name_zh)]
        words = [w for key in keys for w in re.split(r"[\s/()]+", key) if w]
        if q in keys:
            rank = 0
        elif any(key.startswith(q) for key in keys) or any(w.startswith(q) for w in words):
            rank = 1
        elif any(q in key for key in keys):
            rank = 2
        else:
            continue
        ranked.append((rank, k, a))
    ranked.sort(key=lambda r: (r[0], r[1]))
    return [a for _, _, a in ranked]
