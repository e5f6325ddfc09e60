#!/usr/bin/env bash
# Creates one database and one login role per CRM service, each role owning
# only its own database (SPEC section 2: a service never reads another's tables).
# The postgres image runs this once, when its data volume is still empty
# (/docker-entrypoint-initdb.d); the services' migrations create the tables.
#
# Database name = role name = service name. Keep CRM_DATABASES in step with the
# CRM_<SERVICE>_DB_URL settings in docker-compose.yml (tests/unit/test_compose.py
# checks both). The roles' password is CRM_DB_PASSWORD, passed in by compose.
set -euo pipefail

CRM_DATABASES=(customers pipeline interactions reports)

: "${CRM_DB_PASSWORD:?CRM_DB_PASSWORD must be set for the CRM service roles}"

for name in "${CRM_DATABASES[@]}"; do
    echo "init-databases: creating role and database ${name}"
    psql --no-psqlrc -v ON_ERROR_STOP=1 \
        --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
        -v name="${name}" -v password="${CRM_DB_PASSWORD}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
