"""/api/v1/reports: views the reports service builds from events.

Every answer carries `as_of` (time of the newest event applied) and
`lag_seconds` (now minus that).
"""

from gateway import schemas
from gateway.http import api, read_query

BASE = "/api/v1/reports"


class ReportEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it."""

    @api("GET", f"{BASE}/customers")
    def customers_report(self, request):
        """Customers per lifecycle status and owner."""
        self.authenticate(request, "reports:read")
        read_query(request, schemas.StrictSchema())
        return self.rpc("reports", "customers_by_status_owner")

    @api("GET", f"{BASE}/sales")
    def sales_report(self, request):
        """Won amount, won and lost deals, win rate per owner and month; weighted forecast."""
        self.authenticate(request, "reports:read")
        query = read_query(request, schemas.SalesReportQuery())
        return self.rpc("reports", "sales_report", query)
