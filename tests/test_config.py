"""The store configuration: the shipped sample store, and how a bad config is refused (every problem)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from kds.config import ConfigError, ConfigProblem, Role, SoldBy, StoreConfig, load_config

SAMPLE = Path(__file__).resolve().parents[1] / "config" / "store.toml"

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def sample() -> StoreConfig:
    return load_config(SAMPLE)


def _ean13_ok(code: str) -> bool:
    if not re.fullmatch(r"\d{13}", code):
        return False
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(code[:12]))
    return (10 - total % 10) % 10 == int(code[12])


def _unlabel(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`("catalogue", "3(LOB-AUS)", "barcode")` -> `("catalogue", "LOB-AUS", "barcode")`."""
    return tuple(re.sub(r"^\d+\((.*)\)$", r"\1", p) if isinstance(p, str) else p for p in loc)


def _load_text(tmp_path: Path, text: str) -> StoreConfig:
    path = tmp_path / "store.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _problems(tmp_path: Path, text: str) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        _load_text(tmp_path, text)
    return info.value.problems


# ------------------------------------------------------------------------------------------------------------
# The sample store
# ------------------------------------------------------------------------------------------------------------


def test_sample_config_loads_from_a_real_file(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "store.toml"
    copy.parent.mkdir()
    shutil.copy(SAMPLE, copy)
    cfg = load_config(copy)
    assert cfg.store.id == "sh-jinqiao"
    assert cfg.store.timezone == "Asia/Shanghai"
    assert cfg.store.currency == "CNY"
    assert cfg.store.default_station == "wok"
    assert cfg.counter.printer == "counter-printer"
    assert {s.id for s in cfg.stations} == {"seafood", "wok", "grill", "cold", "bar", "bakery"}


def test_default_path_is_the_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLE.parents[1])
    assert load_config().store.id == "sh-jinqiao"


def test_stations_have_names_printers_and_sensible_timers(sample: StoreConfig) -> None:
    for st in sample.stations:
        assert st.name and CJK.search(st.name_zh), st.id
        assert st.printer is not None and sample.printer(st.printer) is not None, st.id
        assert 0 < st.timers.warn_after_s < st.timers.late_after_s, st.id
    bar, seafood = sample.station("bar"), sample.station("seafood")
    assert bar is not None and seafood is not None
    # A drink is late long before a steamed grouper is.
    assert bar.timers.late_after_s <= 300
    assert seafood.timers.warn_after_s >= 600
    assert bar.timers.late_after_s < seafood.timers.warn_after_s


def test_lobster_cooking_methods_route_to_the_right_stations(sample: StoreConfig) -> None:
    lobster = sample.item("LOB-AUS")
    assert lobster is not None
    assert lobster.sold_by is SoldBy.WEIGHT
    assert lobster.category == "live_seafood"
    assert lobster.station is None  # routed by the cooking method only
    category = sample.category(lobster.category)
    assert category is not None and category.station is None
    expected = {"sashimi": "cold", "steamed": "seafood", "ginger_scallion": "wok"}
    assert set(expected) <= set(lobster.methods)
    for method_id, station in expected.items():
        method = sample.method(method_id)
        assert method is not None, method_id
        assert method.station == station, method_id
    for method_id, name_zh in {"sashimi": "刺身", "steamed": "清蒸", "ginger_scallion": "姜葱炒"}.items():
        method = sample.method(method_id)
        assert method is not None and method.name_zh == name_zh, method_id


def test_method_fees_and_per_item_overrides(sample: StoreConfig) -> None:
    steamed, sashimi = sample.method("steamed"), sample.method("sashimi")
    lobster, king_crab = sample.item("LOB-AUS"), sample.item("CRAB-KING")
    assert steamed and sashimi and lobster and king_crab
    assert lobster.fee_for(steamed) == steamed.fee_cents  # no override: the method's fee
    assert lobster.fee_for(sashimi) == lobster.method_fees["sashimi"] != sashimi.fee_cents
    assert king_crab.fee_for(steamed) > steamed.fee_cents  # a king crab costs more to prepare
    methods = sample.methods
    assert 10 <= len(methods) <= 14
    for m in methods:
        assert m.name and CJK.search(m.name_zh) and m.fee_cents > 0, m.id
    assert {m.station for m in methods} >= {"seafood", "wok", "cold", "grill"}
    used = {m for it in sample.catalogue for m in it.methods}
    assert used == {m.id for m in methods}, "every cooking method is offered on some item"


