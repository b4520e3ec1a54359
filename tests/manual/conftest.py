"""The manual built once for the tests that read what it says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from testbus import ROOT


@pytest.fixture(scope="session")
def built_manual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML manual, built from docs/ as `deploy/setup docs` builds it."""
    out = tmp_path_factory.mktemp("manual")
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-E", "-b", "html", str(ROOT / "docs"), str(out)],
                   check=True, capture_output=True, timeout=300)
    return out
