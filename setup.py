"""Writes the one-line ``skillmix_lmeval.pth`` that lets bare ``lm_eval`` find our tasks.

Everything else is in pyproject.toml. The .pth is written from a string (a repository file
would be missing from the sdist), into ``build_lib`` for regular wheels and into the install
command's ``install_lib`` for editable installs (editable wheels ignore ``build_lib``). Its
name sorts after ``__editable__.*.pth`` so the package is importable when it runs.
"""

import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH_NAME = "skillmix_lmeval.pth"
PTH_LINE = "import skillmix.harness._lmeval_hook\n"


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        if target:
            os.makedirs(target, exist_ok=True)
            with open(os.path.join(target, PTH_NAME), "w") as f:
                f.write(PTH_LINE)


setup(cmdclass={"build_py": BuildPyWithPth})
