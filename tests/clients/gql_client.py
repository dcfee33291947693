"""Chancery through Python's gql client: a query (the demo's standoffs), a mutation (a
statement), refused without a token, and a subscription over both WebSocket protocols
(graphql-transport-ws and the legacy graphql-ws), each of which must receive a mutation's event.

Usage: python gql_client.py <httpUrl> <recorder token>   (e.g. http://127.0.0.1:8080)
"""

import asyncio
import sys

from gql import Client, GraphQLRequest, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

TIMEOUT = 60  # seconds, for any one step
TIMELINE = "us-china-trade"


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


STANDOFFS = gql(
    """
    query Standoffs($timeline: Slug!, $atLeast: Long) {
      standoffs(timeline: $timeline, issues: ["trade-deficit"], atLeast: $atLeast) {
        timeline { slug }
        issue { slug }
        status
        sides { party { code } stance }
      }
    }
    """
)

RECORD = gql(
    """
    mutation Record($timeline: Slug!, $event: EventInput!) {
      recordEvent(timeline: $timeline, event: $event) {
        lastPosition
        events { id position cursor kind content { summary } }
      }
    }
    """
)

HEAD_CURSOR = gql(
    """
    query Last {
      head { position }
      events(last: 1) { edges { node { position cursor } } }
    }
    """
)

EVENTS = gql(
    """
    subscription Events($after: String) {
      events(after: $after) { id position cursor kind content { summary } }
    }
    """
)


def with_variables(request, variables):
    return GraphQLRequest(request, variable_values=variables)


def statement(summary):
    return {
        "occurred": {"start": "2018-05-04"},
        "actors": [{"party": "USA"}],
        "summary": summary,
        "sources": [{"publication": "Chancery client tests", "attribution": "OFFICIAL"}],
        "act": {"statement": {"claim": summary, "tone": "NEUTRAL"}},
    }


async def check_standoffs(http):
    """The demo's trade-deficit standoff: DEADLOCKED, CHN refusing, the USA demanding."""
    # Projections follow the log: ask for an answer that includes everything up to the head.
    head = (await http.execute(HEAD_CURSOR))["head"]["position"]
    result = await http.execute(with_variables(STANDOFFS, {"timeline": TIMELINE, "atLeast": head}))
    standoffs = result["standoffs"]
    check(len(standoffs) == 1, f"expected one trade-deficit standoff, got {standoffs}")
    standoff = standoffs[0]
    check(
        standoff["timeline"]["slug"] == TIMELINE and standoff["issue"]["slug"] == "trade-deficit",
        f"a standoff of another timeline or issue: {standoff}",
    )
    check(standoff["status"] == "DEADLOCKED", f"trade-deficit is {standoff['status']}, not DEADLOCKED: {standoff}")
    sides = {side["party"]["code"]: side["stance"] for side in standoff["sides"]}
    check(sides == {"CHN": "REFUSAL", "USA": "DEMAND"}, f"the sides are {sides}, not CHN REFUSAL and USA DEMAND")
    return "trade-deficit DEADLOCKED (CHN REFUSAL, USA DEMAND)"


async def record(http, summary):
    result = await http.execute(with_variables(RECORD, {"timeline": TIMELINE, "event": statement(summary)}))
    events = result["recordEvent"]["events"]
    check(len(events) == 1, f"recordEvent wrote {len(events)} events: {result}")
    event = events[0]
    check(event["kind"] == "STATEMENT", f"recordEvent wrote a {event['kind']}: {result}")
    check(event["content"]["summary"] == summary, f"the summary came back as {event['content']['summary']!r}")
    check(int(event["position"]) == int(result["recordEvent"]["lastPosition"]), f"positions disagree: {result}")
    return event


