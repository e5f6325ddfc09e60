# One image for every CRM process: the four services and the gateway.
# docker-compose.yml picks the process with `command: ["crm", "run", NAME]`;
# all configuration comes from CRM_* environment variables (crm_common/config.py).

# The dashboard's chart library, from npm by its lock file, as `make setup` installs it.
FROM node:20-slim AS dashboard-assets
WORKDIR /assets
COPY gateway/static/dashboard/package.json gateway/static/dashboard/package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CRM_DATA_DIR=/app/data

RUN groupadd --system --gid 10001 crm \
    && useradd --system --uid 10001 --gid crm --home-dir /app --no-create-home crm

WORKDIR /app

# Dependencies first, in their own layer, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, non-editable: code, migrations and the `crm` console script.
COPY crm_common/ crm_common/
COPY services/ services/
COPY gateway/ gateway/
COPY --from=dashboard-assets /assets/node_modules gateway/static/dashboard/node_modules
RUN pip install . \
    && rm -rf build crm.egg-info \
    && mkdir -p /app/data \
    && chown crm:crm /app/data

USER crm

# Compose overrides this with `crm run NAME`; `docker run IMAGE` alone shows the commands.
CMD ["crm", "--help"]
