"""The JSON Schema every `--json` document of mmscn follows (mmscn/schema/, shipped with the package)."""
from __future__ import annotations

import json
import os

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schema",
                           "mmscn-output.schema.json")


def schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)
