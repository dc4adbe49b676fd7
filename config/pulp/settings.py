"""Pulp's settings in docker-compose.yml (mounted at /etc/pulp/settings.py, read by every Pulp service).

Secrets come from the environment docker-compose.yml sets; nothing here is specific to one machine.
"""

import os

SECRET_KEY = os.environ["PULP_SECRET_KEY"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": "postgres",
        "PORT": 5432,
        "NAME": "pulp",
        "USER": "pulp",
        "PASSWORD": os.environ["PULP_DB_PASSWORD"],
        "CONN_MAX_AGE": 0,
    }
}
# Written by the pulp-setup service on first start (a Fernet key), shared through the pulp volume.
DB_ENCRYPTION_KEY = "/var/lib/pulp/database_fields.symmetric.key"
MEDIA_ROOT = "/var/lib/pulp/media"
STATIC_ROOT = "/var/lib/pulp/assets"
WORKING_DIRECTORY = "/var/lib/pulp/tmp"
FILE_UPLOAD_TEMP_DIR = "/var/lib/pulp/tmp"
# Names as seen on the compose network, which is where index-proxy reads Pulp's pages and files.
CONTENT_ORIGIN = "http://pulp-content:24816"
PYPI_API_HOSTNAME = "http://pulp-api:24817"
ALLOWED_HOSTS = ["pulp-api", "pulp-content", "localhost", "127.0.0.1"]
ALLOWED_CONTENT_CHECKSUMS = ["sha224", "sha256", "sha384", "sha512"]
CACHE_ENABLED = False  # True would need Redis
ANALYTICS = False  # otherwise a task posts telemetry to Pulp's project
OTEL_ENABLED = False

# pulp_index_proxy (pulp_plugin/): announce new Python content to index-proxy through the balancer;
# whichever replica takes the request queues it in the shared database.
INDEX_PROXY_URL = "http://balancer:8080/"
INDEX_PROXY_TOKEN = os.environ["INDEX_PROXY_ADMIN_TOKEN"]
INDEX_PROXY_INDEX = "internal"  # indexes[].name of this Pulp in config/compose.yaml
