"""Fixtures of the reassembly tests."""

from __future__ import annotations

import pytest

import reassembly.tracker


@pytest.fixture(params=["compiled", "python"])
def either_tracker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test once with the compiled tracker (when built) and once with the pure-Python one."""
    if request.param == "python":
        monkeypatch.setattr(reassembly.tracker, "_fasttrack", None)
    elif reassembly.tracker._fasttrack is None:
        pytest.skip("reassembly._fasttrack is not built")
    return request.param
