"""The ``CHANNEL_LAYERS`` setting: aliases to configured layer instances.

Each alias names a ``BACKEND`` (a dotted path, so ``channels_redis`` layers work)
and a ``CONFIG`` dict passed to its constructor; ``TEST_CONFIG`` replaces
``CONFIG`` under :meth:`ChannelLayerManager.make_test_backend`. Without the
setting, hub runs on the embedded default: one in-memory layer.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from hub import DEFAULT_CHANNEL_LAYER
from hub.exceptions import InvalidChannelLayerError

#: Used when settings.CHANNEL_LAYERS is absent.
DEFAULT_CHANNEL_LAYERS: dict[str, dict[str, Any]] = {
    DEFAULT_CHANNEL_LAYER: {"BACKEND": "hub.layers.InMemoryChannelLayer"}
}


class ChannelLayerManager:
    """Builds each configured layer on first use and keeps it for the process."""

    def __init__(self) -> None:
        self.backends: dict[str, Any] = {}
        setting_changed.connect(self._reset_backends)

    def _reset_backends(self, setting: str, **kwargs: Any) -> None:
        if setting == "CHANNEL_LAYERS":
            self.backends = {}

    @property
    def configs(self) -> dict[str, dict[str, Any]]:
        configs: dict[str, dict[str, Any]] = getattr(
            settings, "CHANNEL_LAYERS", DEFAULT_CHANNEL_LAYERS
        )
        return configs

    def make_backend(self, name: str) -> Any:
        """A new layer instance for alias ``name`` from its ``CONFIG``."""
        return self._make_backend(name, self.configs[name].get("CONFIG", {}))

    def make_test_backend(self, name: str) -> Any:
        """A new layer instance for alias ``name`` from its ``TEST_CONFIG``."""
        try:
            config = self.configs[name]["TEST_CONFIG"]
        except KeyError:
            raise InvalidChannelLayerError(f"CHANNEL_LAYERS[{name!r}] has no TEST_CONFIG") from None
        return self._make_backend(name, config)

    def _make_backend(self, name: str, config: dict[str, Any]) -> Any:
        try:
            path = self.configs[name]["BACKEND"]
        except KeyError:
            raise InvalidChannelLayerError(f"CHANNEL_LAYERS[{name!r}] has no BACKEND") from None
        try:
            backend_class = import_string(path)
        except ImportError as exc:
            raise InvalidChannelLayerError(
                f"Cannot import BACKEND {path!r} of CHANNEL_LAYERS[{name!r}]: {exc}"
            ) from exc
        try:
            return backend_class(**config)
        except TypeError as exc:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] CONFIG does not fit {path}: {exc}"
            ) from exc

    def __getitem__(self, key: str) -> Any:
        try:
            return self.backends[key]
        except KeyError:
            backend = self.backends[key] = self.make_backend(key)
            return backend

    def __contains__(self, key: str) -> bool:
        return key in self.configs

    def set(self, key: str, layer: Any) -> Any:
        """Point ``key`` at ``layer`` and return the layer it replaced (for tests)."""
        old = self.backends.get(key)
        self.backends[key] = layer
        return old


#: The process-wide manager.
channel_layers = ChannelLayerManager()


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> Any:
    """The layer configured under ``alias``, or ``None`` if there is no such alias."""
    try:
        return channel_layers[alias]
    except KeyError:
        return None
