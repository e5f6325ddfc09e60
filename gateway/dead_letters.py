"""/api/v1/admin/dead-letters: events a service could not apply, for an admin.

Each consuming service keeps its own dead letters (crm_common.dead_letters);
these endpoints ask the one named in the path. A replay runs the entry's
handler again in that service: applied, the entry is gone; failed again, it
stays with the new error.
"""

from gateway import answers, schemas
from gateway.http import ApiError, api, read_optional_json, read_query, rpc_ready

BASE = "/api/v1/admin/dead-letters"
CONSUMERS = ("customers", "pipeline", "interactions", "reports")


def for_service(service, answer):
    """An entry or outcome of `service` as the API answers it: named by its service."""
    if isinstance(answer, dict) and "status" in answer:
        return {**answer, "service": service}
    if isinstance(answer, dict) and "letter" in answer:
        letter = answer["letter"]
        return {**answer, "letter": for_service(service, letter) if letter else None}
    return answer


class DeadLetterEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it."""

    @api("GET", BASE, query=schemas.StrictSchema, answers={200: answers.DeadLetterSummary})
    def dead_letter_summary(self, request):
        """How many dead letters each service keeps: waiting for a retry, and dead (admin)."""
        self.authenticate(request, "dead_letters:admin")
        read_query(request, schemas.StrictSchema())
        return {
            "services": [
                {"service": service, **self.rpc(service, "dead_letter_counts")}
                for service in CONSUMERS
            ]
        }

    @api(
        "GET",
        f"{BASE}/<string:service>",
        query=schemas.DeadLetterList,
        answers={200: answers.DeadLetterPage},
    )
    def list_dead_letters(self, request, service):
        """A service's dead letters, oldest first, without their bodies (admin).

        `status` (retrying, dead) and `event_type` filter; 404 for a service that
        consumes no events.
        """
        self.authenticate(request, "dead_letters:admin")
        query = rpc_ready(read_query(request, schemas.DeadLetterList()))
        page = self.rpc(self.consumer(service), "list_dead_letters", query)
        return {**page, "items": [for_service(service, item) for item in page["items"]]}

    @api(
        "GET",
        f"{BASE}/<string:service>/<id:letter_id>",
        answers={200: answers.DeadLetter},
    )
    def get_dead_letter(self, request, service, letter_id):
        """One dead letter with the message as it arrived (admin)."""
        self.authenticate(request, "dead_letters:admin")
        return for_service(service, self.rpc(self.consumer(service), "get_dead_letter", letter_id))

    @api(
        "POST",
        f"{BASE}/<string:service>/<id:letter_id>/replay",
        body=schemas.StrictSchema,
        body_optional=True,
        answers={200: answers.ReplayOutcome},
        errors=(409,),
    )
    def replay_dead_letter(self, request, service, letter_id):
        """Run the handler that failed the event again, now (admin).

        `outcome`: applied, already_applied (it was applied meanwhile) or ignored:
        the entry is gone; failed: it stays, dead, with the new error in `letter`.
        409 while an automatic retry of it runs.
        """
        self.authenticate(request, "dead_letters:admin")
        read_optional_json(request, schemas.StrictSchema())
        outcome = self.rpc(self.consumer(service), "replay_dead_letter", letter_id)
        return for_service(service, outcome)

    @api(
        "POST",
        f"{BASE}/<string:service>/replay",
        body=schemas.DeadLetterReplay,
        body_optional=True,
        answers={200: answers.ReplayResults},
    )
    def replay_dead_letters(self, request, service):
        """Replay a service's dead letters, oldest first, up to `limit` (100) at a time (admin).

        The dead ones unless `status` says `retrying`; `event_type` narrows them.
        """
        self.authenticate(request, "dead_letters:admin")
        body = read_optional_json(request, schemas.DeadLetterReplay())
        results = self.rpc(self.consumer(service), "replay_dead_letters", rpc_ready(body))
        return {
            **results,
            "results": [for_service(service, result) for result in results["results"]],
        }

    @api(
        "DELETE",
        f"{BASE}/<string:service>/<id:letter_id>",
        answers={204: None},
        errors=(409,),
    )
    def discard_dead_letter(self, request, service, letter_id):
        """Forget a dead letter without applying it (admin); 409 while a retry of it runs."""
        self.authenticate(request, "dead_letters:admin")
        self.rpc(self.consumer(service), "discard_dead_letter", letter_id)
        return 204, None

    @staticmethod
    def consumer(service):
        if service not in CONSUMERS:
            raise ApiError(
                404, f"No service {service!r} keeps dead letters; they are {', '.join(CONSUMERS)}."
            )
        return service
