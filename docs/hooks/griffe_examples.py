"""A griffe extension for the API reference: nanofn's docstrings head their doctests
with `Example:` (singular), which Google-style parsing reads as plain text (so markdown
would mangle the doctest output); this reads it as an `Examples:` section, rendered as
code."""

from __future__ import annotations

import re

import griffe

_HEAD = re.compile(r"^(\s*)Example:\s*$", re.M)


class SingularExamples(griffe.Extension):
    def on_instance(self, *, obj, **kwargs):
        doc = getattr(obj, "docstring", None)
        if doc is not None and "Example:" in doc.value:
            doc.value = _HEAD.sub(r"\1Examples:", doc.value)
