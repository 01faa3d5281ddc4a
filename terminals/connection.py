"""What every terminal says about its link to the hub: a status bar in words, and a loud OFFLINE banner.

Both read a `HubClient` and refresh themselves once a second, so "last event 12 s ago" keeps counting even when
nothing arrives. The clock is injectable (`now`) so snapshot tests are deterministic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import Static

from kds.client import HubClient, LinkState
from kds.config import Language
from kds.i18n import COMMON, Words

STATE_WORDS = {
    LinkState.CONNECTING: "connecting to the hub…",
    LinkState.ONLINE: "connected to the hub",
    LinkState.OFFLINE: "OFFLINE — reconnecting",
    LinkState.REFUSED: "REFUSED by the hub",
    LinkState.CLOSED: "disconnected",
}

WORDS = Words(
    {
        "connecting to the hub…": "正在连接主机…",
        "connected to the hub": "已连接主机",
        "OFFLINE — reconnecting": "离线 — 正在重连",
        "REFUSED by the hub": "主机拒绝连接",
        "disconnected": "已断开",
        "last event": "最近消息",
        "never": "从未",
        "just now": "刚刚",
        "{n} s ago": "{n} 秒前",
        "{n} min ago": "{n} 分钟前",
        "{n} h ago": "{n} 小时前",
        "{n} action waiting to be sent": "{n} 个操作待发送",
        "{n} actions waiting to be sent": "{n} 个操作待发送",
        "{n} action queued, sent when back": "{n} 个操作已排队,恢复后发送",
        "{n} actions queued, sent when back": "{n} 个操作已排队,恢复后发送",
        "REFUSED BY THE HUB": "主机拒绝连接",
        "check device id and token": "请检查设备编号和令牌",
        "OFFLINE — reconnecting — showing the last known state": "离线 — 正在重连 — 显示最后已知状态",
        "OFFLINE — no hub answers at {url}: start `kds serve` there, or check --hub": (
            "离线 — {url} 没有主机应答:请在那里启动 `kds serve`,或检查 --hub"
        ),
    },
    parent=COMMON,
)
"""The link's words in Chinese (`Words`: a missing one shows English)."""


def ago(seconds: float | None, lang: Language | str = Language.EN) -> str:
    """'just now', '12 s ago', '3 min ago', '2 h ago', or 'never' (in the screen's language)."""
    if seconds is None:
        return WORDS(lang, "never")
    s = max(0, int(seconds))
    if s < 2:
        return WORDS(lang, "just now")
    if s < 60:
        return WORDS(lang, "{n} s ago").format(n=s)
    if s < 3600:
        return WORDS(lang, "{n} min ago").format(n=s // 60)
    return WORDS(lang, "{n} h ago").format(n=s // 3600)


def _plural(lang: Language | str, one: str, many: str, n: int) -> str:
    return WORDS(lang, one if n == 1 else many).format(n=n)


class ConnectionBar(Static):
    """One line: the link in words, when the last event came, and how many actions wait to be sent."""

    DEFAULT_CSS = """
    ConnectionBar {
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $success-darken-3;
        color: $text;
    }
    ConnectionBar.-offline {
        background: $error;
        color: $text;
        text-style: bold;
    }
    """

    def __init__(
        self,
        client: HubClient,
        *,
        now: Callable[[], float] = time.monotonic,
        label: str | None = None,
        id: str | None = None,
        language: Language | str = Language.EN,
    ) -> None:
        super().__init__(id=id)
        self.client = client
        self.language = language
        self.now = now
        self.label = label
        """How to name the hub (its URL when None; snapshot tests give a fixed name for a hub on a free port)."""

    def on_mount(self) -> None:
        """Refresh every second (and at once)."""
        self.refresh_status()
        self.set_interval(1.0, self.refresh_status)

    def refresh_status(self) -> None:
        """Re-read the client's state."""
        c = self.client
        last = None if c.last_event_at is None else self.now() - c.last_event_at
        lang = self.language
        parts = [WORDS(lang, STATE_WORDS[c.state]), f"{WORDS(lang, 'last event')} {ago(last, lang)}"]
        if len(c.queue):
            parts.append(_plural(lang, "{n} action waiting to be sent", "{n} actions waiting to be sent", len(c.queue)))
        if c.state is LinkState.REFUSED and c.last_error:
            parts.append(c.last_error)
        parts.append(self.label if self.label is not None else c.urls[0] if c.urls else "")
        self.set_class(c.state is not LinkState.ONLINE, "-offline")
        self.update(" · ".join(p for p in parts if p))


class OfflineBanner(Static):
    """Shown only while the hub is unreachable: the screen below keeps the last state it had."""

    DEFAULT_CSS = """
    OfflineBanner {
        display: none;
        height: 3;
        width: 1fr;
        content-align: center middle;
        background: $error;
        color: $text;
        text-style: bold;
    }
    OfflineBanner.-shown {
        display: block;
    }
    """

    shown: reactive[bool] = reactive(False)

    def __init__(self, client: HubClient, *, id: str | None = None, language: Language | str = Language.EN) -> None:
        super().__init__(id=id)
        self.client = client
        self.language = language

    def on_mount(self) -> None:
        """Follow the client's state."""
        self.check()
        self.set_interval(0.5, self.check)

    def check(self) -> None:
        """Show or hide, with the number of queued actions."""
        c = self.client
        offline = c.state in (LinkState.OFFLINE, LinkState.REFUSED, LinkState.CLOSED) or (
            c.state is LinkState.CONNECTING and c.connections > 0
        )
        self.set_class(offline, "-shown")
        if offline:
            lang = self.language
            queued = len(c.queue)
            tail = (
                " — " + _plural(lang, "{n} action queued, sent when back", "{n} actions queued, sent when back", queued)
                if queued
                else ""
            )
            if c.state is LinkState.REFUSED:
                why = c.last_error or WORDS(lang, "check device id and token")
                self.update(f"{WORDS(lang, 'REFUSED BY THE HUB')} — {why}")
            elif c.connections == 0 and c.urls:
                # Never reached: most likely no hub there, or a wrong --hub. Say where it looked.
                url = c.urls[0]
                self.update(
                    WORDS(lang, "OFFLINE — no hub answers at {url}: start `kds serve` there, or check --hub").format(
                        url=url
                    )
                    + tail
                )
            else:
                self.update(WORDS(lang, "OFFLINE — reconnecting — showing the last known state") + tail)


class ConnectionStatus(Vertical):
    """The banner (top) and bar (bottom) together, for screens that want both in one place."""

    DEFAULT_CSS = """
    ConnectionStatus {
        height: auto;
    }
    """

    def __init__(
        self, client: HubClient, *, now: Callable[[], float] = time.monotonic, language: Language | str = Language.EN
    ) -> None:
        super().__init__()
        self.client = client
        self.now = now
        self.language = language

    def compose(self) -> ComposeResult:
        """Banner, then bar."""
        yield OfflineBanner(self.client, language=self.language)
        yield ConnectionBar(self.client, now=self.now, language=self.language)
