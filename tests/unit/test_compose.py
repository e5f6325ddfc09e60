"""docker-compose.yml, the Dockerfile and the PostgreSQL init script agree with the code.

No Docker engine runs where the tests run, so these checks stand in for
`docker compose up`: every process compose starts is one `crm run` knows, every
CRM_* variable it sets is a setting crm_common.config reads (or one of the few
compose-only variables documented at the top of the file), each service has a
database and a role of its own, and the image installs the project. Nothing
here touches the network.
"""

import json
import os
import re
import shlex
import tomllib
from urllib.parse import urlsplit

import pytest
import yaml
from sqlalchemy.engine import make_url

from crm_common import cli, config
from tests.support.compose import (
    COMPOSE_FILE,
    ROOT,
    MissingVariable,
    compose_spec_errors,
    environment,
    header_comment,
    interpolate,
    interpolate_all,
    references,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
INIT_SCRIPT = ROOT / "docker" / "postgres" / "init-databases.sh"
PYPROJECT = ROOT / "pyproject.toml"

APP_CONTAINERS = (*config.SERVICES, "gateway")
INFRASTRUCTURE = ("rabbitmq", "postgres", "redis")
KNOWN_SETTINGS = set(config.DEFAULTS) | {config.db_url_key(name) for name in config.SERVICES}
# Read by docker-compose.yml only, never by the CRM code; each is documented in
# the comment at the top of the compose file.
COMPOSE_ONLY_VARIABLES = {
    "CRM_GATEWAY_PORT",
    "CRM_DB_PASSWORD",
    "CRM_POSTGRES_PASSWORD",
    "CRM_RABBITMQ_USER",
    "CRM_RABBITMQ_PASSWORD",
    "CRM_RABBITMQ_PORT",
    "CRM_RABBITMQ_MANAGEMENT_PORT",
    "CRM_REDIS_PORT",
}
DB_SCHEME = "postgresql+psycopg2"
# What a deployment has to provide before `docker compose up` starts at all.
REQUIRED_ENV = {"CRM_ADMIN_TOKEN": "a-test-admin-token-of-some-length"}


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def copy_sources(arguments):
    if arguments.startswith("["):
        parts = json.loads(arguments)
    else:
        parts = [part for part in shlex.split(arguments) if not part.startswith("--")]
    return parts[:-1]


@pytest.fixture(scope="module")
def compose_text():
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text):
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose):
    return compose["services"]


@pytest.fixture(scope="module")
def resolved(compose):
    """The compose file as compose sees it with only the required variables set."""
    return interpolate_all(compose, REQUIRED_ENV)


@pytest.fixture(scope="module")
def created_databases():
    match = re.search(r"^CRM_DATABASES=\(([^)]*)\)", INIT_SCRIPT.read_text(), re.MULTILINE)
    assert match, f"{INIT_SCRIPT.relative_to(ROOT)} must list its databases in CRM_DATABASES=(...)"
    return match.group(1).split()


