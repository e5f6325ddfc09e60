"""What the customers service accepts over RPC and what it answers."""

from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates,
)

from crm_common.validation import UNSTORABLE, is_finite_number, unstorable_path
from services.customers import domain

# Limits of the stored, normalized text (NFC and lower-casing can lengthen it).
STORED_LENGTHS = {"name": 200, "email": 320, "company": 200, "owner": 100}


class AttributesField(fields.Dict):
    """User-defined fields: short string keys, scalar values, bounded size."""

    def _deserialize(self, value, attr, data, **kwargs):
        value = super()._deserialize(value, attr, data, **kwargs)
        if len(value) > domain.MAX_ATTRIBUTES:
            raise ValidationError(f"At most {domain.MAX_ATTRIBUTES} attributes.")
        for key, item in value.items():
            if not key or len(key) > domain.MAX_ATTRIBUTE_KEY:
                raise ValidationError(
                    f"Attribute names are 1 to {domain.MAX_ATTRIBUTE_KEY} characters."
                )
            if isinstance(item, str) and len(item) > domain.MAX_ATTRIBUTE_TEXT:
                raise ValidationError(
                    f"Attribute {key!r} is longer than {domain.MAX_ATTRIBUTE_TEXT} characters."
                )
            if item is not None and not isinstance(item, str | bool) and not is_finite_number(item):
                raise ValidationError(
                    f"Attribute {key!r} must be text, a finite number, true/false or null."
                )
        return value


class CustomerInput(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    email = fields.Email(load_default=None, allow_none=True, validate=validate.Length(max=320))
    phone = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    company = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=200))
    owner = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100)
    )
    status = fields.String(load_default="lead", validate=validate.OneOf(domain.STATUSES))
    tags = fields.List(
        fields.String(validate=validate.Length(min=1, max=domain.MAX_TAG_LENGTH)),
        load_default=list,
        validate=validate.Length(max=domain.MAX_TAGS),
    )
    attributes = AttributesField(keys=fields.String(), load_default=dict)

    @pre_load
    def _refuse_nul_and_trim_email(self, data, **_):
        if not isinstance(data, dict):
            return data
        where = unstorable_path(data)
        if where:
            raise ValidationError({where.split(".")[0]: [UNSTORABLE]})
        if isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip() or None}
        return data

    @validates("name")
    def _name_not_blank(self, value, **_):
        if not domain.normalize_text(value):
            raise ValidationError("Name must not be blank.")

    @validates("phone")
    def _phone_is_a_number(self, value, **_):
        if value is not None and domain.normalize_phone(value) is None:
            raise ValidationError(
                "Not a valid phone number: 7 to 15 digits, optionally with a leading +."
            )

    @post_load
    def _normalize(self, data, **_):
        # Every field is optional when loading a partial update.
        for field, normalize in NORMALIZERS.items():
            if field in data:
                data[field] = normalize(data[field])
        too_long = {
            field: [f"Longer than {limit} characters once normalized."]
            for field, limit in STORED_LENGTHS.items()
            if data.get(field) and len(data[field]) > limit
        }
        if any(len(tag) > domain.MAX_TAG_LENGTH for tag in data.get("tags", ())):
            too_long["tags"] = [
                f"A tag is longer than {domain.MAX_TAG_LENGTH} characters once normalized."
            ]
        if too_long:
            raise ValidationError(too_long)
        if "name" in data and not data["name"]:
            raise ValidationError({"name": ["Name must not be blank."]})
        return data


NORMALIZERS = {
    "name": domain.normalize_text,
    "email": domain.normalize_email,
    "phone": domain.normalize_phone,
    "company": domain.normalize_text,
    "owner": domain.normalize_text,
    "tags": domain.normalize_tags,
}


class CsvRowInput(CustomerInput):
    """A row of an import: the file was checked for NUL and its cells trimmed already."""

    def _refuse_nul_and_trim_email(self, data, **_):  # no longer a pre_load hook here
        return data


class CustomerOutput(Schema):
    id = fields.String()
    name = fields.String()
    email = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    company = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    status = fields.String()
    tags = fields.List(fields.String())
    attributes = fields.Dict()
    segment = fields.String(allow_none=True)
    created_at = fields.DateTime(format="iso")
    updated_at = fields.DateTime(format="iso")
    version = fields.Integer()
    # An erased customer is an anonymous record kept for the reports.
    erased = fields.Function(lambda customer: customer.erased_at is not None)


class CustomerQuery(Schema):
    class Meta:
        unknown = RAISE

    q = fields.String(validate=validate.Length(min=1, max=200))
    tag = fields.String(validate=validate.Length(min=1, max=domain.MAX_TAG_LENGTH))
    status = fields.String(validate=validate.OneOf(domain.STATUSES))
    owner = fields.String(validate=validate.Length(min=1, max=100))
    segment = fields.String(validate=validate.Length(min=1, max=32))
    limit = fields.Integer(load_default=50, strict=True, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, allow_none=True)


class ExportQuery(CustomerQuery):
    """The filters of a list, without paging: an export has every match."""

    limit = None
    cursor = None

    class Meta:
        unknown = RAISE
        exclude = ("limit", "cursor")


class DuplicatesQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, strict=True, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, allow_none=True)


class MergeRequest(Schema):
    class Meta:
        unknown = RAISE

    merge_ids = fields.List(
        fields.UUID(), required=True, validate=validate.Length(min=1, max=domain.MAX_MERGE)
    )


class SegmentChangedData(Schema):
    """What the customers service reads of reports' segment_changed."""

    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    to_segment = fields.String(required=True, allow_none=True, validate=validate.Length(max=32))
