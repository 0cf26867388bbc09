"""Hand-written notes that survive a benchmark report being written again.

A report script regenerates its whole Markdown file from the measurements.
What a person adds to explain a run (the conditions, what changed, why a
number moved) sits between `<!-- notes:NAME -->` and `<!-- /notes:NAME -->`
lines; the script reads those blocks from the old file before writing the new
one and puts each back at its place, so a rerun keeps them. Edit the text
after a rerun when it no longer describes the numbers.
"""
import re

_BLOCK = re.compile(r"^<!-- notes:(\w+) -->\n(.*?)^<!-- /notes:\1 -->$", re.S | re.M)


def kept_notes(path):
    """NAME -> text of every notes block in the file at path ({} if none)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return {}
    return {m.group(1): m.group(2).rstrip("\n") for m in _BLOCK.finditer(text)}


def notes_lines(notes, name):
    """The report's lines for block NAME: its markers around the kept text."""
    body = notes.get(name, "")
    return [f"<!-- notes:{name} -->"] + (body.split("\n") if body else []) + [f"<!-- /notes:{name} -->"]
