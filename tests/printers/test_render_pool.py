"""Tickets drawn in the renderer process: the same bytes as drawn in the hub, at a lower priority, started again when
it dies, and gone when the spooler stops."""

from __future__ import annotations

import dataclasses
import os
import signal

from kds.config import StoreConfig
from printers.layouts import StoreLabels, render
from printers.profiles import profile_for
from printers.render_pool import NICE, Renderer
from tests.printers.sample import shift


async def test_the_renderer_draws_what_the_hub_would_and_survives_its_death(config: StoreConfig) -> None:
    _hub, steps = shift(config)
    jobs = [j for js in steps.values() for j in js]
    labels = StoreLabels.from_config(config)
    bakery = next(p for p in config.printers if not p.gb18030)  # Chinese rows drawn as pictures
    profile = profile_for(bakery)
    renderer = Renderer()
    try:
        datas, error = await renderer.render(jobs, profile, labels, max_bytes=10**7)
        assert error is None
        assert datas == [render(j, profile, labels) for j in jobs]
        proc = renderer._proc
        assert proc is not None
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == NICE

        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        again, error = await renderer.render(jobs[:1], profile, labels, max_bytes=10**7)
        assert error is None and again == datas[:1]
        assert renderer.started == 2

        small, _ = await renderer.render(jobs, profile, labels, max_bytes=1)
        assert small == datas[:1], "a batch holds at least one job, and stops at the byte budget"

        # The labels go to a worker once (they carry the store's whole config), and again when they change.
        renamed = dataclasses.replace(labels, timezone="Europe/Paris")  # the times printed change
        other, error = await renderer.render(jobs[:2], profile, renamed, max_bytes=10**7)
        assert error is None and other == [render(j, profile, renamed) for j in jobs[:2]] != datas[:2]
        back, error = await renderer.render(jobs[:2], profile, labels, max_bytes=10**7)
        assert error is None and back == datas[:2]
        assert renderer.started == 2
        assert renderer.labels_sent == 4, "the labels went with each worker's first request and each change only"
    finally:
        last = renderer._proc
        await renderer.close()
    assert last is not None and last.returncode == 0, "it ends when its stdin closes"
