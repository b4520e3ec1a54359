"""Sphinx configuration of the debpulse manual (`deploy/setup docs`)."""

import sys
from pathlib import Path

# Directives that write parts of the manual from the code (docs/_ext).
sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "debpulse"
author = "the debpulse developers"
copyright = "the debpulse developers; GPL-3.0-or-later"
extensions = ["myst_parser", "debpulse_reference"]
source_suffix = {".md": "markdown"}
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build", "man"]
html_theme = "alabaster"
html_theme_options = {"show_relbars": True}
html_title = "debpulse manual"
