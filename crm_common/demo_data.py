"""The demo data set as plain values: who the customers are and what happens to each.

Pure and deterministic: customer `index` of seed `seed` always gets the same
story, whatever order or concurrency the loader (crm_common.demo) uses, so a
run can be repeated and a customer's story told on its own. Times are days
before or after `today`: the HTTP API stamps deals, tickets and their steps
when they happen, so only interactions (`occurred_at`) and a deal's
`expected_close_date` can be spread over the year.
"""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

REPS = ("sam", "alex", "jordan", "priya", "lee", "maria")
AGENTS = ("ana", "ben", "chloe", "dev")
FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Bruno", "Carmen", "Chen", "Dara", "Diego", "Elif", "Emma",
    "Farid", "Grace", "Hana", "Ivan", "Jonas", "Kara", "Liam", "Lucia", "Malik", "Mei",
    "Nadia", "Noah", "Olga", "Omar", "Paula", "Quinn", "Rosa", "Sanjay", "Sofia", "Tariq",
    "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Hugo", "Ines", "Kofi", "Leila",
)  # fmt: skip
LAST_NAMES = (
    "Abe", "Baker", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Nakamura", "Okafor", "Petrov", "Quist",
    "Rossi", "Silva", "Tanaka", "Ueda", "Varga", "Weber", "Xu", "Yilmaz", "Zhou", "Andersen",
    "Brown", "Chopra", "Diaz", "Evans", "Ferreira", "Gupta", "Horvat", "Ivanova", "Jung",
    "Kim", "Larsen", "Mensah", "Novak",
)  # fmt: skip
# (company, email domain, industry)
COMPANIES = (
    ("Northwind Traders", "northwind.example", "retail"),
    ("Contoso Health", "contoso-health.example", "healthcare"),
    ("Fabrikam Logistics", "fabrikam.example", "logistics"),
    ("Tailspin Air", "tailspin.example", "travel"),
    ("Litware Software", "litware.example", "software"),
    ("Proseware Labs", "proseware.example", "software"),
    ("Wingtip Toys", "wingtip.example", "retail"),
    ("Adventure Works", "adventure-works.example", "manufacturing"),
    ("Blue Yonder Foods", "blueyonder.example", "food"),
    ("Coho Winery", "coho.example", "food"),
    ("Alpine Ski House", "alpineski.example", "travel"),
    ("Margie's Travel", "margies.example", "travel"),
    ("Lucerne Publishing", "lucerne.example", "media"),
    ("Graphic Design Institute", "gdi.example", "education"),
    ("Humongous Insurance", "humongous.example", "finance"),
    ("Woodgrove Bank", "woodgrove.example", "finance"),
    ("Trey Research", "treyresearch.example", "consulting"),
    ("Fourth Coffee", "fourthcoffee.example", "food"),
    ("School of Fine Art", "fineart.example", "education"),
    ("Relecloud", "relecloud.example", "software"),
    ("VanArsdel Ltd", "vanarsdel.example", "manufacturing"),
    ("Datum Corporation", "datum.example", "consulting"),
    ("Consolidated Messenger", "consolidated.example", "logistics"),
    ("City Power & Light", "citypower.example", "energy"),
)
REGIONS = ("emea", "americas", "apac")
SOURCES = ("webinar", "referral", "website", "trade-show", "outbound")
PRODUCTS = (("Starter plan", 1_200), ("Team plan", 4_800), ("Enterprise plan", 18_000),
            ("Onboarding package", 2_500), ("Support add-on", 900))  # fmt: skip
OPEN_STAGES = ("lead", "qualified", "proposal", "negotiation")
LOSS_REASONS = ("price", "chose a competitor", "no budget this year", "no decision",
                "timing", "missing feature")  # fmt: skip
INTERACTION_KINDS = (
    ("call", "outbound", "Discovery call", "interested"),
    ("call", "inbound", "Question about pricing", "sent price list"),
    ("email", "outbound", "Follow-up", "awaiting reply"),
    ("email", "inbound", "Re: proposal", "asked for a discount"),
    ("meeting", None, "Product demo", "positive"),
    ("meeting", None, "Quarterly review", "renewal likely"),
    ("social", "inbound", "Mention on LinkedIn", None),
    ("note", None, "Account notes", None),
)
COMPLAINTS = ("Invoice was charged twice", "Export keeps timing out",
              "Cannot log in since the update", "Onboarding call was cancelled",
              "Report numbers look wrong")  # fmt: skip
PRAISE = ("Support fixed our issue in minutes", "The new dashboard is great")
SUGGESTIONS = ("Please add a dark mode", "A mobile app would help our field team")
TICKET_SUBJECTS = ("Password reset does not arrive", "Need help with CSV import",
                   "API returns 429 during sync", "Question about our contract")  # fmt: skip
PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_CHANNELS = ("email", "phone", "web", "chat")
SCORES = (1, 2, 3, 4, 5)
SCORE_WEIGHTS = (5, 8, 17, 35, 35)


@dataclass
class Deal:
    title: str
    amount: str
    currency: str
    expected_close_date: str
    furthest_stage: str  # the last open stage it reaches
    outcome: str  # open, won or lost
    reason: str | None = None


@dataclass
class Interaction:
    channel: str
    direction: str | None
    subject: str
    outcome: str | None
    occurred_at: str
    deal: int | None  # index into the story's deals


