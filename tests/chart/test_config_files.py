"""`configFiles`: non-secret files for a service (reentry-matrix-svc's matrix), mounted from a ConfigMap
whose change rolls the pods; the service reads the rendered file exactly as it would in the pod."""

from __future__ import annotations

import pytest

from eafix.platform.render import RenderError
from eafix.reentry_matrix_svc.matrix import load_matrix

MATRIX = """version: 1
matrix_version: "3.0.1"
fallback: {action: NO_REENTRY, parameter_set: PS-safe}
"""


def _deployment(r, name="reentry-matrix-svc"):
    return r.one("Deployment", name)


def test_a_config_file_is_mounted_and_named_by_its_setting(render_with, tmp_path):
    r = render_with({"reentry-matrix-svc": {"configFiles": {"matrixFile": MATRIX}}})
    files = r.one("ConfigMap", "reentry-matrix-svc-files")
    assert files["data"] == {"SERVICE_MATRIX_FILE": MATRIX}
    config = r.one("ConfigMap", "reentry-matrix-svc-config")["data"]
    assert config["SERVICE_MATRIX_FILE"] == "/etc/eafix/files/SERVICE_MATRIX_FILE"
    pod = _deployment(r)["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "files")
    assert (mount["mountPath"], mount["readOnly"]) == ("/etc/eafix/files", True)
    volume = next(v for v in pod["volumes"] if v["name"] == "files")
    assert volume["configMap"]["name"] == "reentry-matrix-svc-files"
    # the pod's file, as the service loads it
    path = tmp_path / "SERVICE_MATRIX_FILE"
    path.write_text(files["data"]["SERVICE_MATRIX_FILE"])
    assert load_matrix(path).matrix_version == "3.0.1"


def test_a_changed_file_rolls_only_its_service(render_with):
    before = render_with({"reentry-matrix-svc": {"configFiles": {"matrixFile": MATRIX}}})
    after = render_with({"reentry-matrix-svc": {"configFiles": {"matrixFile": MATRIX.replace("3.0.1", "3.0.2")}}})

    def checksums(r):
        return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
                for d in r.select(kind="Deployment")}

    a, b = checksums(before), checksums(after)
    assert {name for name in a if a[name] != b[name]} == {"reentry-matrix-svc"}


def test_without_files_nothing_is_mounted(render_with):
    r = render_with()
    assert not r.select(kind="ConfigMap", name="reentry-matrix-svc-files")
    pod = _deployment(r)["spec"]["template"]["spec"]
    assert "files" not in {v["name"] for v in pod["volumes"]}


def test_a_setting_in_both_config_and_files_is_refused(render_with):
    with pytest.raises(RenderError, match="configFiles.matrixFile and config.matrixFile both set SERVICE_MATRIX_FILE"):
        render_with({"reentry-matrix-svc": {"configFiles": {"matrixFile": MATRIX}, "config": {"matrixFile": "/x"}}})


def test_an_empty_file_is_refused_by_the_schema_naming_the_path(render_with):
    with pytest.raises(RenderError, match="configFiles"):
        render_with({"reentry-matrix-svc": {"configFiles": {"matrixFile": ""}}})
