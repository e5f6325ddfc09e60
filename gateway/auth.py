"""Who is calling: bearer tokens.

The first admin token comes from CRM_ADMIN_TOKEN. Tokens with other roles,
issued by an admin, build on this.
"""

import hmac
from dataclasses import dataclass

from gateway.http import ApiError

MIN_ADMIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Principal:
    subject: str
    role: str


def check_admin_token(token):
    """Refuse to start with no admin token, or one anyone could guess."""
    if len(token or "") < MIN_ADMIN_TOKEN_LENGTH:
        raise ValueError(
            "CRM_ADMIN_TOKEN must be set to a secret of at least "
            f"{MIN_ADMIN_TOKEN_LENGTH} characters"
        )


def authenticate(request, admin_token):
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    challenge = {"WWW-Authenticate": 'Bearer realm="crm"'}
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Send a token: Authorization: Bearer <token>.", headers=challenge)
    if not hmac.compare_digest(token.encode(), admin_token.encode()):
        raise ApiError(401, "The token is not valid.", headers=challenge)
    return Principal(subject="admin", role="admin")
