"""Property-based fuzzing of every parser (see targets.py)."""

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Hypothesis keeps caches (and, with a database, examples) in a directory of
# its own; under the temporary directory, not in whatever the current one is.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "debpulse-hypothesis")
