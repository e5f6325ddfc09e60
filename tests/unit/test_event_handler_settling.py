"""Our `@event_handler`: a message the broker connection can no longer settle does not
kill the service (the broker gives it back, the inbox applies it once)."""

import logging

from crm_common.handlers import EventHandler


class GoneConnection:
    def __init__(self):
        self.tried = []

    def ack_message(self, message):
        self.tried.append(("ack", message))
        raise BrokenPipeError(32, "Broken pipe")

    def requeue_message(self, message):
        self.tried.append(("requeue", message))
        raise BrokenPipeError(32, "Broken pipe")


def test_a_message_that_cannot_be_settled_is_logged_not_raised(caplog):
    handler = EventHandler("customers", "customer_created")
    handler.method_name = "apply_customer_created"
    handler.queue_consumer = GoneConnection()
    with caplog.at_level(logging.WARNING, logger="crm_common.handlers"):
        handler.handle_message_processed("applied")
        failed = (RuntimeError, RuntimeError("database away"), None)
        handler.handle_message_processed("failed", exc_info=failed)
    assert handler.queue_consumer.tried == [("ack", "applied"), ("requeue", "failed")]
    assert caplog.text.count("apply_customer_created could not settle its message") == 2
