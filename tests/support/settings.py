"""Where the tests find RabbitMQ, PostgreSQL and Redis (the machine's own by default)."""

import os

AMQP_URI = os.environ.get("CRM_TEST_AMQP_URI", "amqp://guest:guest@127.0.0.1:5672/")
RABBIT_API_URI = os.environ.get("CRM_TEST_RABBIT_API_URI", "http://guest:guest@127.0.0.1:15672")
# A database the tests may connect to in order to create and drop their own.
PG_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ADMIN_TOKEN = "test-admin-token-0123456789"
