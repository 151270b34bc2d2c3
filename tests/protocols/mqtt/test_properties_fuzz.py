"""Hypothesis: every packet type round-trips in both versions; random bytes raise only ours."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.mqtt import (
    Auth,
    Connack,
    Connect,
    Disconnect,
    MqttConnection,
    Pingreq,
    Pingresp,
    Properties,
    ProtocolError,
    ProtocolVersion,
    Puback,
    Pubcomp,
    Publish,
    Pubrec,
    Pubrel,
    QoS,
    ReasonCode,
    RetainHandling,
    Role,
    Suback,
    Subscribe,
    Subscription,
    Unsuback,
    Unsubscribe,
    Will,
    decode_packet,
    encode,
)
from protocols.mqtt.codes import REASON_CODE_FOR_RETURN_CODE, REASON_CODES_BY_PACKET, PacketType
from protocols.mqtt.properties import (
    ALLOWED_PROPERTIES,
    NONZERO_PROPERTIES,
    PROPERTY_SPECS,
    WILL,
    WireType,
)

from .helpers import CONNECT_V5_WIRE, MIN_CONNECT, feed

V311, V5 = ProtocolVersion.V311, ProtocolVersion.V5

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12
)
level = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00+#/"), max_size=6
)
topic_name = st.lists(level, min_size=1, max_size=4).map("/".join).filter(bool)
topic_filter = (
    st.lists(st.one_of(level, st.just("+")), min_size=1, max_size=4)
    .flatmap(lambda levels: st.sampled_from(["/".join(levels), "/".join([*levels, "#"])]))
    .filter(bool)
)
binary = st.binary(max_size=16)
packet_id = st.integers(1, 0xFFFF)
qos = st.sampled_from(QoS)


def _value(pid: Any, wire_type: WireType) -> st.SearchStrategy[Any]:
    low = 1 if pid in NONZERO_PROPERTIES else 0
    if wire_type is WireType.BYTE:
        return st.sampled_from([QoS(0), QoS(1)]) if pid.name == "MAXIMUM_QOS" else st.booleans()
    if wire_type is WireType.TWO_BYTE_INTEGER:
        return st.integers(1 if pid.name == "TOPIC_ALIAS" else low, 0xFFFF)
    if wire_type is WireType.FOUR_BYTE_INTEGER:
        return st.integers(low, 0xFFFF_FFFF)
    if wire_type is WireType.UTF8_STRING:
        return topic_name if pid.name == "RESPONSE_TOPIC" else text
    return binary


def properties(context: Any, subscription_ids: int = 3) -> st.SearchStrategy[Properties]:
    """Valid properties for ``context`` (a PacketType or WILL)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for pid in ALLOWED_PROPERTIES[context]:
        name, wire_type = PROPERTY_SPECS[pid]
        if wire_type is WireType.UTF8_STRING_PAIR:
            fields[name] = st.lists(st.tuples(text, text), max_size=3).map(tuple)
        elif wire_type is WireType.VARIABLE_BYTE_INTEGER:
            ids = st.integers(1, 268_435_455)
            fields[name] = st.lists(ids, max_size=subscription_ids).map(tuple)
        elif name != "authentication_data":
            fields[name] = st.none() | _value(pid, wire_type)
    strategy = st.fixed_dictionaries({}, optional=fields)
    if "authentication_method" in fields:
        strategy = strategy.flatmap(
            lambda values: st.fixed_dictionaries(
                {**{k: st.just(v) for k, v in values.items()}},
                optional={"authentication_data": binary}
                if values.get("authentication_method") is not None
                else {},
            )
        )
    return strategy.map(lambda values: Properties(**values))


def reason(packet_type: PacketType) -> st.SearchStrategy[ReasonCode]:
    return st.sampled_from(sorted(REASON_CODES_BY_PACKET[packet_type]))


def publishes(version: ProtocolVersion) -> st.SearchStrategy[Publish]:
    v5 = version is V5
    props = properties(PacketType.PUBLISH) if v5 else st.just(Properties())
    return st.builds(
        lambda t, p, q, r, i, d, pr: Publish(t, p, q, r, i if q else None, d and bool(q), pr),
        topic_name,
        binary,
        qos,
        st.booleans(),
        packet_id,
        st.booleans(),
        props,
    )


