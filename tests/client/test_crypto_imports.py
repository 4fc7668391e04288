"""Import hygiene: the crypto core does no I/O and never touches the relay; the relay never imports it."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _modules_after(code: str) -> set[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_core_imports_no_relay_network_or_ui() -> None:
    mods = _modules_after(
        "import client.crypto.identity, client.crypto.x3dh, client.crypto.ratchet, client.crypto.kdf, "
        "client.crypto.aead, client.crypto.attachments, client.crypto.safety, client.session"
    )
    forbidden = {"relay", "websockets", "textual", "asyncio", "socket", "sqlite3",
                 "client.store", "client.net"}
    assert not {m for m in mods if m.split(".")[0] in forbidden or m in forbidden}


def test_relay_never_imports_client_crypto() -> None:
    import relay

    names = [m.name for m in pkgutil.walk_packages(relay.__path__, "relay.")]
    code = (f"import importlib\nfor n in {names!r}:\n    try:\n        importlib.import_module(n)\n"
            "    except ImportError:\n        pass")
    mods = _modules_after(code)
    assert not {m for m in mods if m.startswith(("client.crypto", "client.session", "client.store"))}
