"""The shared backend contract, for every PIM preset."""

from __future__ import annotations

import subprocess
import sys

from physnn.common.testing import check_backend


def test_check_backend_every_preset() -> None:
    check_backend("pim")


def test_import_is_cheap_and_free_of_qiskit() -> None:
    code = (
        "import sys, physnn.pim; "
        "assert 'qiskit' not in sys.modules; "
        "assert 'physnn.optical' not in sys.modules; "
        "assert 'physnn.quantum' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
