"""GET / (the playground page) and its assets, and the PLAYGROUND setting. The page
itself is driven in a real browser by tests/browser."""

from __future__ import annotations

import socket

import pytest

from helpers import Service, http_request

pytestmark = pytest.mark.validation


def test_page_and_assets_on_loopback(http):
    status, headers, body = resp = http("GET", "/")
    assert status == 200, resp
    assert headers["content-type"].startswith("text/html"), headers
    assert "<title>codeexec playground</title>" in body
    assert 'src="/playground/playground.js"' in body and "https://" not in body, "no CDN"
    js = http("GET", "/playground/playground.js")
    assert js.status == 200 and js.headers["content-type"].startswith("text/javascript"), js
    css = http("GET", "/playground/playground.css")
    assert css.status == 200 and css.headers["content-type"].startswith("text/css"), css


def test_unknown_asset_and_methods(http):
    for path in ("/playground/nope.js", "/playground/..%2F..%2Fetc%2Fpasswd", "/playground/"):
        resp = http("GET", path)
        assert resp.status == 404, (path, resp)
        assert resp.body["error"]["code"] == "not_found", resp
    resp = http("POST", "/", {})
    assert resp.status == 405 and resp.headers["allow"] == "GET", resp


def test_page_needs_no_key_but_the_api_does(service_factory):
    svc = service_factory(env={"API_KEYS": "k1"})
    assert svc.http("GET", "/").status == 200
    assert svc.http("POST", "/execute", {"code": "1"}).status == 401


def test_playground_off(service_factory):
    svc = service_factory(env={"PLAYGROUND": "off"})
    for path in ("/", "/playground/playground.js"):
        resp = svc.http("GET", path)
        assert resp.status == 404, resp
        assert "PLAYGROUND" in resp.body["error"]["message"], resp
    assert svc.http("GET", "/health").status == 200


def _non_loopback_address() -> str | None:
    """An address of this host that is not loopback (the route out), if any."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent
        address = s.getsockname()[0]
    except OSError:
        return None
    finally:
        s.close()
    return None if address.startswith("127.") else address


@pytest.mark.parametrize("setting,expected", [("auto", 404), ("on", 200)])
def test_non_loopback_clients(service_factory, setting, expected):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    svc = service_factory(env={"HOST": "0.0.0.0", "PLAYGROUND": setting})
    resp = http_request(f"http://{address}:{svc.port}", "GET", "/")
    assert resp.status == expected, resp
    assert http_request(f"http://{address}:{svc.port}", "GET", "/health").status == 200


def test_invalid_setting_refuses_to_start(tmp_path):
    svc = Service(env_overrides={"PLAYGROUND": "maybe"}, log_path=tmp_path / "bad.log", name="bad-playground")
    with pytest.raises(RuntimeError, match="PLAYGROUND=maybe"):
        svc.start(listen_timeout=20)
    svc.kill()
    svc.close_log()
