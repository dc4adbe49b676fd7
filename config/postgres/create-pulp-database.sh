#!/bin/sh
# Run once by the postgres image on an empty data directory: Pulp gets its own role and database
# beside index-proxy's (POSTGRES_USER / POSTGRES_DB).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v pulp_password="$PULP_DB_PASSWORD" <<'SQL'
CREATE ROLE pulp LOGIN PASSWORD :'pulp_password';
CREATE DATABASE pulp OWNER pulp;
SQL