def test_catalogue_is_big_bilingual_and_well_formed(sample: StoreConfig) -> None:
    items = sample.catalogue
    assert len(items) >= 45
    for it in items:
        assert it.name and not CJK.search(it.name), it.sku
        assert CJK.search(it.name_zh), it.sku
        assert it.price_cents > 0, it.sku
        assert it.barcode is not None and _ean13_ok(it.barcode), it.sku
        assert all(sample.allergen(a) is not None for a in it.allergens), it.sku
    barcodes = [it.barcode for it in items]
    assert len(set(barcodes)) == len(barcodes)
    by_category = {c.id: [it for it in items if it.category == c.id] for c in sample.categories}
    for needed in ("live_seafood", "hot_dishes", "grill", "cold", "drinks", "bakery", "noodles_congee"):
        assert len(by_category[needed]) >= 3, needed
    assert sum(1 for it in items if it.allergens) >= len(items) // 2
    for sku in ("WOK-KUNGPAO", "BAR-MILKTEA", "BAK-EGGTART", "CRAB-KING", "FISH-GROUPER", "GEODUCK"):
        assert sample.item(sku) is not None, sku
    kungpao = sample.item("WOK-KUNGPAO")
    assert kungpao is not None and "peanut" in kungpao.allergens


def test_weighed_seafood_has_realistic_limits(sample: StoreConfig) -> None:
    weighed = [it for it in sample.catalogue if it.sold_by is SoldBy.WEIGHT]
    assert len(weighed) >= 10
    for it in weighed:
        assert it.category == "live_seafood", it.sku
        assert it.methods, it.sku
        assert it.min_weight_g is not None and it.max_weight_g is not None, it.sku
        assert 100 <= it.min_weight_g < it.max_weight_g <= 6000, it.sku
        assert 5_000 <= it.price_cents <= 150_000, it.sku  # ¥50 to ¥1500 per kg
        assert "shellfish" in it.allergens or "fish" in it.allergens, it.sku
    for it in sample.catalogue:
        if it.sold_by is SoldBy.EACH:
            assert it.min_weight_g is None and it.max_weight_g is None, it.sku


def test_every_item_is_routed_except_the_one_seasonal_special(sample: StoreConfig) -> None:
    unrouted = []
    explicit = []
    for it in sample.catalogue:
        category = sample.category(it.category)
        assert category is not None, it.sku
        if it.methods:
            assert all(sample.method(m) for m in it.methods), it.sku
        elif it.station:
            explicit.append(it.sku)
        elif category.station is None:
            unrouted.append(it.sku)
    assert unrouted == ["SPECIAL-SEASONAL"]
    special = sample.item("SPECIAL-SEASONAL")
    assert special is not None and special.station is None and not special.methods
    assert [it.sku for it in sample.catalogue if it.category == special.category] == ["SPECIAL-SEASONAL"]
    assert sample.station(sample.store.default_station) is not None
    # A few SKUs override their category's station.
    assert explicit, "some SKUs are routed by their own station"
    for sku in explicit:
        found = sample.item(sku)
        assert found is not None, sku
        category = sample.category(found.category)
        assert category is not None and found.station != category.station, sku


def test_printers_match_the_emulator_setup(sample: StoreConfig) -> None:
    printers = sample.printers
    assert {p.id for p in printers} == {s.printer for s in sample.stations} | {"counter-printer"}
    assert sorted(p.port for p in printers) == list(range(9101, 9108))
    for p in printers:
        assert p.transport == "network" and p.host == "127.0.0.1", p.id
        assert (p.width_mm, p.columns) in {(80, 48), (58, 32)}, p.id
    assert [p.id for p in printers if p.width_mm == 58] == ["bar-printer"]
    assert {p.gb18030 for p in printers} == {True, False}
    backups = {p.id: p.backup for p in printers if p.backup}
    assert backups.get("seafood-printer") == "wok-printer"
    assert len(backups) >= 2
    for backup in backups.values():
        assert sample.printer(backup) is not None


