from alembic import context

from crm_common.migrations import run_env
from services.pipeline.models import Base

run_env(context, Base.metadata)
