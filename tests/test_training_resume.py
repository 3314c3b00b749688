"""Resume is exact wherever the kill lands (issue 15: the second epoch, SIGKILL and SIGTERM), and the
log holds each step once.

8 rows, micro batch 1, global batch 2: an epoch is 4 optimizer steps, so steps 7 and 8 are in the
second epoch. The kills are sent by the training process to itself right after a given step is logged
(a patched logger), so they land at the same place on any machine.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from test_training_data import write_chat_jsonl

RUN = textwrap.dedent("""
    import os, signal, sys, json
    from skillmix.training import loop
    from skillmix.training.config import TrainConfig
    kill_at, sig, config = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    step = loop.MetricsLog.step
    def patched(self, n, **kw):
        step(self, n, **kw)
        if n == kill_at:
            os.kill(os.getpid(), getattr(signal, sig))
    loop.MetricsLog.step = patched
    result = loop.train(TrainConfig.from_dict(config))
    print(json.dumps({k: result[k] for k in ("start_step", "step", "losses", "stopped_by_signal")}))
""")


def run(config: dict, kill_at: int = 0, sig: str = "SIGKILL") -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-c", RUN, str(kill_at), sig, json.dumps(config)],
                          capture_output=True, text=True, env=env, timeout=300)


def logged(out) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines())]


@pytest.fixture(scope="module")
def setting(tiny_model, tmp_path_factory):
    """The issue's numbers, and the uninterrupted run's log."""
    d = tmp_path_factory.mktemp("resume")
    data = write_chat_jsonl(d / "d.jsonl", 8, k=1, seed=3)
    base = {"model": str(tiny_model), "data": [str(data)], "max_steps": 12, "global_batch_size": 2,
            "micro_batch_size": 1, "save_steps": 3, "seed": 7, "learning_rate": 1e-3, "warmup_steps": 1,
            "max_length": 96, "report_to": "none", "keep_last_states": 0}
    proc = run({**base, "output_dir": str(d / "straight")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    straight = logged(d / "straight")
    assert [s for s, _ in straight] == list(range(1, 13))
    return base, straight


@pytest.mark.parametrize("kill_at, sig", [(8, "SIGKILL"), (7, "SIGTERM")])
def test_killed_in_the_second_epoch_resumes_on_the_uninterrupted_curve(setting, tmp_path, kill_at, sig):
    base, straight = setting
    config = {**base, "output_dir": str(tmp_path / "run")}
    killed = run(config, kill_at, sig)
    if sig == "SIGKILL":
        assert killed.returncode == -signal.SIGKILL
        saved = kill_at // 3 * 3  # the last save_steps checkpoint before the kill
    else:  # SIGTERM: the step finishes, a checkpoint is saved, exit 0
        assert killed.returncode == 0, killed.stderr[-3000:]
        assert json.loads(killed.stdout.splitlines()[-1])["stopped_by_signal"] == "SIGTERM"
        saved = kill_at
    assert [s for s, _ in logged(tmp_path / "run")] == list(range(1, kill_at + 1))

    resumed = run(config)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = json.loads(resumed.stdout.splitlines()[-1])
    assert summary["start_step"] == saved and summary["step"] == 12
    log = logged(tmp_path / "run")
    assert [s for s, _ in log] == list(range(1, 13))  # each step once: the killed run's tail was cut
    assert [l for _, l in log] == pytest.approx([l for _, l in straight], rel=1e-5, abs=1e-6)