@pytest.fixture(scope="module")
def dockerfile():
    assert DOCKERFILE.is_file(), "the Dockerfile is missing"
    return dockerfile_instructions(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads(PYPROJECT.read_text())


# --- the processes ------------------------------------------------------------------------


def test_compose_runs_exactly_the_processes_crm_run_knows(services):
    assert set(cli.SERVICE_CLASSES) == set(APP_CONTAINERS)
    assert set(services) == set(APP_CONTAINERS) | set(INFRASTRUCTURE)


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_each_app_container_runs_crm_run_name(services, name):
    assert name in services, f"docker-compose.yml has no service {name!r}"
    assert name in cli.SERVICE_CLASSES, f"`crm run {name}` would be refused"
    assert services[name]["command"] == ["crm", "run", name]
    assert "entrypoint" not in services[name]
    assert "build" in services[name], f"{name} must run the project's own image"


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_containers_can_scale_and_restart(services, name):
    service = services[name]
    assert "container_name" not in service, "a fixed container name breaks --scale"
    assert service.get("restart") == "unless-stopped"
    if name != "gateway":
        assert "ports" not in service, "a fixed host port breaks --scale"


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_containers_are_configured_by_environment_only(services, name):
    service = services[name]
    assert "env_file" not in service
    assert "volumes" not in service
    assert "configs" not in service


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_containers_wait_for_healthy_infrastructure(services, name):
    depends_on = services[name].get("depends_on")
    assert isinstance(depends_on, dict), "depends_on needs conditions, not a list"
    for dependency in INFRASTRUCTURE:
        assert depends_on.get(dependency) == {"condition": "service_healthy"}, dependency


@pytest.mark.parametrize("name", [*APP_CONTAINERS, *INFRASTRUCTURE])
def test_every_container_has_a_healthcheck_and_restarts(services, name):
    healthcheck = services[name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable")
    test = healthcheck["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1
    assert "restart" in services[name]


def test_service_healthchecks_reach_the_broker_from_inside(services):
    for name in config.SERVICES:
        command = " ".join(services[name]["healthcheck"]["test"])
        assert "CRM_AMQP_URI" in command
        # Read inside the container, not interpolated by compose from the host.
        assert "$" not in command


# --- the variables ------------------------------------------------------------------------


def test_every_crm_variable_in_the_file_is_known(compose_text):
    named = set(re.findall(r"\bCRM_[A-Z0-9_]*[A-Z0-9]\b", compose_text))
    unknown = named - KNOWN_SETTINGS - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"not a CRM setting nor a documented compose-only variable: {unknown}"


def test_every_environment_key_is_a_setting(services):
    for name in APP_CONTAINERS:
        unknown = set(environment(services[name])) - KNOWN_SETTINGS
        assert not unknown, f"{name} sets variables the CRM never reads: {unknown}"


def test_only_known_variables_are_interpolated(compose):
    referenced = {name for name, _, _ in references(compose)}
    unknown = referenced - KNOWN_SETTINGS - COMPOSE_ONLY_VARIABLES
    assert not unknown, f"compose reads host variables nobody documented: {unknown}"


def test_compose_only_variables_are_documented_used_and_not_settings(compose, compose_text):
    header = header_comment(compose_text)
    referenced = {name for name, _, _ in references(compose)}
    for name in COMPOSE_ONLY_VARIABLES:
        assert name not in KNOWN_SETTINGS
        assert re.search(rf"\b{name}=\S", header), f"{name} is not documented with its default"
        assert name in referenced, f"{name} is documented but never used"


def test_interpolation_defaults_match_the_code(compose, compose_text):
    header = header_comment(compose_text)
    for name, op, arg in references(compose):
        if op != ":-":
            continue
        if name in config.DEFAULTS:
            assert arg == config.DEFAULTS[name], f"{name} defaults to {arg!r} in compose"
        else:
            assert f"{name}={arg}" in header, f"{name}'s default {arg!r} is not documented"


def test_every_variable_with_a_reference_has_a_default_except_required_ones(compose):
    for name, op, _ in references(compose):
        if name in REQUIRED_ENV:
            assert op == ":?", f"{name} must stop compose when unset"
        else:
            assert op in (":-", "-"), f"${{{name}}} has no default"


def test_gateway_requires_an_admin_token(services):
    raw = environment(services["gateway"])["CRM_ADMIN_TOKEN"]
    assert re.fullmatch(r"\$\{CRM_ADMIN_TOKEN:\?[^}]+\}", raw), raw
    with pytest.raises(MissingVariable):
        interpolate(raw, {})
    with pytest.raises(MissingVariable):
        interpolate(raw, {"CRM_ADMIN_TOKEN": ""})
    assert interpolate(raw, REQUIRED_ENV) == REQUIRED_ENV["CRM_ADMIN_TOKEN"]


def test_gateway_listens_on_all_interfaces_and_is_published(services):
    gateway = services["gateway"]
    env = environment(gateway)
    assert env["CRM_GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    assert interpolate_all(gateway["ports"], {}) == ["8000:8000"]
    assert interpolate_all(gateway["ports"], {"CRM_GATEWAY_PORT": "9000"}) == ["9000:8000"]
    probe = " ".join(gateway["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/health" in probe
    for key in ("CRM_RPC_TIMEOUT", "CRM_ADMIN_TOKEN"):
        assert key in env


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_app_containers_reach_broker_and_redis_on_compose_hosts(resolved, name):
    env = environment(resolved["services"][name])
    for key in ("CRM_AMQP_URI", "CRM_REDIS_URL", "CRM_LOG_LEVEL"):
        assert key in env, f"{name} lacks {key}"
    assert urlsplit(env["CRM_AMQP_URI"]).hostname == "rabbitmq"
    assert urlsplit(env["CRM_REDIS_URL"]).hostname == "redis"
    config.from_env(env)  # numbers parse, nothing is malformed


def test_broker_credentials_match_rabbitmqs_own(compose):
    for environ in (REQUIRED_ENV, {**REQUIRED_ENV, "CRM_RABBITMQ_PASSWORD": "other-secret"}):
        services = interpolate_all(compose, environ)["services"]
        rabbit = environment(services["rabbitmq"])
        for name in APP_CONTAINERS:
            url = urlsplit(environment(services[name])["CRM_AMQP_URI"])
            assert url.username == rabbit["RABBITMQ_DEFAULT_USER"]
            assert url.password == rabbit["RABBITMQ_DEFAULT_PASS"]


# --- the databases ------------------------------------------------------------------------


@pytest.mark.parametrize("name", config.SERVICES)
def test_each_service_has_its_own_postgres_url(services, created_databases, name):
    env = environment(services[name])
    key = config.db_url_key(name)
    assert key in env, f"{name} has no {key}"
    others = {config.db_url_key(other) for other in config.SERVICES} - {key}
    assert not others & set(env), f"{name} is given another service's database"
    raw = env[key]
    assert raw.startswith(f"{DB_SCHEME}://"), f"{key} must name the driver: {raw}"
    url = make_url(interpolate(raw, REQUIRED_ENV))
    assert url.drivername == DB_SCHEME
    assert url.host == "postgres"
    assert url.port in (None, 5432)
    assert url.database in created_databases, f"init-databases.sh never creates {url.database}"
    assert url.username == url.database, "each service logs in as its own role"


def test_no_two_services_share_a_database(resolved, created_databases):
    databases = [
        make_url(environment(resolved["services"][name])[config.db_url_key(name)]).database
        for name in config.SERVICES
    ]
    assert len(set(databases)) == len(databases), databases
    assert sorted(databases) == sorted(created_databases)
    assert len(set(created_databases)) == len(created_databases)


def test_gateway_has_no_database(services):
    env = environment(services["gateway"])
    assert not {config.db_url_key(name) for name in config.SERVICES} & set(env)


def test_database_password_reaches_the_init_script_and_the_urls(compose):
    for environ in (REQUIRED_ENV, {**REQUIRED_ENV, "CRM_DB_PASSWORD": "another-secret"}):
        services = interpolate_all(compose, environ)["services"]
        password = environment(services["postgres"])["CRM_DB_PASSWORD"]
        assert password == environ.get("CRM_DB_PASSWORD", "crm")
        for name in config.SERVICES:
            url = make_url(environment(services[name])[config.db_url_key(name)])
            assert url.password == password


def test_postgres_runs_the_init_script(services):
    postgres = services["postgres"]
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
    assert init, "init-databases.sh is not mounted into /docker-entrypoint-initdb.d"
    assert (ROOT / init[0][0]).resolve() == INIT_SCRIPT
    assert os.access(INIT_SCRIPT, os.X_OK), "the postgres image sources, not runs, a non-executable"
    script = INIT_SCRIPT.read_text()
    assert script.startswith("#!")
    assert "set -e" in script and "ON_ERROR_STOP=1" in script


def test_data_lives_in_named_volumes(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, target in (
        ("postgres", "/var/lib/postgresql/data"),
        ("rabbitmq", "/var/lib/rabbitmq"),
    ):
        sources = [v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == target]
        assert sources and sources[0] in declared, f"{name} keeps its data in no named volume"


def test_infrastructure_images(services):
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "rabbitmq-diagnostics" in services["rabbitmq"]["healthcheck"]["test"]
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])


# --- the image ----------------------------------------------------------------------------


def test_dockerfile_builds_on_python_311_slim(dockerfile, pyproject):
    froms = [arguments for keyword, arguments in dockerfile if keyword == "FROM"]
    assert froms and froms[-1].split()[0] == "python:3.11-slim"
    assert ">=3.11" in pyproject["project"]["requires-python"].replace(" ", "")


def test_dockerfile_copies_only_what_exists_and_is_not_ignored(dockerfile):
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    copied = [
        source
        for keyword, arguments in dockerfile
        # COPY --from takes from an earlier build stage, not from the project's folder.
        if keyword in ("COPY", "ADD") and "--from=" not in arguments
        for source in copy_sources(arguments)
    ]
    assert copied
    for source in copied:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        assert source.rstrip("/") not in ignored, f".dockerignore drops {source}"


def test_dockerfile_copies_what_pip_install_needs(dockerfile, pyproject):
    copied = {
        source.rstrip("/")
        for keyword, arguments in dockerfile
        if keyword == "COPY"
        for source in copy_sources(arguments)
    }
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    needed = {"pyproject.toml", pyproject["project"]["readme"]}
    needed |= {pattern.rstrip("*") for pattern in packages}
    assert needed <= copied, f"not copied into the image: {needed - copied}"


def test_dockerfile_installs_the_project_and_drops_root(dockerfile):
    runs = [arguments for keyword, arguments in dockerfile if keyword == "RUN"]
    installs = [run for run in runs if re.search(r"\bpip install (?:[^&;|]*\s)?\.(?:\s|$)", run)]
    assert installs, "no `pip install .` in the Dockerfile"
    assert not any(re.search(r"\s(-e|--editable)\b", run) for run in installs)
    assert ("WORKDIR", "/app") in dockerfile
    users = [arguments for keyword, arguments in dockerfile if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as root"
    last_user = max(i for i, (keyword, _) in enumerate(dockerfile) if keyword == "USER")
    assert all(keyword != "RUN" for keyword, _ in dockerfile[last_user:])
    assert not any(keyword == "ENTRYPOINT" for keyword, _ in dockerfile), (
        "compose's `command: [crm, run, NAME]` must be the whole command line"
    )


def test_crm_console_script_exists(pyproject):
    assert pyproject["project"]["scripts"]["crm"] == "crm_common.cli:main"
    assert callable(cli.main)


# --- the compose specification ------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(resolved):
    """Against the schema that check-jsonschema ships (a dev dependency); nothing is downloaded."""
    errors = compose_spec_errors(resolved)
    assert not errors, "\n".join(errors)


def settings_named_in(folder):
    """The CRM settings a process's own code names (its package's modules)."""
    named = set()
    for path in (ROOT / folder).rglob("*.py"):
        named |= set(re.findall(r"\bCRM_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()))
    return named & set(config.DEFAULTS)


@pytest.mark.parametrize("name", APP_CONTAINERS)
def test_each_container_is_given_the_settings_its_code_reads(services, name):
    """A setting an operator puts in `.env` reaches every process that reads it."""
    folder = "gateway" if name == "gateway" else f"services/{name}"
    missing = settings_named_in(folder) - set(environment(services[name]))
    assert not missing, f"{name} reads {missing} but docker-compose.yml does not pass them"


def test_the_local_runs_hint_starts_broker_and_redis_with_what_compose_requires(compose):
    """`crm up` tells how to start RabbitMQ and Redis with compose when it cannot reach
    them: the command it gives passes compose's interpolation of the whole file."""
    assignment, command = cli.START_WITH_COMPOSE.strip("`").split(" docker compose ")
    assert command == "up -d rabbitmq redis"
    name, _ = assignment.split("=")
    with pytest.raises(MissingVariable):
        interpolate_all(compose, {})
    interpolate_all(compose, {name: REQUIRED_ENV[name]})
