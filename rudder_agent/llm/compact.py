"""The answer's JSON schema as a llama.cpp grammar that admits no whitespace between tokens.

Through ``response_format`` llama.cpp lets a model lay its JSON out freely, and SmolLM2 writes it
pretty-printed: a newline and an indent before every field, each a generated token (~20 ms apiece on
one thread). The same schema sent as a llguidance grammar with fixed separators admits one layout,
one line as the prompt's answer format shows it. The embedded server's llama.cpp (xllamacpp) is built
with llguidance; other servers keep ``response_format``.
"""

from __future__ import annotations

import json

ONE_LINE = {"whitespace_flexible": False, "key_separator": ": ", "item_separator": ", "}
"""llguidance's JSON options: no free whitespace, ``{"a": 1, "b": 2}`` as the only layout."""


def one_line_grammar(schema: dict) -> str:
    """A llguidance grammar (llama.cpp's ``grammar`` field) for ``schema``'s JSON, on one line."""
    return "%llguidance {}\nstart: %json " + json.dumps({**schema, "x-guidance": ONE_LINE})
