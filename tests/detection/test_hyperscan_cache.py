"""The hyperscan database cache: compiled once, then loaded; never a wrong database, never an error."""

from __future__ import annotations

import gc
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import hyperscan
import pytest

from benchmarks.detection_corpus import load_corpus
from oob_analyzer.detection.detectors import SignatureDetector
from oob_analyzer.detection.hyperscan_cache import _HEADER_SIZE, CacheOutcome, default_cache_dir, load_or_compile
from oob_analyzer.detection.rules import RULES
from tests.system import require_command, require_root

_FLAGS = hyperscan.HS_FLAG_DOTALL | hyperscan.HS_FLAG_SINGLEMATCH
_RULES_A = [rb"union\s+select", rb"<script", rb"\.\./\.\./"]
_RULES_B = [rb"union\s+select", rb"<script", rb"/etc/passwd"]
_SAMPLES = [b"1 union  select 2", b"<script>alert(1)</script>", b"../../etc/passwd", b"plain text"]


def _database(
    cache_dir: Path | None, expressions: list[bytes] = _RULES_A, flags: int = _FLAGS
) -> tuple[object, CacheOutcome]:
    return load_or_compile(
        hyperscan,
        expressions=expressions,
        ids=range(len(expressions)),
        flags=[flags] * len(expressions),
        cache_dir=cache_dir,
    )


def _matches(database: object, data: bytes) -> list[int]:
    found: list[int] = []
    database.scan(data, match_event_handler=lambda rule, *_: found.append(rule))  # type: ignore[attr-defined]
    return sorted(found)


def _only_entry(cache_dir: Path) -> Path:
    (entry,) = cache_dir.iterdir()
    return entry


def test_a_second_build_loads_what_the_first_compiled(tmp_path: Path) -> None:
    compiled, first = _database(tmp_path)
    written = _only_entry(tmp_path).stat().st_mtime_ns
    loaded, second = _database(tmp_path)
    assert (first, second) == (CacheOutcome.COMPILED, CacheOutcome.LOADED)
    assert _only_entry(tmp_path).stat().st_mtime_ns == written  # read, not rewritten
    for sample in _SAMPLES:
        assert _matches(loaded, sample) == _matches(compiled, sample)
    assert _matches(loaded, _SAMPLES[2]) == [2]


def test_a_second_signature_detector_loads_and_judges_the_corpus_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OOB_ANALYZER_CACHE_DIR", str(tmp_path))
    caplog.set_level(logging.DEBUG, logger="oob_analyzer.detection.hyperscan_cache")
    compiling = SignatureDetector(RULES)
    assert "compiled and cached" in caplog.text
    caplog.clear()
    loading = SignatureDetector(RULES)
    assert "loaded from" in caplog.text and "compiled" not in caplog.text
    values = [request.as_wire().decode("latin-1").lower() for request in load_corpus()]
    assert any(compiling._matching_rules(value) for value in values)
    for value in values:
        assert loading._matching_rules(value) == compiling._matching_rules(value)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda content: content[: len(content) // 2], id="truncated"),
        pytest.param(lambda content: content[:-1] + bytes([content[-1] ^ 1]), id="payload-bit-flipped"),
        pytest.param(lambda content: b"", id="empty"),
        pytest.param(lambda content: b"\x00" * len(content), id="zeroed"),
        pytest.param(lambda content: bytes([content[0] ^ 1]) + content[1:], id="magic-changed"),
    ],
)
def test_a_damaged_entry_is_compiled_again_and_rewritten(tmp_path: Path, damage: object) -> None:
    _database(tmp_path)
    entry = _only_entry(tmp_path)
    entry.write_bytes(damage(entry.read_bytes()))  # type: ignore[operator]
    database, outcome = _database(tmp_path)
    assert outcome is CacheOutcome.COMPILED
    assert _matches(database, _SAMPLES[0]) == [0]
    assert _database(tmp_path)[1] is CacheOutcome.LOADED


def test_a_payload_hyperscan_rejects_is_compiled_again(tmp_path: Path) -> None:
    """A header that checks out over bytes that are no database (as from another library version)."""
    _database(tmp_path)
    entry = _only_entry(tmp_path)
    header_without_digest = entry.read_bytes()[: _HEADER_SIZE - 32]
    garbage = b"not a hyperscan database"
    entry.write_bytes(header_without_digest + hashlib.sha256(garbage).digest() + garbage)
    database, outcome = _database(tmp_path)
    assert outcome is CacheOutcome.COMPILED
    assert _matches(database, _SAMPLES[1]) == [1]


