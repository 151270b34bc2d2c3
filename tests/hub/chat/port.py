"""Port ``channels_chat`` to hub the way a user would: change its imports, nothing else."""

import re
import sys
import types
from pathlib import Path

SOURCE = Path(__file__).with_name("channels_chat.py")

_CHANNELS_IMPORT = re.compile(r"^(from|import) channels(\.|\s)", re.MULTILINE)


def port_source(source: str) -> str:
    """``source`` with every ``channels`` import turned into the same ``hub`` import."""
    return _CHANNELS_IMPORT.sub(lambda m: f"{m.group(1)} hub{m.group(2)}", source)


def load_ported_chat() -> types.ModuleType:
    """The chat application ported to hub, as module ``tests.hub.chat.hub_chat``."""
    name = "tests.hub.chat.hub_chat"
    if name in sys.modules:
        return sys.modules[name]
    module = types.ModuleType(name)
    module.__file__ = str(SOURCE)
    code = compile(port_source(SOURCE.read_text()), f"{SOURCE} (ported to hub)", "exec")
    sys.modules[name] = module
    exec(code, module.__dict__)
    return module
