"""An Olares manifest that is a Go template, made plain YAML for reading its metadata (pure).

Olares renders OlaresManifest.yaml with Helm's template engine before reading it, and 98 of the 347
manifests in beclab/apps use that: whole lines `{{- if and .Values.admin .Values.bfl.username (eq
.Values.admin .Values.bfl.username) }}` ... `{{- else }}` ... `{{- end }}` choose the resources and
dependencies of the admin's install (the shared server) or a user's (a client of it). The catalog
shows the admin's: the first branch of each `if`. Lines that are only an action (`{{- $x := ... -}}`)
go; an action inside a line is left as text (they are in descriptions). No template is executed.
"""

from __future__ import annotations

import re

_ACTION_LINE = re.compile(r"^\s*\{\{-?\s*(?P<word>[a-z]+\b)?[^\n]*?-?\}\}\s*$")
MAX_DEPTH = 32


def plain(text: str) -> str:
    """`text` with its line actions resolved to the first branch of each if/with/range block."""
    if "{{" not in text:
        return text
    out: list[str] = []
    # One entry per open block: whether its current branch is kept.
    stack: list[bool] = []
    for line in text.splitlines():
        m = _ACTION_LINE.match(line)
        if m is None:
            if all(stack):
                out.append(line)
            continue
        word = m.group("word")
        if word in ("if", "with", "range") and len(stack) < MAX_DEPTH:
            stack.append(all(stack))
        elif word == "else" and stack:
            stack[-1] = False
        elif word == "end" and stack:
            stack.pop()
        # anything else (a variable, a comment, a define) is dropped
    return "\n".join(out) + "\n"
