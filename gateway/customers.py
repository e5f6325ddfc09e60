"""/api/v1/customers: profiles, search, duplicates, merge, import, export, erasure."""

import json
import uuid

from werkzeug.wrappers import Response

from crm_common.validation import unstorable_path
from gateway import answers, schemas
from gateway.http import ApiError, api, read_json, read_query, read_upload
from gateway.openapi import CSV, CSV_UPLOAD
from gateway.timeline import timeline_page

BASE = "/api/v1/customers"
MAX_MAPPED_COLUMNS = 200


class CustomerEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it."""

    @api(
        "POST",
        BASE,
        query=schemas.CreateOptions,
        body=schemas.CustomerCreate,
        answers={201: answers.Customer},
        location=True,
        errors=(409,),
    )
    def create_customer(self, request):
        """Create a customer.

        A likely duplicate of an existing customer (same email or phone, or a similar
        name in the same company) is a 409 naming it (`existing_id`, `score`, `matched`),
        unless `allow_duplicate=true`.
        """
        self.authenticate(request, "customers:write")
        options = read_query(request, schemas.CreateOptions())
        payload = read_json(request, schemas.CustomerCreate())
        customer = self.rpc("customers", "create_customer", payload, options["allow_duplicate"])
        return 201, customer, {"Location": f"{BASE}/{customer['id']}"}

    @api("GET", BASE, query=schemas.CustomerList, answers={200: answers.CustomerPage})
    def list_customers(self, request):
        """Customers, oldest first; search with `q`, filter by tag, owner, status, segment.

        `q` finds customers whose name, company, email or phone has a word beginning
        with each word of the query, ignoring case and accents.
        """
        self.authenticate(request, "customers:read")
        return self.rpc(
            "customers",
            "list_customers",
            read_query(request, schemas.CustomerList()),
            confirm=False,
        )

    @api("GET", f"{BASE}/export", query=schemas.CustomerFilters, answers={200: CSV})
    def export_customers(self, request):
        """The (filtered) list as CSV, every match."""
        self.authenticate(request, "customers:export")
        filters = read_query(request, schemas.CustomerFilters())
        text = self.rpc(
            "customers", "export_customers", filters, timeout=self.config["CRM_IMPORT_TIMEOUT"]
        )
        return Response(
            text,
            mimetype="text/csv",
            headers={"Content-Disposition": 'attachment; filename="customers.csv"'},
        )

    @api(
        "POST",
        f"{BASE}/import",
        max_body="CRM_MAX_IMPORT_BYTES",
        query=schemas.ImportOptions,
        body=CSV_UPLOAD,
        answers={200: answers.ImportResult},
    )
    def import_customers(self, request):
        """Import customers from a CSV file: the body (text/csv) or the form field `file`.

        Columns map to fields by name (`attributes.<key>` for an attribute), or by
        `mapping`. A row with a known email updates that customer; a likely duplicate
        is reported, not created, unless `allow_duplicates=true`; an invalid row is
        reported with its line number. One bad row never costs the good ones.
        """
        self.authenticate(request, "customers:write")
        options = read_query(request, schemas.ImportOptions())
        if request.mimetype not in (
            "text/csv",
            "text/plain",
            "application/csv",
            "multipart/form-data",
        ):
            raise ApiError(
                415, "Send the CSV as text/csv, or as the field 'file' of multipart/form-data."
            )
        raw, form = read_upload(request)
        mapping = mapping_of(form.get("mapping") or options.get("mapping"))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                400,
                f"The file is not UTF-8 text (byte {exc.start} cannot be read).",
                fields={"file": ["Not UTF-8."]},
            ) from None
        return self.rpc(
            "customers",
            "import_customers",
            text,
            mapping,
            options["allow_duplicates"],
            timeout=self.config["CRM_IMPORT_TIMEOUT"],
        )

    @api("GET", f"{BASE}/duplicates", query=schemas.Page, answers={200: answers.DuplicatePage})
    def find_duplicates(self, request):
        """Likely duplicate pairs among the customers, with a score and the fields that matched."""
        self.authenticate(request, "customers:read")
        return self.rpc(
            "customers", "find_duplicates", read_query(request, schemas.Page()), confirm=False
        )

    @api("GET", f"{BASE}/<id:customer_id>", answers={200: answers.Customer})
    def get_customer(self, request, customer_id):
        """One customer; the id of a merged customer answers with its survivor."""
        self.authenticate(request, "customers:read")
        return self.rpc(
            "customers", "get_customer", canonical_id(customer_id, "customer"), confirm=False
        )

    @api(
        "PATCH",
        f"{BASE}/<id:customer_id>",
        query=schemas.CreateOptions,
        body=schemas.CustomerPatch,
        answers={200: answers.Customer},
        errors=(409, 422),
    )
    def update_customer(self, request, customer_id):
        """Change the fields sent; `attributes` is replaced whole.

        409 on a likely duplicate unless `allow_duplicate=true`; 422 for a merged or
        erased customer.
        """
        self.authenticate(request, "customers:write")
        options = read_query(request, schemas.CreateOptions())
        payload = read_json(request, schemas.CustomerPatch())
        return self.rpc(
            "customers",
            "update_customer",
            canonical_id(customer_id, "customer"),
            payload,
            options["allow_duplicate"],
        )

    @api("DELETE", f"{BASE}/<id:customer_id>", answers={200: answers.Customer}, errors=(422,))
    def erase_customer(self, request, customer_id):
        """GDPR erasure: the record stays, anonymous, for the reports.

        Personal fields go, here and in the customers event log; `customer_erased` tells
        the other services to erase theirs.
        """
        self.authenticate(request, "customers:admin")
        return self.rpc("customers", "erase_customer", canonical_id(customer_id, "customer"))

    @api("GET", f"{BASE}/<id:customer_id>/data", answers={200: answers.CustomerData})
    def customer_data(self, request, customer_id):
        """Everything held about one customer (GDPR access request)."""
        self.authenticate(request, "customers:admin")
        return self.rpc(
            "customers", "customer_data", canonical_id(customer_id, "customer"), confirm=False
        )

    @api(
        "GET",
        f"{BASE}/<id:customer_id>/timeline",
        query=schemas.Page,
        answers={200: answers.TimelinePage},
    )
    def customer_timeline(self, request, customer_id):
        """Deals, interactions, feedback, tickets and satisfaction of one customer, newest first.

        A merged customer's id shows its survivor's timeline.
        """
        self.authenticate(request, "customers:read")
        params = read_query(request, schemas.Page())
        customer = self.rpc(
            "customers", "get_customer", canonical_id(customer_id, "customer"), confirm=False
        )
        return timeline_page(self, customer["id"], params["limit"], params.get("cursor"))

    @api(
        "POST",
        f"{BASE}/<id:customer_id>/merge",
        body=schemas.MergeBody,
        answers={200: answers.MergedCustomer},
        errors=(409, 422),
    )
    def merge_customers(self, request, customer_id):
        """Merge the customers `merge_ids` into this one, which keeps its id.

        Its empty fields are filled from the merged ones in the order given, tags are
        united, attributes it lacks are added. The merged ids keep resolving to it.
        """
        principal = self.authenticate(request, "customers:admin")
        body = read_json(request, schemas.MergeBody())
        payload = {"merge_ids": [str(merge_id) for merge_id in body["merge_ids"]]}
        return self.rpc(
            "customers",
            "merge_customers",
            canonical_id(customer_id, "customer"),
            payload,
            principal.subject,
        )


def canonical_id(value, kind):
    """Ids are UUIDs; any spelling of one (upper case, braces, no hyphens) finds the record."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ApiError(404, f"No {kind} {value}.") from None


def mapping_of(text):
    """The column mapping of an import: a JSON object of column name -> field name."""
    if not text:
        return None
    try:
        mapping = json.loads(text)
    except ValueError:
        mapping = None
    if not (
        isinstance(mapping, dict)
        and 0 < len(mapping) <= MAX_MAPPED_COLUMNS
        and all(
            isinstance(field, str) and field and len(column) <= 200
            for column, field in mapping.items()
        )
        and unstorable_path(mapping) is None
    ):
        raise ApiError(
            400,
            'mapping must be a JSON object {"column": "field"}.',
            fields={"mapping": ["Not a JSON object of column names to field names."]},
        )
    return mapping