@dataclass
class Ticket:
    subject: str  # for a complaint, the complaint's text
    complaint: bool
    priority: str
    channel: str
    agent: str
    steps: tuple  # of "assign", "respond", "resolve", "close", in order
    score: int | None


@dataclass
class Story:
    index: int
    customer: dict
    owner: str
    deals: list = field(default_factory=list)
    interactions: list = field(default_factory=list)
    feedback: list = field(default_factory=list)  # (kind, text) of praise and suggestions
    tickets: list = field(default_factory=list)

    @property
    def final_status(self):
        outcomes = {deal.outcome for deal in self.deals}
        if "won" in outcomes:
            return "customer"
        if outcomes == {"lost"}:
            return "churned" if self.index % 3 == 0 else "prospect"
        return "prospect" if outcomes else "lead"


PEOPLE = len(FIRST_NAMES) * len(LAST_NAMES)


def person(seed, index):
    """A unique name for each index below 1,600: every first name meets every last name once.

    Another seed starts elsewhere in the same round, so its people are others.
    """
    index = (index + 397 * seed) % PEOPLE
    first = FIRST_NAMES[index % len(FIRST_NAMES)]
    # 7 is prime to 40, so the last names of one first name never repeat.
    last = LAST_NAMES[(7 * (index // len(FIRST_NAMES)) + index) % len(LAST_NAMES)]
    return first, last


def story(seed, index, today):
    """Customer `index`'s profile and what happens to them."""
    rng = random.Random(f"{seed}:{index}")
    first, last = person(seed, index)
    company, domain, industry = COMPANIES[rng.randrange(len(COMPANIES))]
    owner = REPS[rng.randrange(len(REPS))]
    customer = {
        "name": f"{first} {last}",
        "email": f"{first}.{last}.{index}@{domain}".lower(),
        "phone": f"+1555{index:07d}",
        "company": company,
        "owner": owner,
        "status": "lead",
        "tags": [industry, rng.choice(REGIONS)],
        "attributes": {"source": rng.choice(SOURCES), "employees": rng.choice((8, 40, 250, 1200))},
    }
    told = Story(index, customer, owner)
    for _ in range(rng.choices((0, 1, 2), weights=(35, 45, 20))[0]):
        told.deals.append(deal(rng, company, today))
    for _ in range(rng.choices(range(7), weights=(10, 20, 25, 20, 12, 8, 5))[0]):
        told.interactions.append(interaction(rng, told.deals, today))
    if rng.random() < 0.12:
        told.feedback.append(
            ("praise", rng.choice(PRAISE))
            if rng.random() < 0.6
            else ("suggestion", rng.choice(SUGGESTIONS))
        )
    if rng.random() < 0.15:
        told.tickets.append(ticket(rng, rng.choice(COMPLAINTS), complaint=True))
    if rng.random() < 0.10:
        told.tickets.append(ticket(rng, rng.choice(TICKET_SUBJECTS), complaint=False))
    return told


def deal(rng, company, today):
    product, base = PRODUCTS[rng.randrange(len(PRODUCTS))]
    amount = base * rng.choice((1, 1, 2, 3, 5))
    outcome = rng.choices(("open", "won", "lost"), weights=(40, 32, 28))[0]
    # Deals that close went further on the whole; lost ones drop out anywhere.
    reached = rng.choices(range(4), weights=(1, 2, 3, 4) if outcome == "won" else (4, 3, 2, 1))[0]
    return Deal(
        title=f"{company}: {product}",
        amount=f"{amount}.00",
        currency=rng.choices(("USD", "EUR", "GBP"), weights=(70, 20, 10))[0],
        expected_close_date=(today + timedelta(days=rng.randint(-60, 300))).isoformat(),
        furthest_stage=OPEN_STAGES[reached],
        outcome=outcome,
        reason=rng.choice(LOSS_REASONS) if outcome == "lost" else None,
    )


def interaction(rng, deals, today):
    channel, direction, subject, outcome = rng.choice(INTERACTION_KINDS)
    days_ago = int(rng.triangular(1, 365, 20))  # more of them lately
    # Working hours of a day before today: never in the future, whenever the demo runs.
    moment = datetime.combine(today - timedelta(days=days_ago), time(9), tzinfo=UTC) + timedelta(
        minutes=rng.randrange(8 * 60)
    )
    return Interaction(
        channel=channel,
        direction=direction,
        subject=subject,
        outcome=outcome,
        occurred_at=moment.isoformat(),
        deal=rng.randrange(len(deals)) if deals and rng.random() < 0.5 else None,
    )


def ticket(rng, subject, complaint):
    # How far the desk got with it: most tickets are resolved, some still wait.
    done = rng.choices(range(5), weights=(6, 8, 10, 30, 46))[0]
    steps = ("assign", "respond", "resolve", "close")[:done]
    resolved = "resolve" in steps
    return Ticket(
        subject=subject,
        complaint=complaint,
        priority=rng.choices(PRIORITIES, weights=(15, 50, 25, 10))[0],
        channel=rng.choice(TICKET_CHANNELS),
        agent=AGENTS[rng.randrange(len(AGENTS))],
        steps=steps,
        score=rng.choices(SCORES, weights=SCORE_WEIGHTS)[0]
        if resolved and rng.random() < 0.8
        else None,
    )


def today_utc():
    return datetime.now(UTC).date()
