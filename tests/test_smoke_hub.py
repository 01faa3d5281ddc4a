"""A first round trip over a real hub: submit, see it at the stations, bump, the source is told."""

from __future__ import annotations

from kds.protocol import Ack, OrderAccepted
from tests.conftest import ClientFactory, shelf_order
from tests.support import status_of, until


async def test_shelf_order_reaches_wok_and_cold_and_source_sees_ready(connect: ClientFactory) -> None:
    wok = await connect("wok-1")
    cold = await connect("cold-1")
    shelf = await connect("shelf-1")
    r = await shelf.request({"type": "order.submit", "order": shelf_order("smoke-1")}, expect=OrderAccepted)
    assert r.number == "S001"
    oid = r.order_id
    await until(lambda: oid in wok.book.orders and oid in cold.book.orders)
    assert {t.station for t in wok.book.orders[oid].tickets} == {"wok", "cold"}
    await wok.request({"type": "ticket.bump", "ticket_id": f"{oid}/wok"}, expect=Ack)
    await cold.request({"type": "ticket.bump", "ticket_id": f"{oid}/cold"}, expect=Ack)
    await until(lambda: status_of(shelf, oid) == "ready")
