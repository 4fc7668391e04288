"""The OPRF service as a real process on loopback: `pocketscan scan --oprf`, authentication, the rate limit,
the recovery attack through the service, and OPRF verdicts against offline verdicts on edited images."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from client.cli.main import main
from scanner.errors import OprfError
from scanner.oprf_client import OprfServiceClient

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def _start_service(key: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "client.cli.main",
            "authority",
            "oprf",
            "--key",
            str(key),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--quiet",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # blocks until the service listens (or dies)
    if not line:
        proc.kill()
        raise AssertionError("OPRF service did not start: " + (proc.stderr.read() if proc.stderr else ""))
    return proc, json.loads(line)["listening"]


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    return err


@pytest.fixture()
def world(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[dict[str, object]]:
    """Authority key, OPRF key, a bank of two sample images, offline and OPRF snapshots of it."""
    auth, oprf = tmp_path / "A.key", tmp_path / "oprf.key"
    assert main(["authority", "keygen", "--out", str(auth)]) == 0
    pub = capsys.readouterr().out.strip()
    assert main(["authority", "oprf-keygen", "--out", str(oprf)]) == 0
    oprf_pub = capsys.readouterr().out.strip()
    samples = sorted(SAMPLES.glob("*.jpg"))
    bank = tmp_path / "bank.sqlite"
    assert main(["bank", "import", "--bank", str(bank), str(samples[0]), str(samples[1])]) == 0
    capsys.readouterr()
    snaps = {}
    for mode in ("offline", "oprf"):
        snaps[mode] = tmp_path / f"{mode}.bin"
        extra = ["--keys", "oprf", "--oprf-key", str(oprf)] if mode == "oprf" else ["--allow-weak-privacy"]
        # small explicit parameters: 24 x 2^16 keys keep the enumeration to seconds; 6 votes keep the noise of
        # the padded tables (1024 of 65536 keys each) negligible, and few Bloom false positives keep stitching
        # an OPRF snapshot's offline enumeration cheap
        assert (
            main(
                [
                    "snapshot",
                    "build",
                    "--bank",
                    str(bank),
                    "--key",
                    str(auth),
                    "--out",
                    str(snaps[mode]),
                    "--json",
                    "--tables",
                    "24",
                    "--bits",
                    "16",
                    "--min-votes",
                    "6",
                    "--fpr",
                    "1e-5",
                    *extra,
                ]
            )
            == 0
        )
        report = json.loads(capsys.readouterr().out)
        assert report["keys"] == mode
    assert report["oprf_public_key"] == oprf_pub
    yield {"pub": pub, "oprf": oprf, "samples": samples, "snaps": snaps, "bank": bank, "tmp": tmp_path}


def _scan(
    capsys: pytest.CaptureFixture[str], snap: Path, pub: str, paths: list[Path], *extra: str
) -> tuple[int, list[dict[str, object]]]:
    code = main(["scan", "--snapshot", str(snap), "--pubkey", pub, "--dihedral", *extra, *map(str, paths)])
    return code, [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.mark.slow
def test_scan_through_the_service_and_refusals(
    world: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    samples = world["samples"]
    assert isinstance(samples, list)
    snaps = world["snaps"]
    assert isinstance(snaps, dict)
    pub = str(world["pub"])
    proc, url = _start_service(Path(str(world["oprf"])), "--per-minute", "3", "--per-day", "100")
    try:
        # without a service an OPRF snapshot cannot be used: every image is an error
        code, rows = _scan(capsys, snaps["oprf"], pub, samples[:1])
        assert code == 2 and rows[0]["verdict"] == "error" and "OPRF" in str(rows[0]["error"])
        code, rows = _scan(capsys, snaps["oprf"], pub, samples[:3], "--oprf", url)
        assert code == 0
        assert [r["verdict"] for r in rows] == ["match", "match", "no_match"]
        # the per-minute limit (3 batches per address) refuses the fourth image: the scan says error
        code, rows = _scan(capsys, snaps["oprf"], pub, samples[:1], "--oprf", url)
        assert code == 2 and rows[0]["verdict"] == "error" and "rate limit" in str(rows[0]["error"])
        # a fresh key does not escape the per-address limit
        client = OprfServiceClient(url)
        with pytest.raises(OprfError, match="rate limit"):
            client.evaluate(
                bytes.fromhex("e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76"), 1
            )
        client.close()
        # an unreachable service is an error too, with one readable line
        code, rows = _scan(capsys, snaps["oprf"], pub, samples[:1], "--oprf", "ws://127.0.0.1:9")
        assert code == 2 and "unreachable" in str(rows[0]["error"])
    finally:
        err = _stop(proc)
    for sample in samples[:3]:  # the service logged nothing about the images
        assert sample.name not in err


@pytest.mark.slow
def test_recovery_attack_through_the_service_is_stopped_by_the_rate_limit(
    world: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    snaps = world["snaps"]
    assert isinstance(snaps, dict)
    tmp = Path(str(world["tmp"]))
    # without the service: the offline enumeration of the OPRF snapshot recovers nothing
    out = tmp / "offline-attack"
    assert (
        main(
            [
                "research",
                "attacks",
                "recover",
                str(snaps["oprf"]),
                "--bank",
                str(world["bank"]),
                "--out",
                str(out),
                "--quiet",
                "--budget-seconds",
                "600",
            ]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["recovered"] == 0 and res["exact_in_bank"] == 0 and res["data"]["completed"]
    capsys.readouterr()
    proc, url = _start_service(Path(str(world["oprf"])), "--per-minute", "2", "--per-day", "5")
    try:
        out = tmp / "service-attack"
        assert (
            main(
                [
                    "research",
                    "attacks",
                    "recover",
                    str(snaps["oprf"]),
                    "--oprf",
                    url,
                    "--out",
                    str(out),
                    "--quiet",
                    "--budget-seconds",
                    "600",
                ]
            )
            == 0
        )
    finally:
        _stop(proc)
    res = json.loads((out / "results.json").read_text())
    data = res["data"]
    assert res["recovered"] == 0 and not data["completed"]
    assert "rate limit" in data["stopped_reason"]
    assert res["digests"] == 2 * 4096  # two batches of 4096 keys, then the per-minute limit refused
    assert data["service_limits"]["per_day"] == 5
    assert data["account_days_under_limit"] == pytest.approx(24 * (1 << 16) / (4096 * 5))
    assert 0 < res["extrapolated_core_hours"] < float("inf")


def _edits(path: Path) -> dict[str, bytes]:
    with Image.open(path) as im:
        rgb = im.convert("RGB")
    w, h = rgb.size
    out = {}
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=70)
    out["jpeg70"] = buf.getvalue()
    buf = io.BytesIO()
    rgb.resize((w // 2, h // 2), Image.Resampling.BILINEAR).save(buf, "PNG")
    out["half"] = buf.getvalue()
    dx, dy = max(1, w // 200), max(1, h // 200)  # 1 % crop: half a percent off each side
    buf = io.BytesIO()
    rgb.crop((dx, dy, w - dx, h - dy)).save(buf, "PNG")
    out["crop1"] = buf.getvalue()
    return out


# ../shared next to the checkout (as the other corpus tests), or $POCKETSCAN_SHARED for a worktree elsewhere.
CORPUS = Path(os.environ.get("POCKETSCAN_SHARED", REPO.parent / "shared")) / "corpus"


@pytest.mark.slow
@pytest.mark.parametrize("folder", [SAMPLES, CORPUS], ids=["samples", "corpus"])
def test_oprf_verdicts_equal_offline_verdicts_on_edits(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bank: every image of the folder (repo samples; the corpus when ../shared exists). Queries: JPEG q70,
    half size, 1 % crop of each. Both modes calibrate for the same bank; verdicts may differ only where either
    mode's predicted match probability at the edit's PDQ distance lies strictly between 0.01 and 0.99 (the
    calibration's stated noise)."""
    from scanner.calibration import predict
    from scanner.hashing import hash_file

    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (../shared is not part of a fresh clone)")
    samples = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    auth, oprf, bank = tmp_path / "A.key", tmp_path / "oprf.key", tmp_path / "bank.sqlite"
    assert main(["authority", "keygen", "--out", str(auth)]) == 0
    pub = capsys.readouterr().out.strip()
    assert main(["authority", "oprf-keygen", "--out", str(oprf)]) == 0
    assert main(["bank", "import", "--bank", str(bank), *map(str, samples)]) == 0
    capsys.readouterr()
    reports = {}
    for mode in ("offline", "oprf"):
        extra = ["--keys", "oprf", "--oprf-key", str(oprf)] if mode == "oprf" else ["--allow-weak-privacy"]
        assert (
            main(
                [
                    "snapshot",
                    "build",
                    "--bank",
                    str(bank),
                    "--key",
                    str(auth),
                    "--out",
                    str(tmp_path / f"{mode}.bin"),
                    "--json",
                    *extra,
                ]
            )
            == 0
        )
        reports[mode] = json.loads(capsys.readouterr().out)
    queries: list[Path] = []
    distance: dict[str, int] = {}
    for sample in samples:
        original = hash_file(str(sample), dihedral=True)
        for name, data in _edits(sample).items():
            q = tmp_path / f"{sample.stem}-{name}.png"
            q.write_bytes(data)
            edited = hash_file(str(q), dihedral=True)
            assert edited.dihedral is not None
            distance[q.name] = min(
                int(
                    np.unpackbits(
                        np.frombuffer(bytes(a ^ b for a, b in zip(original.hash, v, strict=True)), np.uint8)
                    ).sum()
                )
                for v in edited.dihedral
            )
            queries.append(q)
    proc, url = _start_service(oprf, "--per-minute", "1000", "--per-day", "10000")
    try:
        _, offline = _scan(capsys, tmp_path / "offline.bin", pub, queries)
        _, online = _scan(capsys, tmp_path / "oprf.bin", pub, queries, "--oprf", url)
    finally:
        _stop(proc)
    from scanner.calibration import Params

    def probability(report: dict[str, object], d: int) -> float:
        keys = ("tables", "bits", "min_votes", "probe_radius", "bloom_bits", "bloom_hashes")
        params = Params(**{k: int(report[k]) for k in keys})  # type: ignore[call-overload]
        return predict(params, int(report["entry_count"])).recall_at(min(d, 256))  # type: ignore[call-overload]

    assert len(offline) == len(online) == len(queries)
    compared = 0
    for off, on in zip(offline, online, strict=True):
        assert off["path"] == on["path"] and on["verdict"] in ("match", "no_match", "low_quality")
        d = distance[Path(str(off["path"])).name]
        uncertain = any(0.01 < probability(reports[m], d) < 0.99 for m in reports)
        if not uncertain:
            assert off["verdict"] == on["verdict"], (off["path"], d)
            compared += 1
    uncertain = len(queries) - compared
    agree = sum(off["verdict"] == on["verdict"] for off, on in zip(offline, online, strict=True))
    print(
        f"\n{folder.name}: {len(queries)} edits, verdicts agree on {agree}; {uncertain} in the model's "
        f"uncertain band; matches offline {sum(r['verdict'] == 'match' for r in offline)}, "
        f"OPRF {sum(r['verdict'] == 'match' for r in online)}"
    )
    assert uncertain <= max(2, len(queries) // 10)
    if folder == SAMPLES:
        assert sum(r["verdict"] == "match" for r in online) >= len(queries) - 2


@pytest.mark.slow
def test_scan_profile_is_held_by_the_account_limit(
    world: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    """`scan --oprf --profile DIR` authenticates with the account key: the account's limit refuses it, and a
    fresh key from the same address is then refused by the address limit."""
    tmp = Path(str(world["tmp"]))
    profile = tmp / "profile"
    assert (
        main(
            [
                "account",
                "create",
                "--profile",
                str(profile),
                "--relay",
                "ws://127.0.0.1:9",
                "--authority-pubkey",
                str(world["pub"]),
                "--no-passphrase",
            ]
        )
        == 0
    )
    capsys.readouterr()
    samples = world["samples"]
    snaps = world["snaps"]
    assert isinstance(samples, list) and isinstance(snaps, dict)
    proc, url = _start_service(Path(str(world["oprf"])), "--per-minute", "2", "--per-day", "100")
    try:
        code, rows = _scan(
            capsys, snaps["oprf"], str(world["pub"]), samples[:3], "--oprf", url, "--profile", str(profile)
        )
        assert code == 2 and [r["verdict"] for r in rows] == ["match", "match", "error"]
        assert "rate limit reached (account" in str(rows[2]["error"])
        code, rows = _scan(capsys, snaps["oprf"], str(world["pub"]), samples[:1], "--oprf", url)
        assert code == 2 and "rate limit reached (address" in str(rows[0]["error"])
    finally:
        _stop(proc)
    args = [
        "scan",
        "--snapshot",
        str(snaps["oprf"]),
        "--pubkey",
        str(world["pub"]),
        "--profile",
        str(profile),
    ]
    assert main([*args, str(samples[0])]) == 2  # --profile without --oprf: one clear error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only used with --oprf" in err[0]