def packets(version: ProtocolVersion) -> st.SearchStrategy[Any]:
    v5 = version is V5

    def props(context: Any, **options: Any) -> st.SearchStrategy[Properties]:
        return properties(context, **options) if v5 else st.just(Properties())

    def code(packet_type: PacketType) -> st.SearchStrategy[ReasonCode]:
        return reason(packet_type) if v5 else st.just(ReasonCode.SUCCESS)

    will = st.builds(Will, topic_name, binary, qos, st.booleans(), props(WILL))
    connect = st.builds(
        Connect,
        text,
        st.just(version),
        st.just(True) if not v5 else st.booleans(),
        st.integers(0, 0xFFFF),
        st.none() | text,
        st.none() | binary,
        st.none() | will,
        props(PacketType.CONNECT),
    ).filter(lambda c: v5 or c.password is None or c.username is not None)
    connack_codes = (
        reason(PacketType.CONNACK)
        if v5
        else st.sampled_from(list(REASON_CODE_FOR_RETURN_CODE.values()))
    )
    suback_codes = (
        reason(PacketType.SUBACK)
        if v5
        else st.sampled_from(
            [
                ReasonCode.GRANTED_QOS_0,
                ReasonCode.GRANTED_QOS_1,
                ReasonCode.GRANTED_QOS_2,
                ReasonCode.UNSPECIFIED_ERROR,
            ]
        )
    )
    publish = publishes(version)
    subscription = st.builds(
        Subscription,
        topic_filter,
        qos,
        st.booleans() if v5 else st.just(False),
        st.booleans() if v5 else st.just(False),
        st.sampled_from(RetainHandling) if v5 else st.just(RetainHandling.SEND_ON_SUBSCRIBE),
    )
    acks = [
        st.builds(cls, packet_id, code(cls.type), props(cls.type))
        for cls in (Puback, Pubrec, Pubrel, Pubcomp)
    ]
    choices = [
        connect,
        st.builds(Connack, st.booleans(), connack_codes, props(PacketType.CONNACK)),
        publish,
        *acks,
        st.builds(
            Subscribe,
            packet_id,
            st.lists(subscription, min_size=1, max_size=3).map(tuple),
            props(PacketType.SUBSCRIBE, subscription_ids=1),
        ),
        st.builds(
            Suback,
            packet_id,
            st.lists(suback_codes, min_size=1, max_size=3).map(tuple),
            props(PacketType.SUBACK),
        ),
        st.builds(
            Unsubscribe,
            packet_id,
            st.lists(topic_filter, min_size=1, max_size=3).map(tuple),
            props(PacketType.UNSUBSCRIBE),
        ),
        st.builds(
            Unsuback,
            packet_id,
            st.lists(reason(PacketType.UNSUBACK), min_size=1, max_size=3).map(tuple)
            if v5
            else st.just(()),
            props(PacketType.UNSUBACK),
        ),
        st.just(Pingreq()),
        st.just(Pingresp()),
        st.builds(Disconnect, code(PacketType.DISCONNECT), props(PacketType.DISCONNECT)),
    ]
    if v5:
        choices.append(st.builds(Auth, reason(PacketType.AUTH), props(PacketType.AUTH)))
    return st.one_of(choices)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestRoundTrips:
    @FUZZ
    @given(packets(V5))
    def test_every_v5_packet_decodes_to_what_was_encoded(self, packet: Any) -> None:
        assert decode_packet(encode(packet, V5), V5) == packet

    @FUZZ
    @given(packets(V311))
    def test_every_311_packet_decodes_to_what_was_encoded(self, packet: Any) -> None:
        assert decode_packet(encode(packet, V311), V311) == packet

    @FUZZ
    @given(st.lists(publishes(V5), max_size=5), st.data())
    def test_a_stream_of_publishes_split_anywhere_is_read_whole(self, publishes, data) -> None:
        publishes = [
            p
            if p.properties.topic_alias is None and not p.properties.subscription_identifiers
            else Publish(p.topic, p.payload, p.qos, p.retain, p.packet_id, p.dup)
            for p in publishes
        ]
        stream = MIN_CONNECT[V5] + b"".join(encode(p, V5) for p in publishes)
        cut = data.draw(st.integers(0, len(stream)))
        conn = MqttConnection(Role.SERVER)
        events = feed(conn, stream[:cut]) + feed(conn, stream[cut:])
        assert events[1:] == publishes


class TestRandomBytes:
    @FUZZ
    @given(st.binary(max_size=64))
    def test_random_bytes_before_connect_raise_only_protocol_errors(self, data: bytes) -> None:
        with contextlib.suppress(ProtocolError):
            MqttConnection(Role.SERVER).receive_data(data)

    @FUZZ
    @given(st.sampled_from([V311, V5]), st.lists(st.binary(max_size=32), max_size=4))
    def test_random_bytes_after_connect_raise_only_protocol_errors(self, version, chunks) -> None:
        conn = MqttConnection(Role.SERVER, max_packet_size=64)
        feed(conn, MIN_CONNECT[version])
        answer = b""
        try:
            for chunk in chunks:
                conn.receive_data(chunk)
        except ProtocolError as error:
            answer = error.data_to_send
        if version is V311:
            assert answer == b""  # a 3.1.1 server answers every error by closing

    @FUZZ
    @given(st.integers(0, len(CONNECT_V5_WIRE) - 1), st.integers(0, 255))
    def test_a_connect_with_any_byte_changed_raises_only_protocol_errors(self, index, value):
        data = bytearray(CONNECT_V5_WIRE)
        data[index] = value
        answer = b""
        try:
            MqttConnection(Role.SERVER).receive_data(bytes(data))
        except ProtocolError as error:
            answer = error.data_to_send
        assert answer[:1] in (b"", b"\x20")  # a CONNACK or nothing

    @FUZZ
    @given(st.sampled_from([V311, V5]), st.binary(min_size=1, max_size=48), st.integers(0, 255))
    def test_mutated_valid_packets_raise_only_protocol_errors(self, version, body, first) -> None:
        conn = MqttConnection(Role.SERVER)
        feed(conn, MIN_CONNECT[version])
        with contextlib.suppress(ProtocolError):
            conn.receive_data(bytes((first, len(body))) + body)
