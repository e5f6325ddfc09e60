"""Reading docker-compose.yml as compose does, for the tests that check it without Docker."""

import json
import re
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"

# `$$` (a literal dollar), `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
# `${NAME:?message}`, `${NAME?message}`, `${NAME:+alt}` and a bare `$NAME`.
_REFERENCE = re.compile(
    r"\$\$"
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)"
)


class MissingVariable(ValueError):
    pass


def interpolate(value, environ):
    """Compose's variable substitution, for the forms this file uses."""

    def substitute(match):
        if match.group(0) == "$$":
            return "$"
        name = match.group("name") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        current = environ.get(name)
        is_set = current is not None
        is_filled = bool(current)
        if op == ":-":
            return current if is_filled else arg
        if op == "-":
            return current if is_set else arg
        if op in (":?", "?"):
            if (op == ":?" and not is_filled) or not is_set:
                raise MissingVariable(f"{name}: {arg}")
            return current
        if op == ":+":
            return arg if is_filled else ""
        if op == "+":
            return arg if is_set else ""
        return current or ""

    return _REFERENCE.sub(substitute, value)


def interpolate_all(node, environ):
    if isinstance(node, dict):
        return {key: interpolate_all(value, environ) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_all(value, environ) for value in node]
    if isinstance(node, str):
        return interpolate(node, environ)
    return node


def references(node):
    """(name, operator, argument) of every variable reference in the parsed file."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from references(key)
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)
    elif isinstance(node, str):
        for match in _REFERENCE.finditer(node):
            if match.group(0) != "$$":
                yield (
                    match.group("name") or match.group("bare"),
                    match.group("op"),
                    match.group("arg"),
                )


def environment(service):
    """A service's `environment`, in either of compose's two forms, as a dict."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def header_comment(text):
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def compose_spec_errors(document):
    """What the compose specification (the schema check-jsonschema ships, a dev dependency;
    nothing is downloaded) finds wrong with `document`, one line each."""
    import jsonschema

    vendor = resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads(vendor.joinpath("compose-spec.json").read_bytes())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
    return [f"{list(error.path)}: {error.message}" for error in errors]
