"""The ``hub`` command: ``hub run`` serves an ASGI application, ``hub demo`` the demo.

Every option comes from one place: :class:`RunConfig`'s fields (their help is
their metadata) and one ``--<protocol>`` flag per registered protocol
(:data:`hub.listeners.PROTOCOLS`). ``python -m hub`` is the same command, and
``manage.py runhub`` calls :func:`run` too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hub.listeners import PROTOCOLS, ListenerSpec, listener_from_setting, parse_listener
from hub.types import ASGIApp
from protocols.lifespan import LifespanFailure

logger = logging.getLogger("hub.cli")


@dataclass
class RunConfig:
    """Everything ``hub run`` needs; the command line is generated from these fields."""

    app: str | None = field(
        default=None,
        metadata={
            "help": "ASGI application as module:attribute (default: the Django project's "
            "ASGI_APPLICATION, or Django's own ASGI handler)"
        },
    )
    settings: str | None = field(
        default=None, metadata={"help": "Django settings module (default: DJANGO_SETTINGS_MODULE)"}
    )
    workers: int | None = field(
        default=None,
        metadata={"help": "processes sharing each port; a crashed one is restarted (HUB_WORKERS)"},
    )
    shutdown_grace: float | None = field(
        default=None,
        metadata={"help": "seconds in-flight work gets to finish on SIGTERM (HUB_SHUTDOWN_GRACE)"},
    )
    lifespan: str | None = field(
        default=None,
        metadata={
            "help": "ASGI lifespan: auto, on or off (HUB_LIFESPAN)",
            "choices": ["auto", "on", "off"],
        },
    )
    reload: bool = field(default=False, metadata={"help": "restart when Python files change"})
    static: bool = field(
        default=False, metadata={"help": "serve Django's static files (as runserver in DEBUG)"}
    )
    log_level: str = field(
        default="info",
        metadata={"help": "log level", "choices": ["debug", "info", "warning", "error"]},
    )
    loop: str = field(
        default="auto",
        metadata={
            "help": "event loop: uvloop when installed (auto), uvloop or asyncio",
            "choices": ["auto", "uvloop", "asyncio"],
        },
    )
    listeners: list[ListenerSpec] = field(default_factory=list, metadata={"cli": False})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="hub: a multi-protocol hub for Django")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="serve an ASGI application on hub's listeners")
    add_run_arguments(run_parser)
    demo_parser = commands.add_parser("demo", help="run the all-protocol demo (examples/demo)")
    from hub.demo import add_demo_arguments

    add_demo_arguments(demo_parser)
    return parser


def add_run_arguments(
    parser: argparse.ArgumentParser, *, include_app: bool = True, include_settings: bool = True
) -> None:
    """Add every ``hub run`` option to ``parser`` (also used by ``manage.py runhub``)."""
    for item in dataclasses.fields(RunConfig):
        metadata = item.metadata
        if metadata.get("cli", True) is False:
            continue
        if (item.name == "app" and not include_app) or (
            item.name == "settings" and not include_settings
        ):
            continue
        if item.name == "app":
            parser.add_argument("app", nargs="?", default=None, help=metadata["help"])
            continue
        flag = "--" + item.name.replace("_", "-")
        if item.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=metadata["help"])
            continue
        converter = {"int | None": int, "float | None": float}.get(str(item.type), str)
        parser.add_argument(
            flag,
            type=converter,
            default=None,
            choices=metadata.get("choices"),
            help=metadata["help"],
        )
    for entry in PROTOCOLS.values():
        parser.add_argument(
            f"--{entry.name}",
            action="append",
            default=[],
            metavar="NAME=ADDRESS" if entry.named else "ADDRESS",
            help=f"{entry.help}; repeatable",
        )


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """A :class:`RunConfig` from parsed ``hub run`` arguments."""
    values: dict[str, Any] = {
        item.name: getattr(args, item.name, None)
        for item in dataclasses.fields(RunConfig)
        if item.metadata.get("cli", True) is not False
        and getattr(args, item.name, None) is not None
    }
    listeners = [
        parse_listener(entry.name, text)
        for entry in PROTOCOLS.values()
        for text in getattr(args, entry.name.replace("-", "_"))
    ]
    return RunConfig(**values, listeners=listeners)


def setup_django(settings_module: str | None) -> bool:
    """Configure Django if a settings module is known; return whether it is."""
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        return False
    # As manage.py and ``python -m`` do: the project is importable from where it runs.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    import django

    django.setup()
    return True


def resolve(config: RunConfig, with_django: bool) -> RunConfig:
    """``config`` with every unset value taken from settings or the defaults."""
    from hub.conf import hub_setting

    listeners = config.listeners or [
        listener_from_setting(item) for item in hub_setting("HUB_LISTENERS")
    ]
    return dataclasses.replace(
        config,
        workers=config.workers or hub_setting("HUB_WORKERS"),
        shutdown_grace=(
            hub_setting("HUB_SHUTDOWN_GRACE")
            if config.shutdown_grace is None
            else config.shutdown_grace
        ),
        lifespan=config.lifespan or hub_setting("HUB_LIFESPAN"),
        listeners=listeners,
    )


def load_application(path: str | None, *, static: bool = False) -> ASGIApp:
    """The ASGI application at ``module:attribute``, or the Django project's.

    Raises:
        ImportError / AttributeError / ValueError: the application cannot be found.
    """
    if path:
        module_name, colon, attribute = path.partition(":")
        if not colon:
            raise ValueError(f"APP must be module:attribute, got {path!r}")
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        application: ASGIApp = getattr(importlib.import_module(module_name), attribute)
    else:
        from django.conf import settings

        if not settings.configured:
            raise ValueError(
                "No APP given and no Django settings: pass module:attribute, "
                "or --settings / DJANGO_SETTINGS_MODULE"
            )
        if getattr(settings, "ASGI_APPLICATION", None):
            from hub.routing import get_default_application

            application = get_default_application()
        else:
            from django.core.asgi import get_asgi_application

            application = cast(ASGIApp, get_asgi_application())
    if static:
        from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

        application = cast(ASGIApp, ASGIStaticFilesHandler(application))  # type: ignore[arg-type]
    return application


def new_event_loop(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


def serve(
    config: RunConfig,
    sockets: dict[int, Any] | None = None,
    on_started: Callable[[Any], None] | None = None,
) -> None:
    """Serve ``config`` in this process until SIGTERM or SIGINT."""
    from hub.server import Hub

    application = load_application(config.app, static=config.static)
    hub = Hub(
        application,
        config.listeners,
        shutdown_grace=config.shutdown_grace or 0.0,
        lifespan=config.lifespan or "auto",
        sockets=sockets,
    )

    # Django's autoreloader serves from a thread, where signals cannot be
    # handled; there, as with runserver, a signal ends the process at once.
    in_main_thread = threading.current_thread() is threading.main_thread()

    async def main() -> None:
        await hub.serve(install_signals=in_main_thread, on_started=on_started)

    with asyncio.Runner(loop_factory=new_event_loop(config.loop)) as runner:
        runner.run(main())


def worker_main(
    index: int,
    listeners: list[ListenerSpec],
    unix: dict[int, Any],
    ready: Any,
    config: RunConfig,
) -> None:
    """Entry point of one ``--workers`` process (see :mod:`hub.workers`)."""
    from hub.workers import bind_reuseport

    configure_logging(config.log_level)
    setup_django(config.settings)
    # Bound but not listening: the server listens once it is ready to accept,
    # so the kernel never queues a connection on a worker that is still starting.
    sockets = {
        i: unix[i] if i in unix else bind_reuseport(spec.host, spec.port or 0, listen=False)
        for i, spec in enumerate(listeners)
        if not spec.entry.outbound
    }
    # Each worker's bridge connects with its own client id (<client_id>-<worker>).
    for spec in listeners:
        if spec.entry.outbound:
            spec.options["worker"] = index
    config = dataclasses.replace(config, listeners=listeners)
    serve(config, sockets=sockets, on_started=lambda hub: ready.put(index))


def run(config: RunConfig, on_started: Callable[[list[str]], None] | None = None) -> None:
    """Run hub as configured: in this process, or as supervised workers."""
    configure_logging(config.log_level)
    with_django = setup_django(config.settings)
    config = resolve(config, with_django)
    if config.reload:
        from django.utils import autoreload

        def inner() -> None:
            serve(
                dataclasses.replace(config, reload=False), on_started=_banner_from_hub(on_started)
            )

        autoreload.run_with_reloader(inner)
        return
    if (config.workers or 1) > 1:
        from hub.workers import Supervisor

        warn_about_process_local_layer(config.workers or 1)

        def ready(resolved: list[ListenerSpec]) -> None:
            urls = [listener_url(spec) for spec in resolved]
            print_banner(urls, config.workers or 1)
            if on_started:
                on_started(urls)

        Supervisor(
            config.workers or 1,
            worker_main,
            config.listeners,
            (config,),
            ready,
            stop_timeout=(config.shutdown_grace or 0) + 10,
        ).run()
        return
    serve(config, on_started=_banner_from_hub(on_started))


def listener_url(spec: ListenerSpec) -> str:
    """The URL of a listener from its spec (the workers' supervisor has no server to ask)."""
    entry = spec.entry
    config = spec.build_config()
    scheme = entry.tls_scheme if getattr(config, "is_tls", False) else entry.scheme
    prefix = f"{spec.name}=" if spec.name else ""
    if entry.outbound:
        return f"{scheme}://{config.host}:{config.port}"
    if spec.uds:
        return f"{prefix}{scheme}+unix://{spec.uds}"
    host = f"[{spec.host}]" if ":" in spec.host else spec.host
    return f"{prefix}{scheme}://{host}:{spec.port}"


def warn_about_process_local_layer(workers: int) -> None:
    """Each worker has its own in-memory layer: groups do not span them."""
    from django.conf import settings

    if not settings.configured:
        return
    from hub.layers.manager import channel_layers

    backend = channel_layers.configs.get("default", {}).get("BACKEND", "")
    if backend.endswith("InMemoryChannelLayer"):
        logger.warning(
            "%d workers with the in-memory channel layer (%s): each worker has its own, "
            "so group_send reaches only consumers in the same worker; use "
            "hub.layers.redis.RedisChannelLayer",
            workers,
            backend,
        )


def _banner_from_hub(on_started: Callable[[list[str]], None] | None) -> Callable[[Any], None]:
    def started(hub: Any) -> None:
        urls = [url for _, url in hub.urls()]
        print_banner(urls, 1)
        if on_started:
            on_started(urls)

    return started


def print_banner(urls: Sequence[str], workers: int) -> None:
    from hub import __version__

    lines = [f"hub {__version__}, pid {os.getpid()}, {workers} worker(s)"]
    lines += [f"  {url}" for url in urls]
    lines.append("Quit with CONTROL-C.")
    print("\n".join(lines), flush=True)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """The ``hub`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "run":
        try:
            run(config_from_args(args))
        except (ValueError, ImportError, OSError, LifespanFailure) as exc:
            print(f"hub: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
    elif args.command == "demo":
        from hub.demo import run_demo

        run_demo(args)
