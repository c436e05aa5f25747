"""What sandboxed code sees: user, cwd, hostname, network, processes, state."""

import json

import pytest

from helpers import stdout_of

pytestmark = pytest.mark.isolation


def run_json(service, code, language="python"):
    """Runs code that prints one JSON line; returns the parsed value."""
    r = service.execute(code, language)["result"]
    assert r["error"] is None, f"isolation probe failed: {r['error']!r}\nstderr: {''.join(r['logs']['stderr'])}"
    out = stdout_of(r).strip().splitlines()
    assert out, f"probe printed nothing: {r!r}"
    return json.loads(out[-1])


def test_identity_cwd_hostname_python(service):
    info = run_json(service, """
import json, os, socket
print(json.dumps({"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
                  "cwd": os.getcwd(), "home": os.environ.get("HOME"),
                  "hostname": socket.gethostname()}))
""")
    assert info["uid"] == 1000 and info["euid"] == 1000, f"code must run as uid 1000: {info}"
    assert info["cwd"] == "/home/user", info
    assert info["hostname"] == "sandbox", info
    assert info["home"] == "/home/user", info


def test_identity_bash(service):
    r = service.execute('echo "$(id -u) $(pwd) $(cat /proc/sys/kernel/hostname)"', "bash")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "1000 /home/user sandbox\n", r


def test_identity_javascript(service):
    r = service.execute("const os = require('os'); console.log(process.getuid(), process.cwd(), os.hostname())",
                        "javascript")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "1000 /home/user sandbox\n", r


def test_only_loopback_interface(service):
    names = run_json(service, """
import json, socket
try:
    names = sorted(n for _, n in socket.if_nameindex())
except OSError:
    with open('/proc/net/dev') as f:
        names = sorted(l.split(':')[0].strip() for l in f.readlines()[2:])
print(json.dumps(names))
""")
    assert names == ["lo"], f"the sandbox must have only the loopback interface, has {names}"


def test_no_outbound_network(service):
    res = run_json(service, """
import json, socket
out = {}
for name, addr in [("public_ip", ("1.1.1.1", 80)), ("public_dns", ("8.8.8.8", 53))]:
    try:
        s = socket.create_connection(addr, timeout=3)
        s.close()
        out[name] = "connected"
    except OSError as e:
        out[name] = "blocked: " + type(e).__name__
try:
    socket.getaddrinfo("example.com", 80)
    out["dns"] = "resolved"
except OSError as e:
    out["dns"] = "blocked: " + type(e).__name__
print(json.dumps(out))
""")
    for k, v in res.items():
        assert v.startswith("blocked"), f"network access must fail inside the sandbox: {res}"


def test_cannot_reach_the_service_on_host_loopback(service):
    """The sandbox's 127.0.0.1 is its own: the service's port is not there."""
    res = run_json(service, f"""
import json, socket
try:
    s = socket.create_connection(("127.0.0.1", {service.port}), timeout=3)
    s.close()
    print(json.dumps("connected"))
except OSError as e:
    print(json.dumps("blocked: " + type(e).__name__))
""")
    assert res.startswith("blocked"), f"sandboxed code reached the host service port {service.port}: {res}"


def test_host_processes_not_visible(service):
    res = run_json(service, """
import json, os
cmds = []
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            cmds.append(open(f'/proc/{p}/cmdline', 'rb').read().replace(b'\\0', b' ').decode(errors='replace'))
        except OSError:
            pass
print(json.dumps(cmds))
""")
    leaked = [c for c in res if "pytest" in c or "codeexec" in c]
    assert not leaked, f"host processes visible from inside the sandbox: {leaked}"
    assert len(res) < 20, f"suspiciously many processes visible in the sandbox: {res}"


def test_each_execution_starts_from_a_clean_sandbox(service):
    """Nothing written by one execution (variables, files) is seen by the next."""
    first = service.execute("leaked_value = 123\nopen('/home/user/leak.txt', 'w').write('x')\n"
                            "open('/tmp/leak.txt', 'w').write('x')", "python")
    assert first["result"]["error"] is None, first
    r = service.execute("import os\nprint('leaked_value' in globals(), os.path.exists('/home/user/leak.txt'),"
                        " os.path.exists('/tmp/leak.txt'))", "python")["result"]
    assert stdout_of(r) == "False False False\n", f"state leaked between executions: {r!r}"
