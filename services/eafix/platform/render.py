"""Render the platform's Helm charts offline and query the parsed objects.

The embedded Helm v4 engine (helm-python-sdk) is the default; when ``HELM_BIN`` names a
``helm`` binary, the same call runs ``helm template`` through it instead.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DEFAULT_RELEASE = "eafix"
DEFAULT_NAMESPACE = "eafix-trading"


class RenderError(Exception):
    """A chart did not render: schema violation, failed template, or VALUES VALIDATION."""


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge like repeated ``-f`` flags: maps merge recursively, anything else is replaced.

    A ``None`` is kept, so Helm itself removes the key from the chart defaults.
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_values(files: Iterable[str | Path], values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for f in files:
        doc = yaml.safe_load(Path(f).read_text()) or {}
        if not isinstance(doc, Mapping):
            raise RenderError(f"{f}: a values file must hold a YAML mapping")
        merged = merge_values(merged, doc)
    return merge_values(merged, values or {})


@dataclass(frozen=True)
class Rendered:
    """The output of one render: raw manifests per template and the parsed objects."""

    manifests: dict[str, str]
    objects: list[dict[str, Any]] = field(default_factory=list)
    templates: list[str] = field(default_factory=list)  # template path of objects[i]
    notes: str | None = None

    def select(self, kind: str | None = None, name: str | None = None,
               template: str | None = None) -> list[dict[str, Any]]:
        """Objects matching every given criterion (``template`` matches a path suffix)."""
        return [
            o for o, t in zip(self.objects, self.templates, strict=True)
            if (kind is None or o.get("kind") == kind)
            and (name is None or o.get("metadata", {}).get("name") == name)
            and (template is None or t.endswith(template))
        ]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = self.select(kind=kind, name=name)
        if len(found) != 1:
            raise LookupError(f"expected one {kind} {name or ''}, found {len(found)}")
        return found[0]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.objects:
            counts[o["kind"]] = counts.get(o["kind"], 0) + 1
        return dict(sorted(counts.items()))

    def text(self) -> str:
        """All manifests as one multi-document YAML stream, in template order."""
        return "".join(f"---\n# Source: {t}\n{m.strip()}\n" for t, m in sorted(self.manifests.items())
                       if m.strip() and not t.endswith("NOTES.txt"))


_MISSING = object()


def path(obj: Any, dotted: str, default: Any = _MISSING) -> Any:
    """``path(deploy, "spec.template.spec.containers.0.image")``; list items by index."""
    cur = obj
    for part in dotted.split("."):
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            if default is _MISSING:
                raise KeyError(f"{dotted}: no '{part}'") from None
            return default
    return cur


def _parse(manifests: Mapping[str, str]) -> tuple[list[dict[str, Any]], list[str], str | None]:
    objects: list[dict[str, Any]] = []
    templates: list[str] = []
    notes = None
    for tpl in sorted(manifests):
        text = manifests[tpl]
        if tpl.endswith("NOTES.txt"):
            if "/charts/" not in tpl:
                notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
                templates.append(tpl)
    return objects, templates, notes


def _render_sdk(chart: Path, values: dict[str, Any], release: str, namespace: str) -> dict[str, str]:
    try:
        import helm_python
    except ImportError as exc:
        raise RenderError("the embedded Helm engine is not installed: pip install 'eafix[charts]', "
                          "or set HELM_BIN to a helm binary") from exc
    loaded = helm_python.Chart.load(str(chart))
    try:
        return loaded.render(values, name=release, namespace=namespace)
    except (helm_python.HelmRenderError, helm_python.HelmValuesError) as exc:
        raise RenderError(str(exc)) from exc
    finally:
        loaded.close()


def missing_dependencies(chart: Path) -> list[str]:
    """Names of the Chart.yaml dependencies whose chart is in neither charts/<name>/ nor charts/<name>-*.tgz
    (the OCI dependencies of eafix-infra until `helm dependency build` fetches them)."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    missing = []
    for dep in meta.get("dependencies") or []:
        name = dep["name"]
        if not (chart / "charts" / name).is_dir() and not list((chart / "charts").glob(f"{name}-*.tgz")):
            missing.append(name)
    return missing


def offline_copy(chart: Path, into: Path) -> Path:
    """A copy of ``chart`` under ``into`` whose Chart.yaml lists only the dependencies that are present.

    The embedded engine renders a chart with absent dependencies as it is (their templates are
    simply not there), but `helm template`/`helm lint` refuse it; this copy renders the chart's own
    templates through both. Returns ``chart`` itself when nothing is missing, and a packaged chart
    (.tgz) as it is.
    """
    if chart.is_file():
        return chart
    missing = set(missing_dependencies(chart))
    if not missing:
        return chart
    target = into / chart.name
    shutil.copytree(chart, target, dirs_exist_ok=True)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["dependencies"] = [d for d in meta["dependencies"] if d["name"] not in missing]
    if not meta["dependencies"]:
        del meta["dependencies"]
    (target / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return target


def _render_binary(helm: str, chart: Path, values: dict[str, Any], release: str,
                   namespace: str) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        return _render_binary_at(helm, offline_copy(chart, Path(tmp)), values, release, namespace)


def _render_binary_at(helm: str, chart: Path, values: dict[str, Any], release: str,
                      namespace: str) -> dict[str, str]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        # JSON is YAML that every parser reads alike (PyYAML would leave a string such as "1e-2"
        # unquoted, which Helm's YAML 1.2 reader takes for a number)
        json.dump(values, f)
        f.flush()
        proc = subprocess.run(
            [helm, "template", release, str(chart), "--namespace", namespace, "--values", f.name],
            capture_output=True, text=True, check=False,
        )
    if proc.returncode != 0:
        raise RenderError(proc.stderr.strip())
    manifests: dict[str, list[str]] = {}
    current = None
    for line in proc.stdout.splitlines():
        if line.startswith("# Source: "):
            current = line.removeprefix("# Source: ").strip()
            manifests.setdefault(current, [])
        elif current is not None and line != "---" or line == "---" and current is not None:
            manifests[current].append(line)
    return {k: "\n".join(v) for k, v in manifests.items()}


def render(chart: str | Path, values_files: Iterable[str | Path] = (), values: Mapping[str, Any] | None = None,
           *, release: str = DEFAULT_RELEASE, namespace: str = DEFAULT_NAMESPACE,
           helm_bin: str | None = None) -> Rendered:
    """Render ``chart`` with the values files (in order) and then ``values`` on top; through the
    ``helm_bin`` binary (default: ``$HELM_BIN``) if one is named, else the embedded engine."""
    merged = load_values(values_files, values)
    helm_bin = helm_bin or os.environ.get("HELM_BIN")
    if helm_bin:
        manifests = _render_binary(helm_bin, Path(chart), merged, release, namespace)
    else:
        manifests = _render_sdk(Path(chart), merged, release, namespace)
    objects, templates, notes = _parse(manifests)
    return Rendered(manifests=dict(manifests), objects=objects, templates=templates, notes=notes)
