"""Transports from the config (file; USB and serial as optional extras), and `kds printers status|test`,
`kds printer-emulator --help` through the real command line."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kds.config import StoreConfig, config_from_dict
from kdsapp.cli import main
from printers.admin import print_test_page, printers_status
from printers.decoder import decode
from printers.emulator import EmulatorState, PrinterEmulator
from printers.transports import FileLink, MissingExtra, open_link
from tests.conftest import ROOT, SAMPLE_CONFIG
from tests.printers.conftest import printing_config


def with_printer(config: StoreConfig, **printer: object) -> StoreConfig:
    raw = config.model_dump(mode="json")
    raw["printers"].append({"id": "extra-printer", **printer})
    return config_from_dict(raw)


def test_file_transport_appends_the_bytes(tmp_path: Path, config: StoreConfig) -> None:
    out = tmp_path / "lp0"
    cfg = with_printer(config, transport="file", path=str(out), status_query=False)
    assert print_test_page(cfg, "extra-printer") == 0
    assert print_test_page(cfg, "extra-printer") == 0
    pages = decode(out.read_bytes())
    assert len(pages) == 2 and "TEST PAGE" in pages[0].text(48)
    link = open_link(cfg.printer("extra-printer"))  # type: ignore[arg-type]
    assert isinstance(link, FileLink) and not link.can_read
    link.close()


def test_usb_and_serial_say_which_extra_to_install(config: StoreConfig) -> None:
    from escpos.printer import Serial, Usb

    usb = with_printer(config, transport="usb", usb_vendor=0x04B8, usb_product=0x0202)
    serial = with_printer(config, transport="serial", path="/dev/ttyUSB9")
    for cfg, usable, extra in ((usb, Usb.is_usable(), "usb"), (serial, Serial.is_usable(), "serial")):
        p = cfg.printer("extra-printer")
        assert p is not None
        if usable:
            with pytest.raises(OSError):  # installed, but no such device here
                open_link(p)
        else:
            with pytest.raises(MissingExtra, match=rf"hema-kds\[{extra}\]"):
                open_link(p)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"usb", "serial"} <= set(extras)


async def test_printers_status_and_test_page(
    config: StoreConfig, emulators: dict[str, PrinterEmulator], capsys: pytest.CaptureFixture[str]
) -> None:
    await emulators["bar-printer"].set_state(EmulatorState.PAPER_OUT)
    cfg = printing_config(config, emulators, down={"grill-printer"})
    code = await asyncio.to_thread(printers_status, cfg)
    out = capsys.readouterr().out
    assert code == 1
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert set(rows) == {p.id for p in config.printers}
    assert " ok " in rows["wok-printer"] and "paper_out" in rows["bar-printer"] and "offline" in rows["grill-printer"]

    assert await asyncio.to_thread(print_test_page, cfg, "wok-printer") == 0
    assert "test page printed on wok-printer" in capsys.readouterr().out
    assert len(emulators["wok-printer"].jobs) == 1 and "TEST PAGE" in emulators["wok-printer"].jobs[0].text
    assert await asyncio.to_thread(print_test_page, cfg, "bar-printer") == 1
    assert "paper_out" in capsys.readouterr().err


def test_the_commands_exist(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["printer-emulator", "--help"], ["printers", "status", "--help"], ["printers", "test", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "paper out" in capsys.readouterr().out
    assert main(["printers", "test", "no-such-printer", "--config", str(SAMPLE_CONFIG)]) == 2


def test_the_emulator_command_runs_and_stops(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kdsapp.cli", "printer-emulator", "--port", "0", "--out", str(tmp_path / "out")],
        cwd=ROOT,
        input="status\n",
        capture_output=True,
        text=True,
        timeout=20,
        env={"PATH": "/usr/bin:/bin", "KDS_EMULATOR_EXIT_ON_EOF": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "printer emulator on 127.0.0.1:" in proc.stdout and ": ok, 0 jobs printed" in proc.stdout
