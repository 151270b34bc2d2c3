"""The Redis layer on a real Redis Cluster (three masters) and behind Sentinel."""

from __future__ import annotations

import asyncio
import os

import pytest

from hub.layers.redis import RESYNC_TYPE, RedisChannelLayer


@pytest.fixture
async def cluster_layer(redis_cluster):
    layer = RedisChannelLayer(
        hosts=[{"cluster": True, "address": redis_cluster[0].url.rsplit("/", 1)[0]}],
        prefix=f"t{os.urandom(4).hex()}",
    )
    yield layer
    await layer.flush()
    await layer.close()


class TestCluster:
    async def test_sends_reach_normal_and_specific_channels(self, cluster_layer):
        channels = [f"worker.{i}" for i in range(10)] + [await cluster_layer.new_channel()]
        for channel in channels:
            await cluster_layer.send(channel, {"type": "hello", "to": channel})
        for channel in channels:
            assert await cluster_layer.receive(channel) == {"type": "hello", "to": channel}

    async def test_group_send_reaches_members_in_every_slot(self, cluster_layer, redis_cluster):
        members = [f"worker.{i}" for i in range(30)] + [await cluster_layer.new_channel()]
        for member in members:
            await cluster_layer.group_add("room", member)
        await cluster_layer.group_send("room", {"type": "hello"})
        holding_keys = [node for node in redis_cluster if int(node.cli("dbsize")) > 0]
        assert len(holding_keys) > 1, "the queues are spread over the masters"
        for member in members:
            assert await cluster_layer.receive(member) == {"type": "hello"}
        assert await cluster_layer.group_count("room") == len(members)

    async def test_flush_empties_every_master(self, cluster_layer):
        for i in range(10):
            await cluster_layer.send(f"worker.{i}", {"type": "x"})
            await cluster_layer.group_add(f"group{i}", f"worker.{i}")
        await cluster_layer.flush()
        for i in range(10):
            assert await cluster_layer.group_count(f"group{i}") == 0
        await cluster_layer.send("worker.0", {"type": "after"})
        assert await cluster_layer.receive("worker.0") == {"type": "after"}


class TestSentinel:
    async def test_a_receiver_follows_the_master_through_a_failover(self, sentinel_group):
        master, replica, sentinel = sentinel_group
        layer = RedisChannelLayer(
            hosts=[{"sentinels": [("127.0.0.1", sentinel.port)], "master_name": "hubmaster"}],
            prefix=f"t{os.urandom(4).hex()}",
        )
        try:
            channel = await layer.new_channel()
            await layer.send(channel, {"type": "before"})
            assert await layer.receive(channel) == {"type": "before"}
            receiving = asyncio.create_task(layer.receive(channel))
            master.stop()
            assert await asyncio.wait_for(receiving, 30) == {"type": RESYNC_TYPE}
            await layer.send(channel, {"type": "after"})
            assert await asyncio.wait_for(layer.receive(channel), 5) == {"type": "after"}
            assert "role:master" in replica.cli("info", "replication")
        finally:
            await layer.close()
