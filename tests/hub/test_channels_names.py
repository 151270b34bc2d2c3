"""Every public name a Channels user imports exists in hub at the same module path."""

from __future__ import annotations

import importlib
import pkgutil

import channels
import pytest

#: Names hub leaves out on purpose, with the reason.
OMITTED = {
    ("channels.apps", "ChannelsConfig"): "hub's app config is hub.apps.HubConfig",
    ("channels.consumer", "aclose_old_connections"): "an import of channels.db, not API",
    ("channels.consumer", "await_many_dispatch"): "hub's consumers dispatch without it",
    ("channels.generic.http", "aclose_old_connections"): "an import of channels.db, not API",
    ("channels.generic.websocket", "aclose_old_connections"): "an import of channels.db, not API",
    ("channels.sessions", "InstanceSessionWrapper"): "an implementation detail",
    ("channels.testing.application", "no_op"): "an implementation detail",
    ("channels.testing.live", "TEST_DATABASE_PREFIX"): "hub's live server shares the test DB",
    ("channels.testing.live", "get_default_application"): "an import of channels.routing",
    ("channels.testing.live", "make_application"): "an implementation detail",
    ("channels.testing.live", "set_database_connection"): "hub's live server is in-process",
    ("channels.utils", "*"): "helpers of Channels' own dispatch loop",
}


def channels_public_names():
    for info in pkgutil.walk_packages(channels.__path__, "channels."):
        try:
            module = importlib.import_module(info.name)
        except ImportError:
            # channels.testing.live needs Daphne, which hub's tests do not install;
            # its one public name is checked in test_live_server.py.
            continue
        for name in dir(module):
            value = getattr(module, name)
            if name.startswith("_") or type(value).__name__ == "module":
                continue
            if not getattr(value, "__module__", "channels").startswith("channels"):
                continue
            yield info.name, name


NAMES = sorted(set(channels_public_names()))


@pytest.mark.parametrize(("module", "name"), NAMES, ids=[f"{m}.{n}" for m, n in NAMES])
def test_hub_has_the_same_name_at_the_same_path(module, name):
    if (module, name) in OMITTED or (module, "*") in OMITTED:
        pytest.skip(OMITTED.get((module, name)) or OMITTED[(module, "*")])
    hub_module = importlib.import_module("hub" + module.removeprefix("channels"))
    assert hasattr(hub_module, name), f"{hub_module.__name__} has no {name}"
