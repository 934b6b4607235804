"""ResponseFormat, the structured-output request every layer above speaks, and the API's
response_format -> ResponseFormat."""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FormatType = Literal["text", "json_object", "json_schema", "grammar"]


@dataclass(frozen=True)
class ResponseFormat:
    type: FormatType = "text"
    schema: dict | None = None  # json_schema
    schema_name: str = "answer"
    description: str = ""  # what the answer is for: told to the model, or to the vendor
    strict: bool = True
    grammar: str | None = None  # GBNF text (inline, or loaded from a named grammar)
    grammar_name: str | None = None

    @property
    def structured(self) -> bool:
        return self.type in ("json_object", "json_schema")


GRAMMARS_DIR = Path(__file__).resolve().parent / "gbnf"


def named_grammars() -> dict[str, Path]:
    return {path.stem: path for path in sorted(GRAMMARS_DIR.glob("*.gbnf"))}


def response_format_from(data: dict | None) -> ResponseFormat:
    data = data or {"type": "text"}
    kind = data.get("type", "text")
    if kind == "json_schema":
        spec = data["json_schema"]
        return ResponseFormat(
            type=kind,
            schema=spec["schema"],
            schema_name=spec.get("name") or "answer",
            description=spec.get("description") or "",
            strict=spec.get("strict", True),
        )
    if kind == "grammar":
        if data.get("grammar"):
            return ResponseFormat(type=kind, grammar=data["grammar"])
        path = named_grammars()[data["name"]]
        return ResponseFormat(type=kind, grammar=path.read_text(), grammar_name=data["name"])
    return ResponseFormat(type=kind)


def format_hash(data: dict | None) -> str | None:
    """Stable hash of the schema/grammar, for the reproducibility record."""
    if not data or data.get("type", "text") == "text":
        return None
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
