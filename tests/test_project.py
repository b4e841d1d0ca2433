"""The project's shape: the source root `operator/` never shadows the standard library."""

from __future__ import annotations

import importlib.util
import operator
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_operator_is_the_standard_library_module() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(operator.__file__).resolve().parent == stdlib
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_operator_stays_the_stdlib_module_from_the_project_root() -> None:
    # Python puts the working directory first on sys.path for `-c`; the folder must still lose.
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import operator, kubemart; print(operator.__file__); print(kubemart.__file__)",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not out[0].startswith(str(ROOT)), out
    assert out[1].startswith(str(ROOT / "operator" / "kubemart")), out


def test_kubemart_package_comes_from_the_source_root() -> None:
    spec = importlib.util.find_spec("kubemart")
    assert spec is not None
    assert spec.origin is not None
    assert Path(spec.origin).resolve() == ROOT / "operator" / "kubemart" / "__init__.py"


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).with_name("kubemart")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True).stdout
    assert "run" in out
