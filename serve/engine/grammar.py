"""GBNF grammars for constrained decoding: any JSON object, a JSON schema, or a tool call.

The grammar sampler masks every token that would break the grammar, so the answer parses by
construction (unless ``max_tokens`` cuts it short, which the finish reason ``length`` says).
Schemas are converted by llama-cpp-python's own converter, the one llama.cpp's server uses.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

# Text that is not a tool call: anything whose first character cannot open a JSON object.
PROSE_RULES = 'prose ::= [^{ \\t\\n\\r] [^\\x00]*\n'
ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)


class SchemaError(ValueError):
    """A schema the converter cannot turn into a grammar; the message names no schema content."""


def json_object_grammar() -> str:
    return JSON_GBNF


def schema_grammar(schema: dict[str, Any], property_order: list[str] | None = None) -> str:
    try:
        return json_schema_to_gbnf(json.dumps(schema), property_order)
    except (ValueError, KeyError, TypeError, AssertionError, NotImplementedError, RecursionError) as error:
        raise SchemaError(f"the JSON schema cannot be enforced ({type(error).__name__})") from None


def tool_call_schema(tools: list[tuple[str, dict[str, Any] | None]]) -> dict[str, Any]:
    """``{"name": <one of the tools>, "arguments": <that tool's parameters>}``."""
    alternatives = [
        {
            "type": "object",
            "properties": {"name": {"const": name}, "arguments": parameters or {"type": "object"}},
            "required": ["name", "arguments"],
        }
        for name, parameters in tools
    ]
    return alternatives[0] if len(alternatives) == 1 else {"anyOf": alternatives}


def tool_call_grammar(tools: list[tuple[str, dict[str, Any] | None]], *, allow_prose: bool) -> str:
    """A call of one of ``tools``; with ``allow_prose`` (tool_choice auto) plain text instead.

    Prose may not start with ``{`` or white space, so the first character decides which one
    the model is writing and a streamed answer can be forwarded as text from then on.
    """
    call = schema_grammar(tool_call_schema(tools), ["name", "arguments"])
    if not allow_prose:
        return call
    renamed = ROOT_RULE.sub("tool-call ::=", call, count=1)
    return f"root ::= tool-call | prose\n{PROSE_RULES}{renamed}"
