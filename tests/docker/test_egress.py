"""Egress by allowlist in a real container: curl inside reaches an allowed loopback HTTPS
origin through the shim and the host-side proxy, and nothing else; every attempt is in the
audit chain; the container keeps network none and only ``lo``.

The origin listens on the host's loopback; the proxy's resolver seam maps public-looking
names to it (``allowed.example``), which is the only way a loopback target is reached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import pytest

from agent.egress import RunEgress, egress_for_run
from audit.log import AuditLog
from audit.records import SessionInfo
from audit.verify import verify
from policies.network import NetworkRules, parse_host_pattern
from sandbox.base import CheckResult
from sandbox.build import BuildOptions, SilentProgress, build_image, default_cache_dir
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.egress.resolver import MappedResolver
from tests.egress.servers import Certificate, OriginServer, make_certificate

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

# Its own tag: parallel rebuilds of :latest on a shared engine cannot swap the image mid-module.
EGRESS_IMAGE = "deskhand/desktop:egress"
BROWSER_IMAGE = "deskhand/desktop:egress-browser"
APPROVAL_TIMEOUT_S = 2.0
PUBLIC_IP = "93.184.215.14"  # any public address: the proxy must not dial it
RESOLVER = MappedResolver(public={"allowed.example": "127.0.0.1", "other.example": "127.0.0.1",
                                  "denied.example": "127.0.0.1", "unknown.example": "127.0.0.1"},
                          plain={"rebind.example": "127.0.0.1"})
SNI_MISMATCH = """
import socket, ssl, sys
sock = socket.create_connection(("127.0.0.1", 3128))
sock.sendall(f"CONNECT allowed.example:{sys.argv[1]} HTTP/1.1\\r\\n\\r\\n".encode())
print(sock.recv(200).split(b"\\r\\n")[0].decode())
try:
    ssl._create_unverified_context().wrap_socket(sock, server_hostname="other.example")
    print("handshake done")
except (ssl.SSLError, OSError) as exc:
    print("refused:", exc)
"""


@dataclass
class Egress:
    box: DockerSandbox
    log: AuditLog
    session_id: str
    origin: OriginServer
    certificate: Certificate
    egress: RunEgress

    def curl(self, url: str, *extra: str) -> CheckResult:
        script = 'curl -sS -v --max-time 20 --cacert <(printf %s "$0") "$@"'
        return self.box.check(["bash", "-c", script, self.certificate.pem, *extra, url],
                              timeout_s=25)

    def url(self, host: str) -> str:
        return f"https://{host}:{self.origin.port}/hello"

    def attempts(self, host: str, count: int = 1, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        """The recorded attempts to ``host``, once ``count`` of them are in (recording
        follows the connection's close, which curl does not wait for)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = [e.data for e in self.log.events(self.session_id)
                     if e.kind == "network" and e.data["host"] == host
                     and e.data["kind"] != "selfcheck"]
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.02)


@pytest.fixture(scope="module")
def egress_image(docker_client: docker.DockerClient) -> str:
    options = BuildOptions(cache_dir=default_cache_dir(), image=EGRESS_IMAGE)
    return build_image(docker_client, options, SilentProgress()).image


@pytest.fixture(scope="module")
def setup(docker_client: docker.DockerClient, egress_image: str,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Egress]:
    folder = tmp_path_factory.mktemp("egress")
    certificate = make_certificate(folder, ["allowed.example", "other.example",
                                            "unknown.example", "rebind.example"])
    with OriginServer(certificate) as origin, AuditLog.open(folder / "audit.db") as log:
        rules = NetworkRules(mode="allowlist", allow=tuple(map(parse_host_pattern, [
            f"allowed.example:{origin.port}", "rebind.example"])),
            deny=(parse_host_pattern("denied.example"),))
        egress = egress_for_run(rules, log, approval_timeout_s=APPROVAL_TIMEOUT_S,
                                resolver=RESOLVER)
        assert egress.proxy is not None
        config = DockerSandboxConfig(image=egress_image, egress=egress.proxy.handle)
        with DockerSandbox(docker_client, config) as box:
            session_id = log.start_session(SessionInfo(
                task="egress", planner="script", model="", policy_name="t",
                policy_sha256="0" * 64, sandbox_kind="docker", sandbox_image=egress_image,
                screen_width=box.size.width, screen_height=box.size.height, network=False,
                extra={"egress": egress.describe()}))
            egress.start_session(session_id)
            yield Egress(box, log, session_id, origin, certificate, egress)


