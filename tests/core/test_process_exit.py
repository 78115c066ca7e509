"""A process of cardio's ends without the interpreter's teardown walking every live object (cardio.freeze_at_exit):
its garbage is still collected at exit, finalizers run, and the command line asks for it (a task's worker does too,
in cardio_cluster.worker.run_task, which no test here checks)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# registered before the code under test, so it runs after it at exit (atexit is last in, first out)
PROBE = "import atexit, gc\natexit.register(lambda: print('frozen', gc.get_freeze_count(), flush=True))\n"


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", PROBE + code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_the_garbage_is_collected_and_the_rest_frozen_at_exit(tmp_path: Path):
    """A cycle that became garbage before the exit is collected there (each node's finalizer writes a file), with
    the exit asked for twice; what lives is frozen, so the teardown's collections skip it."""
    done = tmp_path / "finalized"
    out = _run(
        "import cardio\n"
        "class Node:\n"
        f"    def __del__(self):\n        open({str(done)!r}, 'a').write('x')\n"
        "a, b = Node(), Node()\na.other, b.other = b, a\ndel a, b\n"
        "import gc\ngc.disable()\n"  # only the exit's collection can find the cycle
        "kept = [[i] for i in range(1000)]\n"
        "cardio.freeze_at_exit()\ncardio.freeze_at_exit()\n")
    assert done.read_text() == "xx"  # both nodes, once each
    frozen = int(out.split()[-1])
    assert frozen > 1000, out


def test_without_it_nothing_is_frozen():
    """The probe's own control: a process that did not ask freezes nothing."""
    assert _run("import cardio\n").split() == ["frozen", "0"]


def test_the_command_line_asks_for_it():
    """Every command whose body loads the heavy libraries (run_body) freezes at exit; `cardio plugins` is one."""
    out = _run("import sys\nfrom cardio.cli import main\nsys.argv = ['cardio', 'plugins', '--json']\n"
               "try:\n    main()\nexcept SystemExit:\n    pass\n")
    assert int(out.split()[-1]) > 0, out[-2000:]