async def check_refused_without_token(graphql_url):
    transport = AIOHTTPTransport(url=graphql_url)
    async with Client(transport=transport) as anonymous:
        try:
            await anonymous.execute(
                with_variables(RECORD, {"timeline": TIMELINE, "event": statement("Refused: no token.")})
            )
        except TransportQueryError as e:
            codes = [(err.get("extensions") or {}).get("code") for err in (e.errors or [])]
            check("UNAUTHORIZED" in codes, f"a mutation without a token failed with {e.errors}, not UNAUTHORIZED")
            return "refused without a token (UNAUTHORIZED)"
    raise Failure("a mutation without a token was accepted")


async def check_subscription(http, ws_url, token, subprotocol):
    """Subscribes after the current head, records a statement, and waits for its event."""
    last = await http.execute(HEAD_CURSOR)
    edges = last["events"]["edges"]
    check(len(edges) == 1, f"events(last: 1) answered {last}")
    after = edges[0]["node"]
    check(
        0 < int(after["position"]) <= int(last["head"]["position"]),
        f"the last event is at {after['position']}, the head at {last['head']['position']}",
    )

    transport = WebsocketsTransport(
        url=ws_url,
        subprotocols=[subprotocol],
        init_payload={"authorization": f"Bearer {token}"},
        connect_timeout=TIMEOUT,
        ack_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    )
    async with Client(transport=transport) as ws:
        check(
            transport.subprotocol == subprotocol,
            f"asked for {subprotocol}, the server chose {transport.subprotocol}",
        )
        summary = f"A statement for the {subprotocol} subscriber."
        received = []

        async def listen():
            subscription = ws.subscribe(with_variables(EVENTS, {"after": after["cursor"]}))
            async for result in subscription:
                event = result["events"]
                received.append(event)
                expected = int(after["position"]) + len(received)
                check(
                    int(event["position"]) == expected,
                    f"{subprotocol}: position {event['position']} arrived, {expected} was expected",
                )
                # Known by its summary: it may arrive before the mutation's answer does.
                if event["content"]["summary"] == summary:
                    await subscription.aclose()
                    return event
            raise Failure(f"{subprotocol}: the subscription ended before the mutation's event")

        listener = asyncio.create_task(listen())
        # The subscription resumes after the cursor, so it sees the event whenever it subscribed.
        recorded = await record(http, summary)
        event = await asyncio.wait_for(listener, TIMEOUT)
        check(event["kind"] == "STATEMENT", f"{subprotocol}: the event came as a {event['kind']}")
        check(
            event["id"] == recorded["id"] and event["cursor"] == recorded["cursor"],
            f"{subprotocol}: the event received is not the one recorded: {event} vs {recorded}",
        )
        return f"{subprotocol}: event {event['position']} received ({len(received)} events after position {after['position']})"


async def main(http_url, token):
    graphql_url = http_url.rstrip("/") + "/graphql"
    ws_url = graphql_url.replace("http", "ws", 1) + "/ws"
    lines = []
    # The schema, fetched by introspection, validates every request on the client side too.
    transport = AIOHTTPTransport(url=graphql_url, headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    async with Client(transport=transport, fetch_schema_from_transport=True) as http:
        lines.append("query: " + await check_standoffs(http))
        event = await record(http, "A statement recorded through gql over HTTP.")
        lines.append(f"mutation: statement recorded at position {event['position']}")
        lines.append("mutation: " + await check_refused_without_token(graphql_url))
        for subprotocol in (WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL, WebsocketsTransport.APOLLO_SUBPROTOCOL):
            lines.append("subscription: " + await check_subscription(http, ws_url, token, subprotocol))
    return lines


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print("usage: python gql_client.py <httpUrl> <recorder token>", file=sys.stderr)
        sys.exit(2)
    try:
        lines = asyncio.run(asyncio.wait_for(main(sys.argv[1], sys.argv[2]), 4 * TIMEOUT))
    except Failure as e:
        print(f"gql_client: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # any client or transport error fails the run, with its kind
        print(f"gql_client: FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    for line in lines:
        print(f"gql_client: ok: {line}")
    print(f"gql_client: ok: {len(lines)} checks passed")
