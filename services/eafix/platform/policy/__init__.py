"""Static policy checks of rendered Kubernetes objects.

Pure functions over lists of object dicts, each returning sorted ``Finding`` records:

- ``kube_linter.lint``: kube-linter's 31 default checks plus a few opt-in ones,
- ``polaris.audit``: Polaris' default checks,
- ``k8s_validate.check``: kubernetes-validate strict schemas of the built-in objects,
- ``checkov.run_checkov``: the checkov CLI (a separate tool virtualenv), with its skips.

``run_all`` combines them; ``format_table`` prints findings.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import k8s_validate, kube_linter, polaris
from ._k8s import Finding, Obj
from .exemptions import Exemption, exemptions
from .report import format_table


def run_all(
    objects: Iterable[Obj], *, kubernetes_versions: Iterable[str] | None = None, checkov: bool = False
) -> list[Finding]:
    """kube-linter, Polaris and kubernetes-validate (latest bundled version unless
    ``kubernetes_versions`` is given) findings; checkov's too when ``checkov`` is True (it needs
    the tool virtualenv, see ``checkov.find_checkov``)."""
    objs = list(objects)
    found = kube_linter.lint(objs) + polaris.audit(objs) + k8s_validate.check(objs, kubernetes_versions)
    if checkov:
        from .checkov import run_checkov

        found += run_checkov(objs).failed
    return sorted(found)


__all__ = ["Exemption", "Finding", "exemptions", "format_table", "run_all"]
