"""`crm dead-letters`: list, show, replay and discard the services' dead letters.

    crm dead-letters list [SERVICE] [--status S] [--event-type T] [--limit N]
    crm dead-letters show SERVICE ID
    crm dead-letters replay SERVICE [ID ...] [--status S] [--event-type T] [--limit N]
    crm dead-letters discard SERVICE ID

Without a SERVICE, `list` counts each service's entries. `replay` without ids
replays the dead entries (oldest first, up to --limit, 100 at most); entries
that fail again stay dead with their new error, so running it again retries
those too. It talks to the running services over RPC, as the gateway does.
"""

import json
import sys

from crm_common.config import SERVICES, for_process

RPC_TIMEOUT_SECONDS = 60


def add_parser(commands):
    parser = commands.add_parser(
        "dead-letters", help="list and replay events the services could not apply"
    )
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a service's entries, or counts of all")
    listing.add_argument("service", nargs="?", choices=SERVICES)
    show = actions.add_parser("show", help="one entry with the message's body")
    show.add_argument("service", choices=SERVICES)
    show.add_argument("id")
    replay = actions.add_parser("replay", help="run the failed handler again")
    replay.add_argument("service", choices=SERVICES)
    replay.add_argument("ids", nargs="*", metavar="ID", help="these entries (default: the dead)")
    discard = actions.add_parser("discard", help="forget an entry without applying it")
    discard.add_argument("service", choices=SERVICES)
    discard.add_argument("id")
    for action in (listing, replay):
        action.add_argument("--status", choices=("retrying", "dead"))
        action.add_argument("--event-type")
        action.add_argument("--limit", type=int)


def run(config, args, out=sys.stdout):
    """Carry out `crm dead-letters ACTION`; raises StartupError when the services do not answer."""
    from nameko.exceptions import RemoteError, RpcTimeout, UnknownService
    from nameko.standalone.rpc import ClusterRpcProxy

    from crm_common.cli import StartupError

    try:
        with ClusterRpcProxy(
            for_process(config, "dead-letters"), timeout=RPC_TIMEOUT_SECONDS
        ) as cluster:
            return ACTIONS[args.action](cluster, args, out)
    except RemoteError as exc:
        print(f"crm: {exc.value}", file=sys.stderr)
        return 1
    except (UnknownService, RpcTimeout, OSError) as exc:
        raise StartupError(f"the services do not answer ({exc}); are they running?") from None


def _query(args):
    query = {"status": args.status, "event_type": args.event_type, "limit": args.limit}
    return {key: value for key, value in query.items() if value is not None}


def _list(cluster, args, out):
    if args.service is None:
        from nameko.exceptions import RpcTimeout, UnknownService

        for service in SERVICES:
            try:
                counts = getattr(cluster, service).dead_letter_counts()
            except (UnknownService, RpcTimeout):
                print(f"{service}: does not answer", file=out)
                continue
            oldest = counts["oldest_failed_at"] or "-"
            print(
                f"{service}: {counts['dead']} dead, {counts['retrying']} retrying, oldest {oldest}",
                file=out,
            )
        return 0
    proxy, query = getattr(cluster, args.service), _query(args)
    while True:
        page = proxy.list_dead_letters(query)
        for letter in page["items"]:
            print(_line(letter), file=out)
        if not page["next_cursor"] or "limit" in query:
            return 0
        query["cursor"] = page["next_cursor"]


def _line(letter):
    return "  ".join(
        str(value)
        for value in (
            letter["id"],
            letter["status"],
            letter["kind"],
            f"attempts={letter['attempts']}",
            f"{letter['producer']}.{letter['event_type']}",
            letter["event_id"] or "-",
            letter["handler"] or "-",
            letter["error"],
        )
    )


def _show(cluster, args, out):
    letter = getattr(cluster, args.service).get_dead_letter(args.id)
    print(json.dumps(letter, indent=2), file=out)
    return 0


def _replay(cluster, args, out):
    proxy = getattr(cluster, args.service)
    if args.ids:
        results = [proxy.replay_dead_letter(letter_id) for letter_id in args.ids]
    else:
        results = proxy.replay_dead_letters(_query(args))["results"]
    for result in results:
        error = f"  {result['letter']['error']}" if result["letter"] else ""
        print(f"{result['id']}  {result['outcome']}{error}", file=out)
    failed = sum(result["outcome"] == "failed" for result in results)
    print(f"crm: {len(results)} replayed, {failed} failed again", file=out)
    return 1 if failed else 0


def _discard(cluster, args, out):
    getattr(cluster, args.service).discard_dead_letter(args.id)
    print(f"crm: dead letter {args.id} discarded", file=out)
    return 0


ACTIONS = {"list": _list, "show": _show, "replay": _replay, "discard": _discard}
