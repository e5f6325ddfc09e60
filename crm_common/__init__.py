"""Plumbing shared by every CRM service: config, database, events, outbox, inbox."""

import warnings

# eventlet announces its deprecation on import; nameko 2.14 needs it all the same.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
