"""The funnel: per stage of a pipeline, how many deals entered, converted, dropped. Pure rules.

Every deal event is kept as a move (its sequence, the stage it went to and
came from, its dwell in the stage it left, and the deal's state after it).
What a deal contributes to the funnel is a function of the set of its moves
and of the pipeline's stage order, so it comes out the same whatever order
the events arrived in, and a repeated event changes nothing.

Definitions (SPEC section 4), per stage, for the stages of a pipeline in
their order with `won` last:
- entered: deals that were ever in the stage (created in it, moved to it);
- current: deals in it now (open ones for an open stage; won deals for won);
- converted: deals that entered the stage and later entered a later stage
  (a higher position) or were won;
- conversion_rate = converted / entered; drop_rate = deals lost while in the
  stage / entered; null over zero deals;
- avg_dwell_hours: mean time deals spent in the stage before leaving it;
- bottleneck: the open stage with the lowest conversion rate;
- win_rate = won / (won + lost), of the deals' current status.
"""

from dataclasses import dataclass, field

OPEN, WON, LOST = "open", "won", "lost"
COUNTS = ("entered", "converted", "lost_here", "dwell_seconds", "dwell_count", "current")


@dataclass(frozen=True)
class Move:
    sequence: int
    kind: str  # created, moved, won, lost, reopened, updated
    from_stage_id: str | None
    to_stage_id: str | None
    dwell_seconds: int | None
    stage_id: str  # the deal's stage after the event
    status: str  # the deal's status after the event


@dataclass
class StageCounts:
    entered: int = 0
    converted: int = 0
    lost_here: int = 0
    dwell_seconds: int = 0
    dwell_count: int = 0
    current: int = 0

    def as_dict(self):
        return {name: getattr(self, name) for name in COUNTS}


@dataclass(frozen=True)
class Stage:
    stage_id: str
    name: str
    kind: str
    position: int | None


@dataclass
class Pipeline:
    stages: dict = field(default_factory=dict)  # stage_id -> Stage

    def position(self, stage_id):
        stage = self.stages.get(stage_id)
        return stage.position if stage else None

    def kind(self, stage_id):
        stage = self.stages.get(stage_id)
        return stage.kind if stage else None


def deal_counts(moves, pipeline):
    """{stage_id: StageCounts} that one deal adds to its pipeline's funnel."""
    moves = sorted(moves, key=lambda move: move.sequence)
    counts = {}

    def at(stage_id):
        return counts.setdefault(stage_id, StageCounts())

    entries = []  # (sequence, stage_id) of every entry into a stage
    for move in moves:
        if move.to_stage_id is not None and move.kind != "updated":
            at(move.to_stage_id).entered = 1
            entries.append((move.sequence, move.to_stage_id))
        if move.from_stage_id is not None and move.kind != "created":
            if pipeline.kind(move.from_stage_id) in (None, OPEN) and move.dwell_seconds is not None:
                at(move.from_stage_id).dwell_seconds += move.dwell_seconds
                at(move.from_stage_id).dwell_count += 1
            if move.kind == LOST:
                at(move.from_stage_id).lost_here = 1
    for sequence, stage_id in entries:
        if counts[stage_id].converted:
            continue
        for later, target in entries:
            if later > sequence and _beyond(pipeline, stage_id, target):
                counts[stage_id].converted = 1
                break
    if moves:
        last = moves[-1]
        at(last.stage_id).current = 1
    return counts


def _beyond(pipeline, stage_id, target):
    """Whether entering `target` after `stage_id` is progress: a later open stage, or won."""
    if pipeline.kind(target) == WON:
        return True
    if pipeline.kind(target) != OPEN:
        return False
    here, there = pipeline.position(stage_id), pipeline.position(target)
    return here is not None and there is not None and there > here


def differences(old, new):
    """Per stage, new counts minus old counts (both {stage_id: StageCounts})."""
    changed = {}
    for stage_id in set(old) | set(new):
        before = old.get(stage_id, StageCounts()).as_dict()
        after = new.get(stage_id, StageCounts()).as_dict()
        delta = {name: after[name] - before[name] for name in COUNTS}
        if any(delta.values()):
            changed[stage_id] = delta
    return changed


def rate(part, whole):
    return part / whole if whole else None


def report(stages, totals):
    """The funnel answer from the pipeline's stages (in order) and {stage_id: counts dict}."""
    rows = []
    shown = [stage for stage in stages if stage.kind in (OPEN, WON)]
    for stage in shown:
        counts = totals.get(stage.stage_id) or StageCounts().as_dict()
        is_open = stage.kind == OPEN
        rows.append(
            {
                "stage": stage.name,
                "stage_id": stage.stage_id,
                "entered": counts["entered"],
                "current": counts["current"],
                "converted": counts["converted"] if is_open else None,
                "conversion_rate": rate(counts["converted"], counts["entered"])
                if is_open
                else None,
                "drop_rate": rate(counts["lost_here"], counts["entered"]) if is_open else None,
                "avg_dwell_hours": (
                    round(counts["dwell_seconds"] / counts["dwell_count"] / 3600, 4)
                    if is_open and counts["dwell_count"]
                    else None
                ),
            }
        )
    won = sum(totals.get(s.stage_id, {}).get("current", 0) for s in stages if s.kind == WON)
    lost = sum(totals.get(s.stage_id, {}).get("current", 0) for s in stages if s.kind == LOST)
    rated = [row for row in rows if row["conversion_rate"] is not None]
    bottleneck = min(rated, key=lambda row: row["conversion_rate"])["stage"] if rated else None
    return {
        "stages": rows,
        "won": won,
        "lost": lost,
        "win_rate": rate(won, won + lost),
        "bottleneck": bottleneck,
    }
