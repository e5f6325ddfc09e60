"""/api/v1/auth: tokens with roles, issued and revoked by an admin."""

from gateway import answers, schemas
from gateway.auth import ROLES
from gateway.http import ApiError, api, read_json, read_query

BASE = "/api/v1/auth"


class TokenEndpoints:
    """Mixed into the gateway service: `self.authenticate` and `self.tokens` come from it."""

    # The answer holds the secret, which is shown once and kept nowhere: no replays.
    @api(
        "POST",
        f"{BASE}/tokens",
        idempotency_key=False,
        body=schemas.TokenRequest,
        answers={201: answers.IssuedToken},
        location=True,
    )
    def issue_token(self, request):
        """A new token for `subject` with `role`; the secret is in this answer only."""
        principal = self.authenticate(request, "tokens:admin")
        body = read_json(request, schemas.TokenRequest())
        ttl = body["expires_in_days"] * 86400 if body.get("expires_in_days") else None
        record, secret = self.tokens.issue(body["role"], body["subject"], principal.subject, ttl)
        return 201, {**record, "token": secret}, {"Location": f"{BASE}/tokens/{record['id']}"}

    @api("GET", f"{BASE}/tokens", query=schemas.StrictSchema, answers={200: answers.TokenList})
    def list_tokens(self, request):
        """The live tokens (never their secrets), oldest first, and the roles there are."""
        self.authenticate(request, "tokens:admin")
        read_query(request, schemas.StrictSchema())
        return {"items": self.tokens.all(), "roles": list(ROLES)}

    @api("DELETE", f"{BASE}/tokens/<id:token_id>", answers={204: None})
    def revoke_token(self, request, token_id):
        """Revoke a token: the next request with it is a 401."""
        self.authenticate(request, "tokens:admin")
        if not self.tokens.revoke(token_id):
            raise ApiError(404, f"No token {token_id}.")
        return 204, None

    @api("GET", f"{BASE}/me", answers={200: answers.Caller})
    def whoami(self, request):
        """The caller's subject and role, and what the role may do."""
        principal = self.authenticate(request, "reports:read")
        return {
            "subject": principal.subject,
            "role": principal.role,
            "token_id": principal.token_id,
            "permissions": principal.permissions,
        }
