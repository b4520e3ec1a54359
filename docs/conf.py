"""Sphinx configuration of the debpulse manual (`deploy/setup docs`)."""

project = "debpulse"
author = "the debpulse developers"
copyright = "the debpulse developers; GPL-3.0-or-later"
extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_theme_options = {"show_relbars": True}
html_title = "debpulse manual"
# Pages link to files of the source tree (deploy/..., tests/...) as code,
# not as documents.
suppress_warnings: list[str] = []
