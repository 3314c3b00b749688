"""Make ``lm_eval`` find the SKILL-MIX tasks with no ``--include_path``.

lm-eval 0.4.13 has no entry point for task plugins, so ``skillmix_lmeval.pth`` imports this
module at interpreter start. It only registers a meta-path finder (cheap, never imports
lm_eval); when ``lm_eval.tasks.manager`` is loaded, ``TaskManager`` gets our task folder
appended to its include path, and the checks of a SKILL-MIX run (``checks.preflight``, before
the model loads) run when it is built. Set ``SKILLMIX_NO_LMEVAL_HOOK=1`` to turn it off. Any error
here is swallowed: this runs inside every interpreter of the environment, pip included.
"""

from __future__ import annotations

import os
import sys

TASK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tasks")
_TARGET = "lm_eval.tasks.manager"


def _patch(module) -> None:
    cls = getattr(module, "TaskManager", None)
    if cls is None or getattr(cls, "_skillmix_patched", False):
        return
    original = cls.__init__

    def __init__(self, *args, include_path=None, **kwargs):
        _preflight()
        if include_path is None:
            paths = []
        elif isinstance(include_path, (list, tuple)):
            paths = list(include_path)
        else:
            paths = [include_path]
        if not any(os.path.abspath(str(p)) == TASK_DIR for p in paths):
            # Our folder first, so a user's --include_path can still override a task.
            paths.insert(0, TASK_DIR)
        original(self, *args, include_path=paths, **kwargs)
        _after_index(self)

    __init__.__wrapped__ = original  # type: ignore[attr-defined]
    cls.__init__ = __init__
    cls._skillmix_patched = True


def _preflight() -> None:
    """The ``lm_eval`` CLI builds its TaskManager before it loads the model: ``checks.preflight``
    checks a SKILL-MIX run there (judge, --apply_chat_template) and may stop it with one message
    (SystemExit). Imported only now, so this module stays import-free."""
    try:
        import importlib

        preflight = importlib.import_module("skillmix.harness.checks").preflight
    except Exception:
        return  # a broken install: the tasks' own checks still run before any generation
    preflight()


def _after_index(manager) -> None:
    """Once lm-eval indexed its tasks: a misspelt SKILL-MIX task name gets one message (SystemExit)."""
    try:
        import importlib

        check = importlib.import_module("skillmix.harness.checks").check_task_names
    except Exception:
        return
    check(manager)


class _Finder:
    """Meta-path finder that wraps the real loader of lm_eval.tasks.manager."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        try:
            sys.meta_path.remove(cls)  # find the real spec without recursing into ourselves
            import importlib.util

            spec = importlib.util.find_spec(fullname)
        except Exception:
            return None
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module):
            original_exec(module)
            try:
                _patch(module)
            except Exception:
                pass

        loader.exec_module = exec_module
        return spec


def install() -> None:
    if os.environ.get("SKILLMIX_NO_LMEVAL_HOOK"):
        return
    mod = sys.modules.get(_TARGET)
    if mod is not None:  # lm_eval was imported before us: patch directly
        _patch(mod)
    elif _Finder not in sys.meta_path:
        sys.meta_path.insert(0, _Finder)


try:
    install()
except Exception:
    pass
