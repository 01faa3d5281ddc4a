"""Which jobs the hub makes (the pure core, no printer): station tickets on created / amended / cancelled, and the
counter's requests; refused requests make no job."""

from __future__ import annotations

import json

from kds.config import StoreConfig, config_from_dict
from kds.hub import OrderHub, Session
from kds.printing import Banner, Layout
from kds.protocol import ItemChange
from tests.printers.sample import shift


def summary(jobs: list) -> list[tuple[str, str, str | None, str | None]]:  # type: ignore[type-arg]
    return [(j.printer, j.layout.value, j.station, j.banner.value if j.banner else None) for j in jobs]


def test_the_hub_decides_which_tickets_to_print(config: StoreConfig) -> None:
    hub, jobs = shift(config)
    assert summary(jobs["shelf.created"]) == [
        ("wok-printer", "station", "wok", None),
        ("cold-printer", "station", "cold", None),
    ]
    # The amendment added a wok dish and removed the only bar item: wok AMENDED, bar CANCELLED.
    assert summary(jobs["app.amended"]) == [
        ("wok-printer", "station", "wok", "amended"),
        ("bar-printer", "station", "bar", "cancelled"),
    ]
    assert {j.banner for j in jobs["kiosk.cancelled"]} == {Banner.CANCELLED}
    assert summary(jobs["request.claim_tag"]) == [("counter-printer", "claim_tag", None, None)]
    assert summary(jobs["request.station"]) == [
        ("wok-printer", "station", "wok", "reprint"),
        ("cold-printer", "station", "cold", "reprint"),
    ]
    ids = [j.id for step in jobs.values() for j in step]
    assert ids == list(range(1, len(ids) + 1)), "job ids increase in the order the hub made them"
    assert hub.job_seq == ids[-1]
    # Each job carries the order as of its event: the amended wok ticket shows the added item.
    amended = jobs["app.amended"][0].order
    assert any(i.change is ItemChange.ADDED for i in amended.items)
    assert jobs["app.created"][0].order.items[0].change is None


def test_refused_print_requests_make_no_job(config: StoreConfig) -> None:
    hub, jobs = shift(config)
    app_id = jobs["app.created"][0].order_id
    counter = Session(config.device("counter-1"), hub.seq)  # type: ignore[arg-type]

    def ask(order_id: str, layout: str) -> tuple[dict[str, object], int]:
        d = hub.handle_frame(
            counter, json.dumps({"type": "print.request", "ref": "r", "order_id": order_id, "layout": layout})
        )
        return json.loads(d.replies[0][1]), len(d.jobs)

    answer, n = ask(app_id, "claim_tag")  # an app order has no shelf item to tag
    assert answer["code"] == "conflict" and n == 0
    answer, n = ask("20261125-X999", "expo")
    assert answer["code"] == "not_found" and n == 0
    answer, n = ask(app_id, "receipt")
    assert answer["code"] == "invalid_message" and n == 0

    raw = config.model_dump(mode="json")
    raw["counter"]["printer"] = None
    bare = OrderHub(config_from_dict(raw))
    bare.orders = hub.orders
    d = bare.handle_frame(
        Session(config.device("counter-1"), 0),  # type: ignore[arg-type]
        json.dumps({"type": "print.request", "ref": "r", "order_id": app_id, "layout": Layout.PICKUP_SLIP.value}),
    )
    assert json.loads(d.replies[0][1])["code"] == "conflict" and not d.jobs
