"""Offline checks of the deployment files against the JSON schemas vendored in deploy/schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCHEMAS = DEPLOY / "schemas"
SCHEMA_OF_KIND = {
    ("v1", "Service"): "service-v1.json",
    ("v1", "ConfigMap"): "configmap-v1.json",
    ("v1", "PersistentVolumeClaim"): "persistentvolumeclaim-v1.json",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "horizontalpodautoscaler-autoscaling-v2.json",
    ("argoproj.io/v1alpha1", "Rollout"): "rollout-argoproj-v1alpha1.json",
    ("argoproj.io/v1alpha1", "AnalysisTemplate"): "analysistemplate-argoproj-v1alpha1.json",
}
RULE_FILE_SCHEMA = "prometheus-rules.json"
MATCHER = r'\s*[a-zA-Z_]\w*\s*(=~|!~|!=|=)\s*"[^"]*"\s*'
SELECTOR = re.compile(r"\{" + MATCHER + "(," + MATCHER + r")*\}")

# Kubernetes marks its integer fields int32 or int64; the API server refuses values outside them.
FORMATS = FormatChecker()
FORMATS.checks("int32")(lambda value: not isinstance(value, int) or -(2**31) <= value < 2**31)
FORMATS.checks("int64")(lambda value: not isinstance(value, int) or -(2**63) <= value < 2**63)


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file, empty ones left out."""
    loaded = yaml.safe_load_all(path.read_text(encoding="utf-8"))
    return [document for document in loaded if document is not None]


@cache
def validator(schema: str) -> Draft202012Validator:
    """A validator for one vendored schema, itself checked against the JSON Schema standard."""
    loaded = json.loads((SCHEMAS / schema).read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(loaded)
    return Draft202012Validator(loaded, format_checker=FORMATS)


def schema_for(document: Mapping[str, Any]) -> str:
    """The vendored schema of a manifest, by its apiVersion and kind."""
    key = (document.get("apiVersion"), document.get("kind"))
    if key not in SCHEMA_OF_KIND:
        raise LookupError(f"no vendored schema for apiVersion/kind {key}")
    return SCHEMA_OF_KIND[key]


def problems(document: Mapping[str, Any], schema: str) -> list[str]:
    """Every way the document breaks the schema, one 'path: message' line each."""
    errors = validator(schema).iter_errors(document)
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in errors
    )


def references(node: object) -> list[str]:
    """Every $ref in a schema, so that tests can prove none of them leaves the file."""
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in references(item)]
    return []


def promql_problems(expression: str) -> list[str]:
    """What is wrong with the brackets and label selectors of a PromQL expression.

    promtool is not installed, so this is a partial check: label selectors must be
    `{name="value", ...}` and every bracket must pair up.
    """
    found = []
    rest = SELECTOR.sub("", expression)
    if "{" in rest or "}" in rest:
        found.append(f"malformed label selector in {expression!r}")
    pairs, stack = {")": "(", "]": "["}, []
    for char in re.sub(r'"[^"]*"', "", rest):
        if char in "([":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            found.append(f"unmatched {char!r} in {expression!r}")
    if stack:
        found.append(f"unclosed {stack[-1]!r} in {expression!r}")
    return found
