"""Topic names, filters, wildcard matching, $-topics and shared subscriptions (section 4.7)."""

from __future__ import annotations

import pytest

from protocols.mqtt import (
    SharedSubscription,
    is_valid_topic_filter,
    is_valid_topic_name,
    parse_shared_subscription,
    topic_matches,
)


class TestTopicNames:
    @pytest.mark.parametrize("name", ["a", "/", "a/b", "/finance", "$SYS/uptime", " ", "ä/ö"])
    def test_a_topic_name_without_wildcards_is_valid(self, name: str) -> None:
        assert is_valid_topic_name(name)

    @pytest.mark.parametrize("name", ["", "a/+", "#", "a/b#", "a\x00"])
    def test_an_empty_name_or_a_wildcard_is_invalid(self, name: str) -> None:
        assert not is_valid_topic_name(name)


class TestTopicFilters:
    @pytest.mark.parametrize("topic_filter", ["#", "+", "a/#", "+/+", "/+", "a/+/c", "+/tennis/#"])
    def test_wildcards_filling_whole_levels_are_valid(self, topic_filter: str) -> None:
        assert is_valid_topic_filter(topic_filter)

    @pytest.mark.parametrize("topic_filter", ["", "a#", "a/#/b", "sport+", "a/b+/c", "##"])
    def test_a_wildcard_inside_a_level_or_hash_not_last_is_invalid(self, topic_filter) -> None:
        assert not is_valid_topic_filter(topic_filter)


#: (filter, name, matches): the examples of 4.7.1 and 4.7.2.
MATCHES = [
    ("sport/tennis/player1/#", "sport/tennis/player1", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
    ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
    ("sport/#", "sport", True),
    ("sport/tennis/+", "sport/tennis/player1", True),
    ("sport/tennis/+", "sport/tennis/player1/ranking", False),
    ("sport/+", "sport", False),
    ("sport/+", "sport/", True),
    ("+/+", "/finance", True),
    ("/+", "/finance", True),
    ("+", "/finance", False),
    ("#", "$SYS/uptime", False),
    ("+/monitor/Clients", "$SYS/monitor/Clients", False),
    ("$SYS/#", "$SYS/monitor/Clients", True),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ("a/b", "a/b", True),
    ("a/b", "a/c", False),
    ("ACCOUNTS", "Accounts", False),
]


class TestMatching:
    @pytest.mark.parametrize(("topic_filter", "name", "expected"), MATCHES)
    def test_the_spec_examples_match_as_the_spec_says(self, topic_filter, name, expected) -> None:
        assert topic_matches(topic_filter, name) is expected


class TestSharedSubscriptions:
    def test_a_shared_filter_gives_its_share_name_and_filter(self) -> None:
        parsed = parse_shared_subscription("$share/consumer1/sport/tennis/+")
        assert parsed == SharedSubscription("consumer1", "sport/tennis/+")

    def test_a_plain_filter_is_not_shared(self) -> None:
        assert parse_shared_subscription("sport/#") is None
        assert parse_shared_subscription("$sharex/g/a") is None

    @pytest.mark.parametrize(
        "topic_filter", ["$share//a", "$share/g", "$share/g+/a", "$share/g/a#"]
    )
    def test_a_shared_filter_needs_a_share_name_and_a_valid_filter(self, topic_filter) -> None:
        with pytest.raises(ValueError, match="shared subscription"):
            parse_shared_subscription(topic_filter)
