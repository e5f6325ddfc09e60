"""An RPC to a service that is not running leaves no warning in the caller's log.

The broker returns the mandatory request and then confirms it; kombu closes
the connection the failed publish used before the confirm is read, and
py-amqp warns that it ignores it (crm_common.logs.LateConfirms).
"""

import logging

import pytest
from amqp.abstract_channel import IGNORED_METHOD_DURING_CHANNEL_CLOSE as LATE_CONFIRMS_MESSAGE
from kombu import Exchange
from nameko.amqp.publish import Publisher, UndeliverableMessage

from crm_common.logs import LATE_CONFIRMS


def publish_to_nobody(amqp_uri):
    with pytest.raises(UndeliverableMessage):
        Publisher(amqp_uri, mandatory=True).publish(
            "hello", exchange=Exchange("amq.direct"), routing_key="nobody-listens"
        )


def amqp_warnings(caplog):
    return [record.getMessage() for record in caplog.records if record.name == "amqp"]


def test_a_returned_request_makes_amqp_warn_of_its_late_confirm(rabbit_config, caplog):
    publish_to_nobody(rabbit_config["AMQP_URI"])
    assert amqp_warnings(caplog) == [
        "Received method (60, 80) during closing channel 1. This method will be ignored"
    ]


def test_the_late_confirm_of_a_returned_request_is_not_logged(rabbit_config, caplog):
    amqp_log = logging.getLogger("amqp")
    amqp_log.addFilter(LATE_CONFIRMS)
    try:
        publish_to_nobody(rabbit_config["AMQP_URI"])
    finally:
        amqp_log.removeFilter(LATE_CONFIRMS)
    assert amqp_warnings(caplog) == []


def test_other_methods_ignored_on_a_closing_channel_are_still_logged():
    record = logging.LogRecord(
        "amqp", logging.WARNING, __file__, 0, LATE_CONFIRMS_MESSAGE, ((60, 60), 1), None
    )
    assert LATE_CONFIRMS.filter(record)
