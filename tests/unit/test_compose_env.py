""".env.example documents exactly what docker-compose.yml reads, and the scaling it allows.

Copying `.env.example` to `.env` is how an operator configures the compose
run: every variable the compose file interpolates is there with its default
and a comment, nothing else is, and the copy (with an admin token) gives a
file that passes the compose specification.
"""

import re

import pytest
import yaml

from crm_common import config
from tests.support.compose import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    ROOT,
    MissingVariable,
    compose_spec_errors,
    environment,
    interpolate_all,
    references,
)

_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")
ADMIN_TOKEN = "a-test-admin-token-of-some-length"


def parse_env_file(text):
    """[(name, value, comment lines just above its group)] of a compose `.env` file."""
    entries, comment, previous = [], [], ""
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            comment = comment + [line] if previous.startswith("#") else [line]
        elif line.strip():
            match = _ASSIGNMENT.match(line)
            assert match, f".env.example line {number} is neither a comment nor NAME=value: {line}"
            # Assignments in one block share the comment above the block.
            if not previous.strip():
                comment = []
            entries.append((match["name"], match["value"], list(comment)))
        previous = line
    return entries


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def example():
    return parse_env_file(ENV_EXAMPLE.read_text())


@pytest.fixture(scope="module")
def example_values(example):
    return {name: value for name, value, _ in example}


def test_env_example_names_exactly_the_variables_compose_reads(compose, example):
    names = [name for name, _, _ in example]
    assert len(names) == len(set(names)), "a variable is listed twice"
    referenced = {name for name, _, _ in references(compose)}
    assert set(names) == referenced, (
        f"missing from .env.example: {referenced - set(names)}; "
        f"not read by docker-compose.yml: {set(names) - referenced}"
    )


def test_every_variable_in_env_example_is_explained(example):
    for name, _, comment in example:
        assert comment, f"{name} has no comment above it in .env.example"


def test_env_example_gives_composes_defaults(compose, example_values):
    for name, op, argument in references(compose):
        if op == ":-":
            assert example_values[name] == argument, f"{name}: {example_values[name]!r}"
        if name in config.DEFAULTS and op == ":-":
            assert argument == config.DEFAULTS[name], f"{name} differs from the code's default"


def test_the_admin_token_is_left_for_the_operator_and_compose_insists(compose, example_values):
    assert example_values["CRM_ADMIN_TOKEN"] == ""
    with pytest.raises(MissingVariable):
        interpolate_all(compose, example_values)


def test_a_copy_with_a_token_gives_a_valid_compose_file(compose, example_values):
    resolved = interpolate_all(compose, {**example_values, "CRM_ADMIN_TOKEN": ADMIN_TOKEN})
    assert compose_spec_errors(resolved) == []
    for name in config.PROCESSES:
        env = environment(resolved["services"][name])
        config.from_env(env)  # every number parses
        assert env["CRM_METRICS_PORT"] == config.DEFAULTS["CRM_METRICS_PORT"]
        assert env["CRM_METRICS_HOST"] == "0.0.0.0", "Prometheus scrapes from another container"


def test_the_real_env_file_stays_out_of_git_and_the_image():
    assert "/.env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


def test_a_port_range_lets_the_gateway_scale(compose):
    environ = {"CRM_ADMIN_TOKEN": ADMIN_TOKEN, "CRM_GATEWAY_PORT": "8000-8003"}
    resolved = interpolate_all(compose, environ)
    assert resolved["services"]["gateway"]["ports"] == ["8000-8003:8000"]
    assert compose_spec_errors(resolved) == []


@pytest.mark.parametrize("name", config.PROCESSES)
def test_no_crm_container_is_pinned_to_one_instance(compose, name):
    """`--scale NAME=N` fails on a container_name or a single host port."""
    service = compose["services"][name]
    assert "container_name" not in service
    for port in service.get("ports", []):
        host = str(port).rsplit(":", 1)[0]
        assert "${" in host, f"{name} publishes a fixed host port: {port}"
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"]
