"""Fixtures for the adversarial table: a case written into a temp dir, and its marker folder."""
from __future__ import annotations

import pytest

from .cases import write_case


@pytest.fixture
def make_case(tmp_path):
    """``make_case(case) -> (lab folder, markers folder)``."""
    def _make(case):
        markers = tmp_path / "markers"
        return write_case(case, tmp_path / "sub", markers), markers
    return _make
