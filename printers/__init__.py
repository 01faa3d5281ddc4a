"""Thermal printing: ESC/POS layouts, transports, spooler and emulator (see the printing issue)."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import platform
import tempfile
from importlib.util import find_spec
from pathlib import Path


def _escpos_capabilities_cache() -> None:
    """Give python-escpos a cache of its printer database that works, before anything imports it.

    On import, escpos parses `capabilities.json` with a pure-Python YAML parser (about 0.15 s, a good share of a
    hub's restart) and caches the result as a pickle in a *new* temporary directory each time: the cache is never
    found again, and every process leaves a directory in /tmp. Here the cache is one per-user directory, and the
    pickle in it is written by us, from the same file read as JSON (the same data), atomically (escpos writes its
    own in place, so another process starting meanwhile could read it half-written). Anything unusual (the
    variables already set, no writable home, a directory that is not ours alone): escpos is left to itself.
    """
    if "ESCPOS_CAPABILITIES_PICKLE_DIR" in os.environ or "ESCPOS_CAPABILITIES_FILE" in os.environ:
        return
    with contextlib.suppress(Exception):
        spec = find_spec("escpos")
        if spec is None or not spec.submodule_search_locations:
            return
        source = Path(next(iter(spec.submodule_search_locations))) / "capabilities.json"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kds" / "escpos"
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = cache.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            return  # others could plant a pickle there
        target = cache / f"{platform.python_version()}.capabilities.pickle"  # escpos's name for it
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            data = json.loads(source.read_text(encoding="utf-8"))
            fd, tmp = tempfile.mkstemp(dir=cache, suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    pickle.dump(data, f, protocol=2)
                os.replace(tmp, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        os.environ["ESCPOS_CAPABILITIES_PICKLE_DIR"] = str(cache)


_escpos_capabilities_cache()