def test_an_unwritable_cache_still_gives_the_database(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    database, outcome = _database(blocked / "cache")  # no directory can be made under a file
    assert outcome is CacheOutcome.COMPILED_UNCACHED
    assert _matches(database, _SAMPLES[0]) == [0]


def test_an_unreadable_entry_still_gives_the_database(tmp_path: Path) -> None:
    _database(tmp_path)
    entry = _only_entry(tmp_path)
    entry.unlink()
    entry.mkdir()  # neither readable nor replaceable as a file
    database, outcome = _database(tmp_path)
    assert outcome is CacheOutcome.COMPILED_UNCACHED
    assert _matches(database, _SAMPLES[2]) == [2]
    assert list(tmp_path.iterdir()) == [entry]  # no temporary left behind


def test_a_read_only_cache_dir_still_gives_the_database(tmp_path: Path) -> None:
    _database(tmp_path)
    (tmp_path / "new").mkdir(mode=0o500)
    tmp_path.chmod(0o500)
    try:
        assert _database(tmp_path)[1] is CacheOutcome.LOADED
        database, _ = _database(tmp_path / "new", _RULES_B)  # compiled; kept only if the OS lets root write
        assert _matches(database, _SAMPLES[2]) == [2]
    finally:
        tmp_path.chmod(0o700)


@pytest.mark.parametrize(
    ("other_rules", "other_flags"),
    [
        pytest.param(_RULES_B, _FLAGS, id="pattern"),
        pytest.param(_RULES_A[:2], _FLAGS, id="fewer-rules"),
        pytest.param(list(reversed(_RULES_A)), _FLAGS, id="ids"),
        pytest.param(_RULES_A, hyperscan.HS_FLAG_DOTALL, id="flags"),
        pytest.param([rb"union\s+select<script", rb"\.\./\.\./"], _FLAGS, id="joined-differently"),
    ],
)
def test_different_rules_never_share_an_entry(tmp_path: Path, other_rules: list[bytes], other_flags: int) -> None:
    _database(tmp_path)
    database, outcome = _database(tmp_path, other_rules, other_flags)
    assert outcome is CacheOutcome.COMPILED
    assert len(list(tmp_path.iterdir())) == 2
    compiled_fresh, _ = _database(tmp_path / "fresh", other_rules, other_flags)
    for sample in _SAMPLES:
        assert _matches(database, sample) == _matches(compiled_fresh, sample)


def test_an_entry_under_another_rules_name_is_not_loaded(tmp_path: Path) -> None:
    _database(tmp_path, _RULES_A)
    entry_a = _only_entry(tmp_path)
    _database(tmp_path / "b", _RULES_B)
    entry_b = _only_entry(tmp_path / "b")
    entry_b.write_bytes(entry_a.read_bytes())  # rules A's database under rules B's name
    database, outcome = _database(tmp_path / "b", _RULES_B)
    assert outcome is CacheOutcome.COMPILED
    assert _matches(database, _SAMPLES[2]) == [2]


def test_the_cache_dir_is_the_override_else_xdg_else_home(tmp_path: Path) -> None:
    assert default_cache_dir({"OOB_ANALYZER_CACHE_DIR": str(tmp_path), "XDG_CACHE_HOME": "/x"}) == tmp_path
    assert default_cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/oob-analyzer")
    assert default_cache_dir({}) == Path.home() / ".cache" / "oob-analyzer"
    assert default_cache_dir({"OOB_ANALYZER_CACHE_DIR": "", "XDG_CACHE_HOME": ""}) == default_cache_dir({})


def test_without_a_cache_dir_every_build_compiles(tmp_path: Path) -> None:
    for _ in range(2):
        database, outcome = _database(None)
        assert outcome is CacheOutcome.COMPILED_UNCACHED
        assert _matches(database, _SAMPLES[1]) == [1]


def test_a_user_without_a_home_directory_still_gets_the_signatures() -> None:
    """A container's arbitrary uid: no HOME, no passwd entry, so no ~/.cache; detection runs as before."""
    require_root()
    setpriv = require_command("setpriv")
    uid = 54321
    assert not any(line.split(":")[2] == str(uid) for line in Path("/etc/passwd").read_text().splitlines())
    detect = (
        "import sys; from oob_analyzer.detection.detectors import SignatureDetector; "
        "print(SignatureDetector()._matching_rules('1 union select password from users'))"
    )
    command = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", sys.executable, "-c", detect]
    ran = subprocess.run(command, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=False)
    assert (ran.returncode, ran.stderr) == (0, "")
    assert ran.stdout.strip() not in ("", "[]")


def test_loading_leaves_the_references_to_none_as_they_were(tmp_path: Path) -> None:
    """python-hyperscan's `loadb` leaves a borrowed `None` in the scratch slot that setting the
    scratch releases, and `Scratch()` leaks a reference to `None`: in 0.9.1 the two cancel out.
    Should a later version fix only one, each load would cost `None` a reference, and a sensor
    reloading its config long enough would crash deallocating it."""
    _database(tmp_path)
    # A garbage collection inside the window frees whatever refers to `None` (-146 once,
    # after the earlier tests of the suite): collect first, then keep the collector out.
    gc.collect()
    gc.disable()
    try:
        before = sys.getrefcount(None)
        loaded = [_database(tmp_path) for _ in range(300)]
        change = sys.getrefcount(None) - before
    finally:
        gc.enable()
    assert all(outcome is CacheOutcome.LOADED for _, outcome in loaded)
    assert abs(change) < 30  # one per load (300) if they did not cancel out