def test_curl_reaches_an_allowed_host_with_verified_tls(setup: Egress) -> None:
    result = setup.curl(setup.url("allowed.example"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"hello from allowed.example:{setup.origin.port}\n"
    (attempt,) = setup.attempts("allowed.example")
    assert attempt["outcome"] == "allowed"
    assert attempt["sni"] == "allowed.example"
    assert attempt["bytes_down"] > 500


def test_a_denied_host_gets_a_403_naming_the_rule(setup: Egress) -> None:
    result = setup.curl(setup.url("denied.example"))
    assert result.exit_code == 56
    assert "CONNECT tunnel failed, response 403" in result.stderr
    assert "X-Deskhand-Rule: network.deny:denied.example" in result.stderr
    assert setup.attempts("denied.example")[0]["outcome"] == "denied"


def test_a_direct_ip_fails_through_the_proxy_and_without_it(setup: Egress) -> None:
    through = setup.curl(f"https://{PUBLIC_IP}/")
    around = setup.curl("https://1.1.1.1/", "--noproxy", "*", "--connect-timeout", "3")
    assert "X-Deskhand-Rule: network.unlisted-address" in through.stderr
    assert through.exit_code == 56
    assert around.exit_code == 7  # couldn't connect: there is no route out
    assert setup.attempts(PUBLIC_IP)[0]["rule"] == "network.unlisted-address"


def test_an_sni_other_than_the_connect_host_is_refused(setup: Egress) -> None:
    result = setup.box.check(["python3", "-c", SNI_MISMATCH, str(setup.origin.port)])
    first, second = result.stdout.splitlines()
    assert first == "HTTP/1.1 200 Connection established"
    assert "UNRECOGNIZED_NAME" in second
    (attempt,) = setup.attempts("allowed.example", count=2)[1:]
    assert (attempt["outcome"], attempt["rule"], attempt["sni"]) == (
        "refused", "egress.sni-mismatch", "other.example")


def test_a_rebinding_name_resolving_to_a_private_address_is_refused(setup: Egress) -> None:
    result = setup.curl(setup.url("rebind.example"))
    assert "X-Deskhand-Rule: egress.private-address" in result.stderr
    (attempt,) = setup.attempts("rebind.example")
    assert attempt["address"] is None


def test_an_unknown_host_waits_for_approval_and_is_denied_on_timeout(setup: Egress) -> None:
    results: list[CheckResult] = []
    curl = threading.Thread(target=lambda: results.append(setup.curl(setup.url(
        "unknown.example"))))
    curl.start()
    pending = wait_until(lambda: setup.log.pending_approvals(setup.session_id))
    assert pending[0].summary == f"network: tunnel to unknown.example:{setup.origin.port}"
    curl.join(30)
    assert "X-Deskhand-Rule: network.unlisted" in results[0].stderr
    (approval,) = [a for a in setup.log.approvals(setup.session_id) if a.id == pending[0].id]
    assert approval.status == "expired"
    assert "no answer in time" in setup.attempts("unknown.example")[0]["reason"]


def test_the_self_check_and_every_attempt_are_in_a_chain_that_verifies(setup: Egress) -> None:
    kinds = [e.kind for e in setup.log.events(setup.session_id)]
    assert "network_selfcheck" in kinds
    check = next(e.data for e in setup.log.events(setup.session_id)
                 if e.kind == "network_selfcheck")
    assert check["ok"] is True
    assert check["allowed"]["outcome"] == "allowed"
    assert verify(setup.log.path).ok


def test_the_container_keeps_network_none_and_only_lo(setup: Egress,
                                                      docker_client: docker.DockerClient) -> None:
    attrs = docker_client.api.inspect_container(setup.box.container_id)
    assert attrs["HostConfig"]["NetworkMode"] == "none"
    assert not attrs["HostConfig"].get("CapAdd")
    assert setup.box.egress_mode == "allowlist"
    interfaces = setup.box.check(["ls", "/sys/class/net"]).stdout.split()
    assert interfaces == ["lo"]


@pytest.fixture(scope="module")
def browser_box(setup: Egress, docker_client: docker.DockerClient) -> Iterator[DockerSandbox]:
    """A second desktop with the browser, on the same proxy and session (only when the
    browser variant of this image is built: it is large, so the tests never build it)."""
    try:
        docker_client.images.get(BROWSER_IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"no {BROWSER_IMAGE}: build the image with WITH_BROWSER=1 under that tag")
    assert setup.egress.proxy is not None
    config = DockerSandboxConfig(image=BROWSER_IMAGE, egress=setup.egress.proxy.handle)
    with DockerSandbox(docker_client, config) as box:
        yield box


def test_the_browser_reaches_an_allowed_host_and_not_a_denied_one(
        setup: Egress, browser_box: DockerSandbox) -> None:
    def dump(host: str) -> CheckResult:
        return browser_box.check(["chromium", "--headless", "--disable-gpu",
                                  "--ignore-certificate-errors", "--dump-dom", setup.url(host)],
                                 timeout_s=90)

    allowed = dump("allowed.example")
    assert f"hello from allowed.example:{setup.origin.port}" in allowed.stdout, allowed.stderr
    dump("denied.example")
    assert all(a["outcome"] == "denied" for a in setup.attempts("denied.example", count=2))
    sni = [a["sni"] for a in setup.attempts("allowed.example", count=3)]
    assert sni.count("allowed.example") >= 2  # curl's and the browser's


def wait_until(probe: Callable[[], list[Any]], timeout_s: float = 15.0) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while not (found := probe()):
        assert time.monotonic() < deadline, "the state never came"
        time.sleep(0.02)
    return found


