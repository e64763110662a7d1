"""Sphinx settings for the documentation site: ``make docs`` builds it into build/docs.

The pages are the Markdown files beside this one (MyST), readable as they are on a code host;
the API reference (reference/) is generated from the docstrings; Mermaid diagrams are drawn
in the browser.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document this checkout, not whatever is installed

from voucher_core import __version__  # noqa: E402

project = "voucher-core"
author = "voucher-core contributors"
copyright = "voucher-core contributors, Apache-2.0"
release = version = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinxcontrib.mermaid",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "**/__pycache__"]

# Markdown: headings get the same anchors a code host gives them, so #links work in both.
myst_heading_anchors = 4
myst_fence_as_directive = ["mermaid"]
myst_enable_extensions = ["colon_fence"]

# The API reference, from the docstrings (which use Sphinx roles).
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "fully-qualified"  # two modules have an Operation
autodoc_default_options = {"members": True, "show-inheritance": True}

html_theme = "furo"
html_title = f"voucher-core {release}"
