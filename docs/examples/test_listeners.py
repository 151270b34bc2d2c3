"""How `hub run --http ...` and HUB_LISTENERS entries are read."""

import ssl

import pytest
from hub.listeners import listener_from_setting, parse_listener


class TestAddresses:
    def test_host_and_port(self):
        listener = parse_listener("http", "0.0.0.0:8000")
        assert (listener.host, listener.port) == ("0.0.0.0", 8000)

    def test_a_bare_port_listens_on_loopback_only(self):
        listener = parse_listener("http", "8000")
        assert (listener.host, listener.port) == ("127.0.0.1", 8000)

    def test_ipv6_addresses_go_in_brackets(self):
        listener = parse_listener("http", "[::]:8000")
        assert (listener.host, listener.port) == ("::", 8000)

    def test_unix_sockets(self):
        assert parse_listener("http", "unix:/run/hub/http.sock").uds == "/run/hub/http.sock"

    def test_port_zero_asks_the_system_for_a_free_port(self):
        assert parse_listener("http", "127.0.0.1:0").port == 0


class TestOptions:
    def test_options_set_fields_of_the_protocols_config(self):
        listener = parse_listener(
            "http",
            "0.0.0.0:8443?ssl_certfile=/etc/hub/cert.pem&ssl_keyfile=/etc/hub/key.pem"
            "&ssl_cert_reqs=optional&forwarded_allow_ips=10.0.0.0/8,unix"
            "&max_body_size=1048576&ws_ping_interval=none&access_log=false",
        )
        config = listener.build_config()
        assert config.is_tls
        assert config.ssl_cert_reqs is ssl.CERT_OPTIONAL
        assert config.forwarded_allow_ips == ("10.0.0.0/8", "unix")
        assert config.max_body_size == 1048576
        assert config.ws_ping_interval is None
        assert config.access_log is False

    def test_an_unknown_option_is_an_error_listing_the_valid_ones(self):
        with pytest.raises(ValueError, match=r"Unknown option\(s\) max_bodysize .* valid options"):
            parse_listener("http", "8000?max_bodysize=1").build_config()

    def test_a_value_of_the_wrong_type_is_an_error(self):
        with pytest.raises(ValueError, match="Option max_body_size='big'"):
            parse_listener("http", "8000?max_body_size=big").build_config()


class TestSettings:
    def test_a_settings_entry_is_a_url(self):
        listener = listener_from_setting("http://0.0.0.0:8000?server_header=none")
        assert (listener.protocol, listener.host, listener.port) == ("http", "0.0.0.0", 8000)
        assert listener.build_config().server_header is None

    def test_a_settings_entry_may_be_a_dict(self):
        listener = listener_from_setting(
            {"protocol": "http", "host": "0.0.0.0", "port": 8000, "max_body_size": 1048576}
        )
        assert listener.build_config().max_body_size == 1048576

    def test_a_unix_socket_in_settings(self):
        assert listener_from_setting("http://unix:/run/hub/http.sock").uds == "/run/hub/http.sock"
