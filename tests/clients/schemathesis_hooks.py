"""Schemathesis hooks for tests/it/schemathesis.rs: strategies for Chancery's custom scalars.

Each mixes values the server accepts (so that requests get past coercion into the resolvers and
validation) with arbitrary text and numbers (so that coercion's own refusals are exercised too).
"""

import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

any_text = st.text(max_size=40)


def text_scalar(name, *accepted):
    """Registers the string scalar `name`: values drawn from `accepted`, or any text."""
    schemathesis.graphql.scalar(name, st.one_of(*accepted, any_text).map(nodes.String))


schemathesis.graphql.scalar(
    "Long",
    st.one_of(st.integers(min_value=0, max_value=60), st.integers()).map(nodes.Int),
)
text_scalar(
    "PartyCode",
    st.sampled_from(["USA", "CHN", "EU"]),
    st.from_regex(r"\A[A-Z]{2,6}\Z"),
)
text_scalar(
    "Slug",
    st.sampled_from(["us-china-trade", "trade-deficit", "tariffs", "donald-trump", "xi-jinping"]),
    st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z"),
)
text_scalar(
    "ValidTime",
    st.from_regex(r"\A(1[89]|20)[0-9]{2}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?\Z"),
    st.from_regex(r"\A-?[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}\Z"),
)
text_scalar(
    "DateTime",
    st.from_regex(
        r"\A20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z\Z"
    ),
)
schemathesis.graphql.scalar(
    "JSON",
    st.one_of(any_text.map(nodes.String), st.integers().map(nodes.Int), st.booleans().map(nodes.Boolean)),
)
