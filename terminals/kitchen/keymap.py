"""The kitchen screen's actions and their keys: the default map, and a device's own map for its bump bar.

Every action has a binding id (the action name); a device's `keymap` in `config/store.toml` (action name → key, or
several keys separated by commas) adds its keys to the default keys of that action (a key it gives to one action is
taken from the action that had it by default), through Textual's keymap (`App.set_keymap`), on the ticket board and
in the recall, all-day and help overlays alike. A device with `keymap_replaces_defaults = true` has its keymap as the
whole keymap: the default keys are dropped, and an action it does not name has no key (`enabled` says so to
Textual's `check_action`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import KEY_NAME_REPLACEMENTS, format_key

BOARD = "board"
LIST = "list"
OVERLAY = "overlay"


@dataclass(frozen=True, slots=True)
class KeyAction:
    """One thing a cook can do with a key."""

    id: str
    """The action name, also used in a device's keymap."""
    keys: str
    """Default keys, comma-separated (Textual key names)."""
    description: str
    scopes: tuple[str, ...] = (BOARD,)
    """Where the action works: the ticket board, the recall list, the overlays."""
    action: str = ""
    """The Textual action it runs, when not the one named `id` (e.g. `pick(3)`)."""


ACTIONS: tuple[KeyAction, ...] = (
    KeyAction("prev", "left", "select the previous ticket"),
    KeyAction("next", "right", "select the next ticket"),
    KeyAction("item_up", "up", "previous item of the ticket (recall list: move up)", (BOARD, LIST)),
    KeyAction("item_down", "down", "next item of the ticket (recall list: move down)", (BOARD, LIST)),
    KeyAction("start", "s", "start the selected ticket (cooking)"),
    KeyAction("bump", "enter,b", "bump the selected ticket: done (clears a cancelled one)"),
    KeyAction("bump_item", "space", "bump the item under the ▸ cursor"),
    KeyAction("recall", "r", "recall list; in the list, recall the highlighted ticket", (BOARD, LIST)),
    KeyAction("acknowledge", "x", "clear a cancelled ticket (seen)"),
    KeyAction(
        "fire", "f", "tickets waiting for later (list); in the list, fire the highlighted one now", (BOARD, LIST)
    ),
    KeyAction("hold", "h", "hold the selected ticket (not started): it waits until fired (F)"),
    KeyAction("all_day", "a", "all-day totals (open / close)", (BOARD, OVERLAY)),
    KeyAction("page_next", "pagedown,n", "next page of tickets"),
    KeyAction("page_prev", "pageup,p", "previous page of tickets"),
    KeyAction("first", "home", "select the oldest ticket (first page)"),
    *(KeyAction(f"pick_{n}", str(n), f"select ticket {n} of the page", action=f"pick({n})") for n in range(1, 10)),
    KeyAction("help", "question_mark,f1", "this help (open / close)", (BOARD, LIST, OVERLAY)),
    KeyAction("close", "escape", "close the list or overlay", (LIST, OVERLAY)),
)
BY_ID = {a.id: a for a in ACTIONS}


def bindings(scope: str, *, show: bool = False) -> list[BindingType]:
    """The bindings of one scope, each with its action name as binding id (so a device keymap can remap it)."""
    return [
        Binding(a.keys, a.action or a.id, a.description, show=show, id=a.id, priority=False)
        for a in ACTIONS
        if scope in a.scopes
    ]


def confirm_binding() -> Binding:
    """Enter confirms in a list, whatever the device's map (not remappable, not shown)."""
    return Binding("enter", "confirm", "confirm", show=False)


def _key_name(character: str) -> str:
    """Textual's name of the key that types `character` ('?' → 'question_mark'; letters and digits as they are)."""
    if character.isalnum():
        return character
    try:
        name = unicodedata.name(character).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        return character
    return KEY_NAME_REPLACEMENTS.get(name, name)


def validate(keymap: dict[str, str]) -> list[str]:
    """Problems with a device's keymap (unknown actions, empty keys); empty when it is good."""
    problems: list[str] = []
    for action, keys in keymap.items():
        if action not in BY_ID:
            problems.append(f"unknown action {action!r} (actions: {', '.join(BY_ID)})")
        elif not normalize(keys):
            problems.append(f"{action}: no key given")
    return problems


def normalize(keys: str) -> str:
    """Key names as Textual writes them ("?" → "question_mark"), comma-separated, no blanks."""
    out = []
    for k in keys.split(","):
        k = k.strip()
        if k:
            out.append(_key_name(k) if len(k) == 1 else k)
    return ",".join(out)


def _split(keys: str) -> list[str]:
    return [k for k in normalize(keys).split(",") if k]


def effective(keymap: dict[str, str], *, replaces_defaults: bool = False) -> dict[str, list[str]]:
    """Action name → the keys that trigger it on this device: the default keys plus the device's own (a key the
    device gives to one action is taken from any other action that had it by default); with `replaces_defaults`,
    only the device's own keys (an action it does not name has none)."""
    own = {a: _split(v) for a, v in keymap.items() if a in BY_ID}
    out: dict[str, list[str]] = {}
    for a in ACTIONS:
        mine = own.get(a.id, [])
        if replaces_defaults:
            out[a.id] = mine
            continue
        taken = {k for other, keys in own.items() if other != a.id for k in keys}
        defaults = [k for k in _split(a.keys) if k not in taken]
        out[a.id] = list(dict.fromkeys([*defaults, *mine]))
    return out


def textual_keymap(keys: dict[str, list[str]]) -> dict[str, str]:
    """The keymap to give Textual (`App.set_keymap`): every action that has keys, binding id → its keys. An action
    left without keys keeps its default binding in Textual, switched off by `enabled`."""
    return {action: ",".join(k) for action, k in keys.items() if k}


_BY_ACTION = {a.action or a.id: a.id for a in ACTIONS}


def enabled(keys: dict[str, list[str]], action: str, parameters: tuple[object, ...]) -> bool:
    """False for one of the screen's actions that has no key on this device (for `check_action`)."""
    name = f"{action}({', '.join(repr(p) for p in parameters)})" if parameters else action
    action_id = _BY_ACTION.get(name)
    return action_id is None or bool(keys.get(action_id))


def label(key: str) -> str:
    """How a key is written on the screen: 'Enter', 'Space', '?', 'PgDn', 'S'."""
    special = {
        "pagedown": "PgDn",
        "pageup": "PgUp",
        "question_mark": "?",
        "escape": "Esc",
        "space": "Space",
        "enter": "Enter",
        "home": "Home",
        "left": "←",
        "right": "→",
        "up": "↑",
        "down": "↓",
    }
    if key in special:
        return special[key]
    if re.fullmatch(r"f\d+", key):
        return key.upper()
    text = format_key(key)
    return text.upper() if len(text) == 1 else text


def keys_label(keys: list[str]) -> str:
    """'Enter/B', or '—' when the action has no key on this device."""
    return "/".join(label(k) for k in keys) or "—"
