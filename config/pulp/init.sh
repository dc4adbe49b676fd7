#!/bin/sh
# One-shot before Pulp's services start (the pulp-init service): the key Pulp encrypts database
# fields with, the schema, and the admin password. Safe to run again on every `docker compose up`.
set -eu
key=/var/lib/pulp/database_fields.symmetric.key
if [ ! -f "$key" ]; then
    python -c 'import sys; from cryptography.fernet import Fernet; open(sys.argv[1], "wb").write(Fernet.generate_key())' "$key"
    chmod 600 "$key"
fi
mkdir -p /var/lib/pulp/media /var/lib/pulp/assets /var/lib/pulp/tmp
pulpcore-manager migrate --noinput
pulpcore-manager reset-admin-password --password "$PULP_ADMIN_PASSWORD"
