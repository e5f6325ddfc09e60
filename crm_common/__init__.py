"""Plumbing shared by every CRM service: config, database, events, outbox, inbox."""

import importlib.metadata
import warnings

# eventlet announces its deprecation on import; nameko 2.14 needs it all the same.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")


def version():
    """The installed package's version, which the HTTP and event API documents both give."""
    try:
        return importlib.metadata.version("crm")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "0.0.0"
