"""Event streams as a broker may deliver them."""

import random


def as_delivered(ordered, seed):
    """`ordered` shuffled, half of its events sent twice, as the views see it: the inbox
    lets each event_id through once, so a repeat never reaches a view."""
    rng = random.Random(seed)
    shuffled = ordered + rng.sample(ordered, k=len(ordered) // 2)
    rng.shuffle(shuffled)
    seen = set()
    for event in shuffled:
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            yield event
