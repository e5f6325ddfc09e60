"""Event streams as a broker may deliver them."""

import random


def shuffled_with_repeats(ordered, seed):
    """`ordered` shuffled, half of its events twice, as a broker may deliver it."""
    rng = random.Random(seed)
    shuffled = ordered + rng.sample(ordered, k=len(ordered) // 2)
    rng.shuffle(shuffled)
    return shuffled


def as_delivered(ordered, seed):
    """shuffled_with_repeats as the views see it: the inbox lets each event_id through
    once, so a repeat never reaches a view."""
    seen = set()
    for event in shuffled_with_repeats(ordered, seed):
        if event["event_id"] not in seen:
            seen.add(event["event_id"])
            yield event
