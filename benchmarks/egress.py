"""Egress through the proxy against a direct connection, in one run.

Figures (JSON lines, each beside its same-run baseline):

- ``egress.https_request_ms``: one HTTPS request on a fresh connection (TCP, TLS with a
  verified certificate, GET, read to the end) from inside a network-less container,
  through the shim, the exec stream and the host-side proxy; baseline
  ``egress.direct_https_request_ms``, the same client on the host straight to the origin;
  ``egress.host_proxy_https_request_ms`` splits off the proxy's own cost (the same
  client on the host through the proxy, no container).  ``added_ms`` is the difference
  of the p50s.
- ``egress.download_mb_s`` / ``egress.upload_mb_s``: one large body each way, through
  the container, beside the direct figures.
- ``egress.exec_start_ms``: starting one ``docker exec`` stream — what a design with one
  exec per connection would add to every connection; the shim multiplexes them on one.

The origin is a loopback HTTPS server; the proxy's resolver maps its name to it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker

from agent.egress import PolicyGate
from policies.network import NetworkRules, parse_host_pattern
from sandbox.build import DEFAULT_IMAGE
from sandbox.docker import DockerSandbox, DockerSandboxConfig
from sandbox.docker_exec import ExecStream
from sandbox.egress.proxy import EgressProxy
from sandbox.egress.relay import PROXY_PORT
from sandbox.egress.resolver import MappedResolver
from tests.egress.servers import Certificate, OriginServer, ProxyListener, make_certificate

NAME = "origin.example"
REQUESTS = 40
BULK_BYTES = 64 * 1000 * 1000
EXEC_STARTS = 10

# One client for every path: a fresh TCP connection (through CONNECT when a proxy is
# given), TLS verified for NAME, one request, the whole answer read.  Standard library only.
CLIENT = r"""
import json, socket, ssl, sys, time
mode, target, port, proxy, count, size, pem = sys.argv[1:8]
port, proxy, count, size = int(port), int(proxy), int(count), int(size)
context = ssl.create_default_context(cadata=pem)
def connect():
    if not proxy:
        return socket.create_connection((target, port))
    sock = socket.create_connection(("127.0.0.1", proxy))
    sock.sendall(f"CONNECT {NAME}:{port} HTTP/1.1\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock
def exchange(request, body=b""):
    with context.wrap_socket(connect(), server_hostname=NAME) as tls:
        tls.sendall(request)
        view = memoryview(body)
        while view:
            view = view[tls.send(view[:1 << 20]):]
        got = 0
        while chunk := tls.recv(1 << 20):
            got += len(chunk)
        return got
def get(path):
    return exchange(f"GET {path} HTTP/1.1\r\nHost: {NAME}\r\nConnection: close\r\n\r\n".encode())
if mode == "requests":
    times = []
    for _ in range(count):
        began = time.perf_counter()
        get("/hello")
        times.append((time.perf_counter() - began) * 1000)
    print(json.dumps(times))
elif mode == "download":
    began = time.perf_counter(); got = get(f"/blob?size={size}")
    print(json.dumps({"seconds": time.perf_counter() - began, "bytes": got}))
else:
    head = (f"POST /upload HTTP/1.1\r\nHost: {NAME}\r\nContent-Length: {size}\r\n"
            "Connection: close\r\n\r\n").encode()
    began = time.perf_counter(); exchange(head, b"u" * size)
    print(json.dumps({"seconds": time.perf_counter() - began, "bytes": size}))
""".replace("NAME", repr(NAME))


def _client_args(mode: str, target: str, port: int, proxy: int, certificate: Certificate,
                 count: int = REQUESTS, size: int = BULK_BYTES) -> list[str]:
    return ["-c", CLIENT, mode, target, str(port), str(proxy), str(count), str(size),
            certificate.pem]


def _on_host(args: list[str]) -> Any:
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=True,
                          timeout=300)
    return json.loads(done.stdout)


def _in_box(box: DockerSandbox, args: list[str]) -> Any:
    result = box.check(["python3", *args], timeout_s=300)
    if result.exit_code != 0:
        raise RuntimeError(f"the client in the container failed: {result.stderr[-500:]}")
    return json.loads(result.stdout)


def _latency_rows(name: str, times: list[float], **extra: Any) -> list[dict[str, Any]]:
    ordered = sorted(times)
    return [{"name": f"{name}.p50", "value": round(statistics.median(ordered), 2), "unit": "ms",
             **extra},
            {"name": f"{name}.p95", "value": round(ordered[int(len(ordered) * 0.95) - 1], 2),
             "unit": "ms"}]


def _rate(measured: dict[str, float]) -> float:
    return round(measured["bytes"] / measured["seconds"] / 1e6, 1)


def _exec_start_ms(client: docker.DockerClient, container_id: str) -> list[float]:
    times = []
    for _ in range(EXEC_STARTS):
        began = time.perf_counter()
        stream = ExecStream.start(client.api, container_id, ["/bin/true"])
        stream.reader.read()
        stream.close()
        times.append((time.perf_counter() - began) * 1000)
    return times


def run_benchmarks(image: str = DEFAULT_IMAGE) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as folder:
        certificate = make_certificate(Path(folder), [NAME])
        with OriginServer(certificate) as origin:
            return _measure(image, certificate, origin)


def _measure(image: str, certificate: Certificate, origin: OriginServer) -> list[dict[str, Any]]:
    rules = NetworkRules(mode="allowlist", allow=(parse_host_pattern(NAME),))
    proxy = EgressProxy(PolicyGate(rules), resolver=MappedResolver(public={NAME: "127.0.0.1"}))
    port = origin.port
    direct = _on_host(_client_args("requests", "127.0.0.1", port, 0, certificate))
    with ProxyListener(proxy) as listener:
        host_proxy = _on_host(_client_args("requests", "", port, listener.port, certificate))
    client = docker.from_env()
    with DockerSandbox(client, DockerSandboxConfig(image=image, egress=proxy.handle)) as box:
        boxed = _in_box(box, _client_args("requests", "", port, PROXY_PORT, certificate))
        down = _in_box(box, _client_args("download", "", port, PROXY_PORT, certificate))
        up = _in_box(box, _client_args("upload", "", port, PROXY_PORT, certificate))
        exec_ms = _exec_start_ms(client, box.container_id)
    direct_down = _on_host(_client_args("download", "127.0.0.1", port, 0, certificate))
    direct_up = _on_host(_client_args("upload", "127.0.0.1", port, 0, certificate))
    added = statistics.median(boxed) - statistics.median(direct)
    rows = _latency_rows("egress.https_request_ms", boxed, added_ms=round(added, 2),
                         baseline=round(statistics.median(direct), 2), requests=len(boxed))
    rows += _latency_rows("egress.direct_https_request_ms", direct)
    rows += _latency_rows("egress.host_proxy_https_request_ms", host_proxy)
    rows += [
        {"name": "egress.download_mb_s", "value": _rate(down), "unit": "MB/s",
         "baseline": _rate(direct_down), "bytes": BULK_BYTES},
        {"name": "egress.upload_mb_s", "value": _rate(up), "unit": "MB/s",
         "baseline": _rate(direct_up), "bytes": BULK_BYTES},
    ]
    rows += _latency_rows("egress.exec_start_ms", exec_ms)
    return rows


if __name__ == "__main__":
    for row in run_benchmarks(*sys.argv[1:2]):
        print(json.dumps(row))
