"""``manage.py runhub``: like ``runserver`` in DEBUG (reload, static files, banner)."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.hubprocess import HubProcess

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the demo project with its own database, safe to edit."""
    copy = tmp_path / "demo"
    shutil.copytree(DEMO, copy, ignore=shutil.ignore_patterns("*.sqlite3", "__pycache__"))
    return copy


def start_runhub(project: Path, *args: str) -> HubProcess:
    env = {
        "PYTHONPATH": str(project),
        "HUB_DEMO_DATA_DIR": str(project),
        "DJANGO_SETTINGS_MODULE": "demo.settings",
    }
    HubProcess.run_command([str(project / "manage.py"), "migrate", "-v", "0"], env=env)
    return HubProcess(str(project / "manage.py"), "runhub", *args, env=env, module=False)


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


class TestDebug:
    def test_serves_the_project_and_its_static_files_with_a_banner(self, project):
        hub = start_runhub(project, "127.0.0.1:0")
        try:
            [url] = hub.urls
            assert get(url + "/")[0] == 200
            status, body = get(url + "/static/dashboard/dashboard.js")
            assert status == 200
            assert b"DashboardConsumer" in body
        finally:
            hub.stop()

    def test_reloads_when_a_python_file_changes(self, project):
        hub = start_runhub(project, "127.0.0.1:0")
        try:
            first_banner = hub.read_until("Quit with CONTROL-C")
            views = project / "dashboard" / "views.py"
            # The reloader gives no sign of having taken its first snapshot of
            # the files, so touch the file until it notices.
            for attempt in range(20):
                views.write_text(views.read_text() + f"\n# touched by the test ({attempt})\n")
                try:
                    reloaded = hub.read_until("changed, reloading", after=first_banner, timeout=2)
                    break
                except AssertionError:
                    continue
            else:
                raise AssertionError("runhub never reloaded:\n" + "".join(hub.output))
            hub.read_until("Quit with CONTROL-C", after=reloaded)
        finally:
            hub.stop()

    def test_nostatic_and_noreload_turn_them_off(self, project):
        hub = start_runhub(project, "127.0.0.1:0", "--nostatic", "--noreload")
        try:
            [url] = hub.urls
            with pytest.raises(urllib.error.HTTPError) as error:
                get(url + "/static/dashboard/dashboard.js")
            assert error.value.code == 404
        finally:
            hub.stop()
