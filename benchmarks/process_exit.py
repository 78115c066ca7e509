"""How long a process of cardio's takes to end after its work, without and with `cardio.freeze_at_exit` (side by
side in one run, alternated).

    python benchmarks/process_exit.py [--repeats 5]
    python benchmarks/process_exit.py --smoke     (one of each: checks the script runs, for CI)

Each child imports what a run's process imports (the run command's modules, torchvision, the report's figures and
the statistics), trains a ResNet-18 one step and draws a figure, then prints the time and returns; its exit is the
parent's clock after the child ended minus that time: the interpreter's teardown, whose collections walk every
live object several times (torch and torchvision leave about half a million). With freeze_at_exit the garbage is
collected once at exit and the survivors frozen, so those collections skip them. Printed: the median exit of each
and their ratio.

2026-11-29, 2 cores nearly free, 5 repeats: the exit took 1.60 s without and 0.58 s with it (0.36x). Whole
perfusion_polar default runs (one thread a fit; the code before and after on PYTHONPATH, alternated, two pairs on each
executor; issue 57): the run's process ended 1.99-2.20 s after its last task before, 0.75-1.00 s after, inline and
local alike. That is serial time of every run, and each local worker and SLURM job pays it too.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CHILD = """
import time, cardio
import cardio.commands.run, cardio_stats.evaluate, torch, torchvision
from cardio_report.figures import subplots
net = torchvision.models.resnet18(num_classes=2)
loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 3, 64, 64)), torch.tensor([0, 1, 0, 1]))
loss.backward()
fig, ax = subplots()
ax.plot([0, 1], [0, 1])
fig.canvas.draw()
if {freeze}:
    cardio.freeze_at_exit()
print(time.time(), flush=True)
"""


def exit_seconds(freeze: bool) -> float:
    """Seconds from the child's last line to its end as the parent sees it."""
    out = subprocess.run([sys.executable, "-c", CHILD.format(freeze=freeze)], check=True, capture_output=True,
                         text=True)
    ended = time.time()
    return ended - float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="one child of each: checks the script runs")
    args = ap.parse_args()
    repeats = 1 if args.smoke else args.repeats
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(repeats):  # alternated: a change of load falls on both
        for freeze in (False, True):
            times[freeze].append(exit_seconds(freeze))
    plain, frozen = statistics.median(times[False]), statistics.median(times[True])
    print(f"exit after the work, median of {repeats}: without freeze_at_exit {plain:.2f} s, with it {frozen:.2f} s "
          f"({frozen / plain:.2f}x)")


if __name__ == "__main__":
    main()