def test_devices_cover_every_station_and_channel(sample: StoreConfig) -> None:
    devices = {d.id: d for d in sample.devices}
    kitchens = {d.id: d.station for d in sample.devices if d.role is Role.KITCHEN}
    assert kitchens == {
        "wok-1": "wok",
        "wok-2": "wok",
        "seafood-1": "seafood",
        "grill-1": "grill",
        "cold-1": "cold",
        "bar-1": "bar",
        "bakery-1": "bakery",
    }
    assert devices["counter-1"].role is Role.COUNTER
    assert set(devices["counter-1"].channels) == {"shelf", "kiosk"}
    sources = {d.id: set(d.channels) for d in sample.devices if d.role is Role.SOURCE}
    assert sources == {
        "app-backend": {"app"},
        "kiosk-1": {"kiosk"},
        "kiosk-2": {"kiosk"},
        "shelf-1": {"shelf"},
    }
    assert devices["monitor-1"].role is Role.MONITOR
    assert devices["wok-1"].keymap == {"bump": "b", "start": "s", "recall": "r"}
    tokens = [d.token for d in sample.devices]
    assert len(set(tokens)) == len(tokens)


def test_the_sample_has_comments_for_the_store_manager() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert len(comments) >= 40
    for section in (
        "[store]",
        "[counter]",
        "[[stations]]",
        "[[categories]]",
        "[[methods]]",
        "[[catalogue]]",
        "[[printers]]",
        "[[devices]]",
    ):
        assert section in text
        before = text[: text.index(section)].rstrip().splitlines()
        assert before and before[-1].startswith("#"), f"{section} is introduced by a comment"


# ------------------------------------------------------------------------------------------------------------
# Bad configs: every problem, with its key path
# ------------------------------------------------------------------------------------------------------------

MANY_PROBLEMS = """
[store]
id = "test-store"
name = "Test store"
default_station = "wok"

[[stations]]
id = "wok"
name = "Wok"
printer = "wok-printer"
timers = { warn_after_s = "soon", late_after_s = 600 }

[[stations]]
id = "grill"
name = "Grill"
prnter = "wok-printer"

[[categories]]
id = "live_seafood"
name = "Live seafood"

[[methods]]
id = "steamed"
name = "Steamed"
station = "wok"

[[methods]]
id = "grilled"
name = "Grilled"
station = "griddle"

[[catalogue]]
sku = "LOB-AUS"
name = "Australian rock lobster"
category = "live_seafood"
sold_by = "weight"
price_cents = 79800
methods = ["steamed", "grilled"]

[[catalogue]]
sku = "CRAB-KING"
name = "King crab"
category = "live_seafood"
price_cents = "expensive"
methods = ["steamed"]

[[printers]]
id = "wok-printer"
host = "127.0.0.1"
port = "ninety-one-oh-one"
gb18030 = "perhaps"

[[devices]]
id = "wok-1"
token = "dev-wok-1-token"
role = "kitchen"
station = "wok"

[[devices]]
id = "grill-1"
token = "dev-grill-1-token"
role = "kitchen"

[[devices]]
id = "wok-1"
token = "dev-wok-1-other"
role = "kitchen"
station = "wok"
"""


