"""docs/security.md lists every limit as the code sets it (see tests/docs/limits.py)."""

from __future__ import annotations

import dataclasses

import pytest

from hub.listeners import PROTOCOLS
from tests.docs import limits

REGENERATE = "run `.venv/bin/python -m tests.docs.limits` to rewrite the tables"


@pytest.fixture(scope="module")
def page() -> str:
    return limits.PAGE.read_text()


class TestLimitsTables:
    @pytest.mark.parametrize("key", list(limits.TABLES))
    def test_each_table_is_on_the_page_as_the_code_generates_it(self, page, key):
        assert key in limits.table_keys(page), f"security.md has no <!-- limits: {key} --> table"
        block = next(m for m in limits.BLOCK.finditer(page) if m[2] == key)
        assert block[3] == limits.render(key), f"the {key} limits changed in the code: {REGENERATE}"

    @pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
    def test_every_registered_protocol_has_its_listener_options_listed(self, protocol):
        config = limits.resolve(PROTOCOLS[protocol].config)
        documented = [limits.resolve(path) for path in limits.CONFIG_TABLES.values()]
        assert config in documented, f"add {PROTOCOLS[protocol].config} to limits.CONFIG_TABLES"

    @pytest.mark.parametrize("key", list(limits.CONFIG_TABLES))
    def test_every_field_of_a_listener_config_is_a_row_with_its_default(self, page, key):
        cls = limits.resolve(limits.CONFIG_TABLES[key])
        rows = limits.TABLES[key]()
        listed = {
            name: value for row in rows for name, value in zip(row.names, row.defaults, strict=True)
        }
        assert listed == {field.name: field.default for field in dataclasses.fields(cls)}

    @pytest.mark.parametrize("key", list(limits.TABLES))
    def test_every_limit_says_why(self, key):
        for row in limits.TABLES[key]():
            assert row.why.strip(" ."), f"{row.names} in {key} has no comment in the source"


class TestDefaultFormat:
    @pytest.mark.parametrize(
        ("name", "value", "shown"),
        [
            ("max_body_size", 16 * 1024 * 1024, "16 MiB"),
            ("write_buffer_high_water", 64 * 1024, "64 KiB"),
            ("backlog", 2048, "2048"),
            ("max_connections", 10_000, "10,000"),
            ("request_head_timeout", 10.0, "10 s"),
            ("ws_ping_interval", None, "`None`"),
            ("server_header", "hub", '`"hub"`'),
            ("auth_mechanisms", ("PLAIN",), "`('PLAIN',)`"),
        ],
    )
    def test_a_default_is_shown_in_its_unit(self, name, value, shown):
        assert limits.format_default(name, value) == shown

    def test_a_pipe_in_a_comment_does_not_split_the_table_cell(self):
        assert limits.clean("raw | line") == "Raw \\| line"
