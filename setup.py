"""Package discovery for setuptools; every other setting is in ``pyproject.toml``.

The package root is the repository root (``package-dir = {"physnn" = "."}``). setuptools'
``[tool.setuptools.packages.find]`` cannot prefix what it finds with ``physnn.``, so this
script finds every folder with an ``__init__.py`` below the root and names it
``physnn.<folder>``: a new subpackage is in the wheel without editing a list.
``tests/test_packaging.py`` builds the wheel and checks that every ``.py`` file of the
package, and nothing else (not this script, not tests/), is in it.
"""

from setuptools import find_packages, setup

NOT_PACKAGES = ["tests", "notebooks", "benchmarks", "docs", "build"]

setup(
    # Names this file as the setup script, which setuptools then leaves out of the
    # package `physnn` (under PEP 517 the script name would otherwise be the build hook's).
    script_name="setup.py",
    packages=[
        "physnn",
        *(
            f"physnn.{name}"
            for name in find_packages(
                exclude=[p for top in NOT_PACKAGES for p in (top, f"{top}.*")]
            )
        ),
    ],
)
