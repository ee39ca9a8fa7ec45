"""The HTML report: content, escaping, and rendering in a real headless Chromium.

Chromium comes from Debian's packages: ``scripts/ensure_chromium.sh`` installs it when missing
(as root, with apt-get; ``make test`` runs it first). Without it the browser tests are skipped
with that instruction, unless ``VIGIE_REQUIRE_CHROMIUM=1`` (CI), where they fail.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import struct
import subprocess
import tempfile
import uuid
import zlib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.journal import (
    ExportEvent,
    InMemoryNodeStore,
    JournalEvent,
    MerkleTree,
    PersonalFields,
    build_bundle,
    commit_personal,
    event_time,
    leaf_entry,
    leaf_hash,
    sign_checkpoint,
    vkey_for,
)
from gateway.journal.report import (
    _PALETTE,
    ReportVerification,
    render_report,
    verify_for_report,
)

ORIGIN = "vigie.test/report"
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"report").digest())
VKEY = vkey_for(ORIGIN, KEY.public_key())
START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
MEMBERS = ["cpam-75", "cpam-13", "mut-alpha", "mut-beta", "<script>alert(1)</script>", ""]
PURPOSES = ["fraud_detection", "control", "audit", "complaint", "data_subject_request"]


def _bundle(count: int = 400, *, days: int = 40) -> dict[str, Any]:
    tree = MerkleTree(InMemoryNodeStore())
    items = []
    for k in range(count):
        denied = k % 7 == 3 or (k % 11 == 0 and k % 2)
        event = JournalEvent(
            seq=k + 1,
            event_id=str(uuid.UUID(int=k + 1)),
            time=event_time(START + timedelta(minutes=k * days * 1440 // count)),
            member_id=MEMBERS[(k * k) % len(MEMBERS)],
            principal=f"agent-{k % 9}",
            cert_fingerprint="cd" * 32,
            method=["CheckClaim", "GetSuspicion", "ListAlerts", "ListAccessEvents"][k % 4],
            purpose=PURPOSES[(k // 3) % len(PURPOSES)],
            decision="deny" if denied else "allow",
            rule_ids=("cl-default-deny",) if denied else ("cl-amo-read-own-suspicion",),
            bundle_hash="ab" * 32,
            request_id=f"r{k}",
            outcome="PERMISSION_DENIED" if denied else "OK",
            record_count=k % 4,
        )
        personal = PersonalFields(subject_pseudonyms=(f"k1:person-{k % 13}",))
        salt = hashlib.sha256(b"%d" % k).digest()
        commitment = commit_personal(personal, salt)
        tree.append(leaf_hash(leaf_entry(event, commitment)))
        items.append(ExportEvent(k, event, commitment, personal, salt))
    note = sign_checkpoint(ORIGIN, tree.size, tree.root(), KEY)
    return build_bundle(VKEY, note, tree, items, complete_range=(0, count))


def test_report_shows_verification_figures_and_charts() -> None:
    bundle = _bundle()
    page = render_report(bundle, verify_for_report(bundle, VKEY))
    assert "Verification: VALID" in page and "every" not in page.split("<body>")[0]
    assert page.count("<svg") == 3 and "<rect" in page
    for section in ("verification", "summary", "accesses-over-time", "purposes", "refusals"):
        assert f'id="{section}"' in page
    assert "400 event(s) included" in page
    assert "per day" in page  # 40 days: daily buckets


def test_report_escapes_bundle_values_and_shows_no_personal_fields() -> None:
    bundle = _bundle(60)
    page = render_report(bundle, verify_for_report(bundle, VKEY))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "person-" not in page  # pseudonyms never appear in the report


def test_report_of_an_altered_bundle_says_failed_and_unverified() -> None:
    bundle = _bundle(60)
    event = bundle["events"][5]["event"]
    event["decision"] = "deny" if event["decision"] == "allow" else "allow"
    result = verify_for_report(bundle, VKEY)
    assert not result.ok
    page = render_report(bundle, result)
    assert "Verification: FAILED" in page and "UNVERIFIED" in page
    assert "event at leaf 5" in page


def test_long_periods_are_bucketed_by_month() -> None:
    bundle = _bundle(120, days=400)
    page = render_report(bundle, verify_for_report(bundle, VKEY))
    assert "per month" in page


def test_report_of_an_empty_or_malformed_bundle_still_renders() -> None:
    page = render_report({}, ReportVerification(False, None, "bundle: not a JSON document"))
    assert "Verification: FAILED" in page and "no event" in page


# -- the real browser ---------------------------------------------------------------------------
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium not installed: run `sh scripts/ensure_chromium.sh` (root, Debian)"
    if os.environ.get("VIGIE_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"{message} (VIGIE_REQUIRE_CHROMIUM=1 makes this a failure)")
    pytest.skip(message)


def _png_pixels(data: bytes) -> list[tuple[int, int, int]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG (what Chromium writes) to RGB pixels."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, "unexpected PNG layout"
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    pixels: list[tuple[int, int, int]] = []
    previous = bytearray(stride)
    for y in range(height):
        kind, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):  # undo the PNG filter of this scanline (RFC 2083 §6)
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + pred) & 0xFF
        pixels.extend(tuple(line[x : x + 3]) for x in range(0, stride, bpp))  # type: ignore[misc]
        previous = line
    return pixels


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _run_chromium(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="vigie-chromium-")
    try:
        return subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
            env={**os.environ, "HOME": profile},
        )
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = _bundle()
    path = tmp_path_factory.mktemp("report") / "report.html"
    path.write_text(render_report(bundle, verify_for_report(bundle, VKEY)), encoding="utf-8")
    return path


def test_report_renders_in_headless_chromium(report_file: Path) -> None:
    binary = _chromium()
    done = _run_chromium(binary, "--dump-dom", report_file.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    # The browser parsed every section, the charts and their bars (DOM after load).
    for section in ("verification", "summary", "accesses-over-time", "purposes", "refusals"):
        assert re.search(rf'<section id="{section}"', dom), section
    assert dom.count("<svg") == 3 and dom.count("<rect") > 50
    assert "Verification: VALID" in dom and "<script>alert" not in dom


def _screenshot(page: Path, tmp_path: Path) -> list[tuple[int, int, int]]:
    shot = tmp_path / f"{page.stem}.png"
    done = _run_chromium(
        _chromium(), f"--screenshot={shot}", "--window-size=1000,1200", page.as_uri()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    keep = os.environ.get("VIGIE_KEEP_REPORT_SCREENSHOT")
    if keep and page.stem == "report":
        shutil.copy(shot, keep)
    return _png_pixels(shot.read_bytes())


def test_report_screenshot_is_drawn(report_file: Path, tmp_path: Path) -> None:
    # Baseline in the same run: a blank page has no chart colour and nearly no ink.
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    for page, drawn in ((blank, False), (report_file, True)):
        pixels = _screenshot(page, tmp_path)
        assert len(pixels) == 1000 * 1200
        counts = Counter(pixels)
        ink = sum(n for rgb, n in counts.items() if sum(rgb) < 3 * 200) / len(pixels)
        series = counts[_hex(_PALETTE[0])]  # the first member's bars
        green = counts[_hex("#2ca02c")]  # the "VALID" verification border
        if drawn:
            assert series > 10_000 and green > 5_000 and ink > 0.05, (series, green, ink)
        else:
            assert series == green == 0 and ink < 0.001, (series, green, ink)
