"""A throwaway Kubernetes control plane on loopback for the cluster tests, built from tools/ by
`make tools-go`: etcd, kube-apiserver (default admission plugins, PodSecurity included; a static
admin token; self-signed serving certificate), kube-controller-manager, kube-scheduler, and kwok
faking three Ready nodes in three zones and the pods' lifecycles (kwok's own node/pod stages from
its module, plus ours in stages/). Everything lives in a temporary directory and stops at the end."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = REPO / ".tools" / "bin"
ZONES = ("zone-a", "zone-b", "zone-c")
# kwok's stages, from the kwok module `make tools-go` built (its module cache): the "fast" pod stages
# (a scheduled pod is Running and Ready at once, a Job's pod completes, a deleted pod goes) rather than
# the "general" ones, whose 1-6 s delay per step made every rollout step wait for nothing
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat/node-heartbeat.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")


@dataclass
class Cluster:
    kubeconfig: Path
    server: str
    token: str
    workdir: Path
    started_in: float

    def api(self, method: str, path: str, body: dict | None = None,
            content_type: str = "application/json") -> dict:
        request = urllib.request.Request(self.server + path, method=method,
                                         data=None if body is None else json.dumps(body).encode(),
                                         headers={"Authorization": f"Bearer {self.token}",
                                                  "Content-Type": content_type})
        with urllib.request.urlopen(request, context=_insecure(), timeout=30) as response:
            return json.loads(response.read() or b"{}")


def _insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the apiserver's self-signed cert
    return context


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    path = BIN / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `make tools-go`")
    return str(path)


def go_module_dir(tools_module: str, module: str) -> Path:
    """Where the Go module cache holds `module` at the version tools/<tools_module>/go.mod pins
    (`make tools-go` / `make argo-cd-crds` downloaded it)."""
    done = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", module], cwd=REPO / "tools" / tools_module,
                          capture_output=True, text=True, check=False, env={**os.environ, "GOFLAGS": "-mod=readonly"})
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"cannot locate the {module} module pinned by tools/{tools_module} "
                           f"(run `make test-cluster`'s prerequisites): {done.stderr.strip()}")
    return Path(done.stdout.strip())


def kwok_stage_dir() -> Path:
    return go_module_dir("kwok", "sigs.k8s.io/kwok") / "kustomize" / "stage"


def _until(check, what: str, logs: list[Path], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}" for p in logs if p.exists())
            raise RuntimeError(f"gave up waiting for {what}\n{tails}")
        time.sleep(0.2)


@contextmanager
def control_plane() -> Iterator[Cluster]:
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="eafix-k8s-"))
    procs: list[subprocess.Popen] = []
    logs: list[Path] = []

    def start(name: str, *args: str) -> None:
        log = workdir / f"{name}.log"
        logs.append(log)
        procs.append(subprocess.Popen([_binary(name), *args], stdout=log.open("w"), stderr=subprocess.STDOUT))

    try:
        token = secrets.token_hex(16)
        (workdir / "tokens.csv").write_text(f"{token},admin,admin,system:masters\n")
        subprocess.run(["openssl", "genrsa", "-out", str(workdir / "sa.key"), "2048"], check=True, capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(workdir / "sa.key"), "-pubout", "-out", str(workdir / "sa.pub")],
                       check=True, capture_output=True)
        client, peer, api = _free_port(), _free_port(), _free_port()
        start("etcd", "--name", "default", "--data-dir", str(workdir / "etcd"),
              "--listen-client-urls", f"http://127.0.0.1:{client}", "--advertise-client-urls",
              f"http://127.0.0.1:{client}", "--listen-peer-urls", f"http://127.0.0.1:{peer}",
              "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
              "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--unsafe-no-fsync")
        start("kube-apiserver", "--etcd-servers", f"http://127.0.0.1:{client}", "--secure-port", str(api),
              "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
              "--endpoint-reconciler-type", "none",  # a loopback address cannot back the kubernetes Service
              "--cert-dir", str(workdir / "certs"), "--token-auth-file", str(workdir / "tokens.csv"),
              "--authorization-mode", "RBAC", "--service-account-issuer", "https://kubernetes.default.svc",
              "--service-account-key-file", str(workdir / "sa.pub"),
              "--service-account-signing-key-file", str(workdir / "sa.key"),
              "--service-cluster-ip-range", "10.96.0.0/16")
        server = f"https://127.0.0.1:{api}"
        cluster = Cluster(workdir / "kubeconfig", server, token, workdir, 0.0)

        def ready() -> bool:
            request = urllib.request.Request(server + "/readyz", headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, context=_insecure(), timeout=2) as response:
                    return response.read() == b"ok"
            except urllib.error.URLError:
                return False

        _until(ready, "kube-apiserver /readyz", logs)
        cluster.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "eafix-test",
            "clusters": [{"name": "eafix-test", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
            "users": [{"name": "admin", "user": {"token": token}}],
            "contexts": [{"name": "eafix-test", "context": {"cluster": "eafix-test", "user": "admin"}}]}))
        kubeconfig = str(cluster.kubeconfig)
        start("kube-controller-manager", "--kubeconfig", kubeconfig, "--leader-elect=false",
              "--service-account-private-key-file", str(workdir / "sa.key"), "--use-service-account-credentials=false",
              "--bind-address", "127.0.0.1", "--secure-port", "0")
        start("kube-scheduler", "--kubeconfig", kubeconfig, "--leader-elect=false", "--bind-address", "127.0.0.1",
              "--secure-port", "0")
        stages = kwok_stage_dir()
        configs = [str(stages / s) for s in KWOK_STAGES] + [str(p) for p in sorted((Path(__file__).parent / "stages")
                                                                                   .glob("*.yaml"))]
        start("kwok", "--kubeconfig", kubeconfig, "--manage-all-nodes=true", "--server-address", "127.0.0.1:0",
              *[arg for c in configs for arg in ("--config", c)])
        for zone in ZONES:
            cluster.api("POST", "/api/v1/nodes", {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": f"kwok-{zone}", "labels": {"type": "kwok", "topology.kubernetes.io/zone": zone,
                                                               "kubernetes.io/hostname": f"kwok-{zone}"}},
                "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                           "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}})

        def nodes_ready() -> bool:
            items = cluster.api("GET", "/api/v1/nodes")["items"]
            return len(items) == 3 and all(any(c["type"] == "Ready" and c["status"] == "True"
                                               for c in n["status"].get("conditions", [])) for n in items)

        _until(nodes_ready, "three Ready kwok nodes", logs)
        cluster.started_in = time.monotonic() - started
        yield cluster
    finally:
        # one at a time, the last started first: an apiserver whose etcd is already gone keeps retrying
        # it and outlasts a 15 s grace period
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
