"""/api/v1/reports: views the reports service builds from events.

Every answer carries `as_of` (time of the newest event applied) and
`lag_seconds` (now minus that).
"""

import json

from werkzeug.wrappers import Response

from gateway import answers, schemas
from gateway.http import ApiError, api, read_optional_json, read_query, rpc_ready
from gateway.openapi import CSV
from gateway.report_csv import report_csv

BASE = "/api/v1/reports"
ADMIN = "/api/v1/admin/reports"
# name -> (the reports service's RPC, the schema of its query parameters).
REPORTS = {
    "customers": ("customers_by_status_owner", schemas.StrictSchema),
    "sales": ("sales_report", schemas.SalesReportQuery),
    "funnel": ("funnel_report", schemas.FunnelReportQuery),
    "segments": ("segments_report", schemas.SegmentsReportQuery),
    "satisfaction": ("satisfaction_report", schemas.SatisfactionReportQuery),
    "service": ("service_report", schemas.ServiceReportQuery),
}
# One instance of each for every request: making a marshmallow schema copies its fields.
QUERY_SCHEMAS = {name: schema() for name, (_, schema) in REPORTS.items()}


# Beside a bad query: the funnel of a pipeline the reports have not heard of yet.
REPORT_ERRORS = {"funnel": (404,)}


def answering(name, answer):
    """What the endpoint of the report `name` reads (its filters), answers, and fails with."""
    return {
        "query": REPORTS[name][1],
        "answers": {200: answer},
        "errors": REPORT_ERRORS.get(name, ()),
    }


class ReportEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it."""

    @api("GET", f"{BASE}/customers", **answering("customers", answers.CustomersReport))
    def customers_report(self, request):
        """Customers per lifecycle status and owner."""
        return self.report(request, "customers")

    @api("GET", f"{BASE}/sales", **answering("sales", answers.SalesReport))
    def sales_report(self, request):
        """Won amount, won and lost deals, win rate per owner and month; weighted forecast."""
        return self.report(request, "sales")

    @api("GET", f"{BASE}/funnel", **answering("funnel", answers.FunnelReport))
    def funnel_report(self, request):
        """Per stage of a pipeline: entered, current, converted, conversion and drop, dwell.

        The default pipeline unless `pipeline_id`; 404 for a pipeline the reports have
        not heard of yet.
        """
        return self.report(request, "funnel")

    @api("GET", f"{BASE}/segments", **answering("segments", answers.SegmentsReport))
    def segments_report(self, request):
        """Per segment (RFM and engagement tiers): customers, share, avg_monetary."""
        return self.report(request, "segments")

    @api("GET", f"{BASE}/satisfaction", **answering("satisfaction", answers.SatisfactionReport))
    def satisfaction_report(self, request):
        """CSAT average, share of 4-5, distribution; by agent, month or channel; `as_of`."""
        return self.report(request, "satisfaction")

    @api("GET", f"{BASE}/service", **answering("service", answers.ServiceReport))
    def service_report(self, request):
        """Tickets opened and resolved, median response and resolution times, SLA breaches."""
        return self.report(request, "service")

    @api(
        "GET",
        f"{BASE}/segments/<string:segment>/customers",
        query=schemas.SegmentMembersQuery,
        answers={200: answers.SegmentMembers},
    )
    def segment_members(self, request, segment):
        """The customers in one segment, with the metrics that put them there.

        The segments are `high_value`, `regular`, `potential`, `at_risk` and `inactive`
        (400 for another).
        """
        self.authenticate(request, "reports:read")
        query = rpc_ready(read_query(request, schemas.SegmentMembersQuery()))
        return self.rpc("reports", "segment_members", segment, query, confirm=False)

    @api(
        "GET",
        f"{BASE}/<string:name>.csv",
        cases={name: answering(name, CSV) for name in REPORTS},
    )
    def report_as_csv(self, request, name):
        """Any report as CSV, with the same filters as its JSON."""
        report = self.report(request, name)
        return Response(
            report_csv(report),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )

    @api(
        "POST",
        f"{ADMIN}/rebuild",
        body=schemas.StrictSchema,
        body_optional=True,
        answers={202: answers.Rebuild},
        location=True,
    )
    def rebuild_reports(self, request):
        """Rebuild every view from the producers' event logs (admin).

        Answers 202 and the rebuild (the one under way, if there is one). Live events
        keep flowing meanwhile.
        """
        principal = self.authenticate(request, "reports:admin")
        read_optional_json(request, schemas.StrictSchema())
        answer = self.rpc("reports", "request_rebuild", principal.subject)
        return 202, answer["rebuild"], {"Location": f"{ADMIN}/rebuild"}

    @api(
        "GET",
        f"{ADMIN}/rebuild",
        query=schemas.StrictSchema,
        answers={200: answers.Rebuild},
        errors=(404,),
    )
    def rebuild_status(self, request):
        """The latest rebuild: status (requested, running, done), events read and applied.

        Admin only; 404 before the first rebuild.
        """
        self.authenticate(request, "reports:admin")
        read_query(request, schemas.StrictSchema())
        status = self.rpc("reports", "rebuild_status")
        if status is None:
            raise ApiError(404, "No rebuild has been asked for.")
        return status

    def report(self, request, name):
        """The report `name` for the query of `request`, from the reports service."""
        if name not in REPORTS:
            raise ApiError(404, f"No report {name!r}; the reports are {', '.join(REPORTS)}.")
        self.authenticate(request, "reports:read")
        query = rpc_ready(read_query(request, QUERY_SCHEMAS[name]))
        method = REPORTS[name][0]
        # A read: its request needs no confirm (see gateway/remote.py), and the same read
        # in flight already answers it (gateway/sharing.py).
        return self.shared_reads.ask(
            (method, json.dumps(query, sort_keys=True)),
            lambda: self.rpc("reports", method, query, confirm=False),
        )