def test_every_problem_is_listed_with_its_key_path(tmp_path: Path) -> None:
    path = tmp_path / "store.toml"
    path.write_text(MANY_PROBLEMS, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    expected = {
        # bad value types and an unknown (misspelt) key, found by pydantic
        ("stations", "0(wok)", "timers", "warn_after_s"): "valid integer",
        ("stations", "1(grill)", "prnter"): "Extra inputs are not permitted",
        ("catalogue", "1(CRAB-KING)", "price_cents"): "valid integer",
        ("printers", "0(wok-printer)", "port"): "valid integer",
        ("printers", "0(wok-printer)", "gb18030"): "valid boolean",
        # references and rules across sections, found even though the file also has type errors
        ("methods", "1(grilled)", "station"): "unknown station 'griddle'",
        ("catalogue", "0(LOB-AUS)"): "need min_weight_g and max_weight_g",
        ("devices", "1(grill-1)", "station"): "a kitchen device needs a station",
        ("devices", "2(wok-1)", "id"): "duplicate id 'wok-1'",
    }
    got = {p.loc: p.msg for p in err.problems}
    assert set(got) == set(expected), "\n".join(str(p) for p in err.problems)
    for loc, fragment in expected.items():
        assert fragment in got[loc], f"{loc}: {got[loc]!r}"
    assert len(err.problems) == len(expected)
    # The message names the file and prints each problem as a readable key path.
    text = str(err)
    assert str(path) in text
    assert f"{len(expected)} problem(s)" in text
    for line in (
        "stations.0(wok).timers.warn_after_s:",
        "methods.1(grilled).station: unknown station 'griddle'",
        "devices.2(wok-1).id: duplicate id 'wok-1'",
        "catalogue.0(LOB-AUS): items sold by weight need min_weight_g and max_weight_g",
        "devices.1(grill-1).station: a kitchen device needs a station",
    ):
        assert line in text


def test_references_to_badly_typed_entries_are_not_reported_as_unknown(tmp_path: Path) -> None:
    # The only problem is the station's timer type: the category and device that name that station are fine.
    text = SAMPLE.read_text(encoding="utf-8").replace(
        "timers = { warn_after_s = 420, late_after_s = 720 }",
        'timers = { warn_after_s = 420, late_after_s = "12m" }',
    )
    problems = _problems(tmp_path, text)
    assert [(_unlabel(p.loc), "valid integer" in p.msg) for p in problems] == [
        (("stations", "bakery", "timers", "late_after_s"), True)
    ]


@pytest.mark.parametrize(
    ("old", "new", "loc", "fragment"),
    [
        ('default_station = "wok"', 'default_station = "pastry"', ("store", "default_station"), "'pastry'"),
        ('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghia"', ("store", "timezone"), "time zone"),
        (
            "timers = { warn_after_s = 120, late_after_s = 300 }",
            "timers = { warn_after_s = 120, late_after_s = 100 }",
            ("counter", "timers"),
            "late_after_s must be greater",
        ),
        (
            "timers = { warn_after_s = 180, late_after_s = 300 }",
            "timers = { warn_after_s = 300, late_after_s = 180 }",
            ("stations", "bar", "timers"),
            "late_after_s must be greater",
        ),
        (
            'printer = "grill-printer"',
            'printer = "grill-printr"',
            ("stations", "grill", "printer"),
            "unknown printer",
        ),
        ('station = "bakery"', 'station = "patisserie"', ("categories", "bakery", "station"), "'patisserie'"),
        (
            'methods = ["sashimi", "boiled"]',
            'methods = ["sashimi", "poached"]',
            ("catalogue", "PRAWN-SPOT", "methods", 1),
            "unknown cooking method 'poached'",
        ),
        (
            "method_fees = { sashimi = 5000, cheese_baked = 4800 }",
            "method_fees = { sashimi = 5000, grilled = 4800 }",
            ("catalogue", "LOB-AUS", "method_fees", "grilled"),
            "does not allow",
        ),
        (
            "method_fees = { sashimi = 3800 }",
            "method_fees = { sashimi = -3800 }",
            ("catalogue", "GEODUCK", "method_fees", "sashimi"),
            "negative",
        ),
        (
            'barcode = "2110002000002"',
            'barcode = "2110001000003"',
            ("catalogue", "LOB-BOSTON", "barcode"),
            "duplicate",
        ),
        ('sku = "WOK-MAPO"', 'sku = "WOK-KUNGPAO"', ("catalogue", "WOK-KUNGPAO", "sku"), "duplicate id"),
        (
            'category = "drinks"',
            'category = "beverages"',
            ("catalogue", "BAR-COCONUT", "category"),
            "'beverages'",
        ),
        (
            "max_weight_g = 3000",
            "max_weight_g = 400",
            ("catalogue", "LOB-AUS", "max_weight_g"),
            "greater than",
        ),
        ('backup = "wok-printer"', 'backup = "fax"', ("printers", "seafood-printer", "backup"), "'fax'"),
        (
            'station = "cold"\n\n[[devices]]',
            'station = "sushi"\n\n[[devices]]',
            ("devices", "cold-1", "station"),
            "unknown station 'sushi'",
        ),
        ('channels = ["kiosk"]', "channels = []", ("devices", "kiosk-1", "channels"), "at least one channel"),
        (
            'role = "monitor"\n',
            'role = "monitor"\nchannels = ["app"]\n',
            ("devices", "monitor-1", "channels"),
            "only",
        ),
        ('role = "monitor"\n', 'role = "waiter"\n', ("devices", "monitor-1", "role"), "'source'"),
        ('token = "dev-bar-1-token"', 'token = "short"', ("devices", "bar-1", "token"), "at least 8"),
        ('id = "kiosk-2"', 'id = "Kiosk 2"', ("devices", "Kiosk 2", "id"), "pattern"),
        ('sku = "BAK-EGGTART"', 'sku = "bak-eggtart"', ("catalogue", "bak-eggtart", "sku"), "pattern"),
        (
            'allergens = ["peanut", "soy"]',
            'allergens = ["peanutt", "soy"]',
            ("catalogue", "WOK-KUNGPAO", "allergens", 0),
            "unknown allergen 'peanutt'",
        ),
        ('id = "lupin"', 'id = "sesame"', ("allergens", "sesame", "id"), "duplicate id"),
        ('name_zh = "芝麻"', 'name_zh = ""', ("allergens", "sesame", "name_zh"), "at least 1"),
        ('language = "en"', 'language = "fr"', ("store", "language"), "'zh'"),
    ],
)
def test_one_mistake_in_the_sample_gives_exactly_one_problem(
    tmp_path: Path, old: str, new: str, loc: tuple[str | int, ...], fragment: str
) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert old in text
    problems = _problems(tmp_path, text.replace(old, new, 1))
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    assert _unlabel(problems[0].loc) == loc
    assert fragment in problems[0].msg


def test_missing_sections_are_named(tmp_path: Path) -> None:
    problems = _problems(tmp_path, '[store]\nid = "x"\nname = "X"\ndefault_station = "wok"\n')
    assert {p.loc for p in problems} == {("stations",), ("catalogue",), ("devices",)}
    assert all("Field required" in p.msg for p in problems)


def test_toml_syntax_error_is_one_clear_problem(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8").replace('name = "Wok"\n', 'name = "Wok\n', 1)
    lineno = text.splitlines().index('name = "Wok') + 1
    path = tmp_path / "store.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert len(err.problems) == 1
    problem = err.problems[0]
    assert problem.loc == ()
    assert "not valid TOML" in problem.msg
    assert f"line {lineno}" in problem.msg
    assert err.source == str(path)
    assert str(path) in str(err) and "(top): not valid TOML" in str(err)


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "store.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.source == str(path)
    assert len(err.problems) == 1
    assert err.problems[0].loc == ()
    assert "cannot read file" in err.problems[0].msg
    assert "No such file" in err.problems[0].msg
    assert str(path) in str(err)


def test_a_directory_is_not_a_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert len(info.value.problems) == 1
    assert "cannot read file" in info.value.problems[0].msg


def test_the_store_declares_its_allergens_in_both_languages(sample: StoreConfig) -> None:
    ids = {a.id for a in sample.allergens}
    assert {"peanut", "tree_nuts", "dairy", "egg", "fish", "shellfish", "gluten", "soy", "sesame"} <= ids
    for a in sample.allergens:
        assert a.name and not CJK.search(a.name), a.id
        assert CJK.search(a.name_zh), a.id


def test_a_config_without_allergens_gets_the_major_ones_and_languages_default_to_the_store(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    start = text.index("\n[[allergens]]\n")
    end = text.index("# ----", start)
    cut = text[:start] + text[end:]
    cut = cut.replace('language = "en"', 'language = "zh"', 1)
    cut = cut.replace('id = "wok-2"\n', 'id = "wok-2"\nlanguage = "en"\n', 1)
    cfg = _load_text(tmp_path, cut)
    peanut = cfg.allergen("peanut")
    assert peanut is not None and peanut.name_zh == "花生"
    assert cfg.language_of("wok-1") == "zh"
    assert cfg.language_of("wok-2") == "en"
    assert cfg.language_of(None) == "zh"
