"""A ticket taken through its workflow over the gateway, as a service agent would."""

from tests.support.http import created


def handled_ticket(client, customer, agent, score=None, channel="email", resolve=True):
    """Opened, assigned to `agent`, answered, resolved (unless `resolve` is false) and,
    with a `score`, rated; the ticket's id."""
    ticket = created(
        client.post(
            "/api/v1/tickets", {"customer_id": customer, "subject": "Help", "channel": channel}
        )
    )["id"]
    steps = [("assign", {"assignee": agent}), ("respond", {})]
    if resolve:
        steps.append(("resolve", {}))
    for step, body in steps:
        response = client.post(f"/api/v1/tickets/{ticket}/{step}", body)
        assert response.status_code == 200, response.text
    if score is not None:
        created(client.post(f"/api/v1/tickets/{ticket}/satisfaction", {"score": score}))
    return ticket
