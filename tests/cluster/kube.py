"""Small reads of the cluster the tests assert on (the `kubernetes` client against the test kubeconfig)."""

from __future__ import annotations

import time

from kubernetes import client, config, dynamic

from control_plane import Cluster


def api_client(cluster: Cluster) -> client.ApiClient:
    return config.new_client_from_config(str(cluster.kubeconfig))


def restricted_namespace(cluster: Cluster, name: str) -> str:
    client.CoreV1Api(api_client(cluster)).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"})))
    return name


def dynamic_client(cluster: Cluster) -> dynamic.DynamicClient:
    return dynamic.DynamicClient(api_client(cluster))


def deployments(cluster: Cluster, namespace: str) -> dict[str, dict]:
    items = client.AppsV1Api(api_client(cluster)).list_namespaced_deployment(namespace).items
    return {d.metadata.name: d for d in items}


def available(deployment) -> bool:
    return any(c.type == "Available" and c.status == "True" for c in deployment.status.conditions or [])


def settled(cluster: Cluster, namespace: str, timeout: float = 120) -> None:
    """Wait until every Deployment's controller has seen its latest spec and finished rolling it out."""
    deadline = time.monotonic() + timeout
    while True:
        ds = deployments(cluster, namespace).values()
        if all(d.status.observed_generation == d.metadata.generation
               and (d.status.updated_replicas or 0) == d.spec.replicas == (d.status.replicas or 0) for d in ds):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"rollouts did not settle: {[d.metadata.name for d in ds]}")
        time.sleep(0.5)


def replica_sets(cluster: Cluster, namespace: str) -> dict[str, set[str]]:
    """Deployment name -> names of its ReplicaSets that have pods wanted (the live ones)."""
    out: dict[str, set[str]] = {}
    for rs in client.AppsV1Api(api_client(cluster)).list_namespaced_replica_set(namespace).items:
        owner = next((o.name for o in rs.metadata.owner_references or [] if o.kind == "Deployment"), None)
        if owner and (rs.spec.replicas or 0) > 0:
            out.setdefault(owner, set()).add(rs.metadata.name)
    return out


def pod_zones(cluster: Cluster, namespace: str, selector: str) -> list[str]:
    core = client.CoreV1Api(api_client(cluster))
    nodes = {n.metadata.name: n.metadata.labels.get("topology.kubernetes.io/zone")
             for n in core.list_node().items}
    return [nodes.get(p.spec.node_name) for p in core.list_namespaced_pod(namespace, label_selector=selector).items]


def wait_for(what: str, check, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


def job_completed_event(cluster: Cluster, namespace: str, job: str) -> bool:
    """The job controller's `Completed` event of a Job (a hook Job is deleted once it succeeded)."""
    events = client.CoreV1Api(api_client(cluster)).list_namespaced_event(
        namespace, field_selector=f"involvedObject.kind=Job,involvedObject.name={job}").items
    return any(e.reason == "Completed" for e in events)


def config_checksums(cluster: Cluster, namespace: str) -> dict[str, str]:
    return {name: (d.spec.template.metadata.annotations or {}).get("checksum/config", "")
            for name, d in deployments(cluster, namespace).items()}


def release_secrets(cluster: Cluster, namespace: str, release: str) -> list[str]:
    """Helm's release records (one Secret per revision, labelled owner=helm)."""
    items = client.CoreV1Api(api_client(cluster)).list_namespaced_secret(
        namespace, label_selector=f"owner=helm,name={release}").items
    return [s.metadata.name for s in items]


def still_there(cluster: Cluster, namespace: str, objects: list[dict]) -> list[str]:
    """Which of `objects` (a release's manifest) the API server still has."""
    dyn = dynamic_client(cluster)
    left = []
    for obj in objects:
        resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        try:
            resource.get(name=obj["metadata"]["name"], namespace=namespace if resource.namespaced else None)
        except client.ApiException as exc:
            if exc.status == 404:
                continue
            raise
        left.append(f"{obj['kind']}/{obj['metadata']['name']}")
    return left
