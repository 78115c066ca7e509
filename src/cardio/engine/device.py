"""The device a run trains on: which one, its name, torch's CPU threads, deterministic kernels, autocast, the
memory format and placement of a batch, and the host memory a fit freed."""
from __future__ import annotations

import ctypes
import os
import platform
from contextlib import contextmanager

import torch

from cardio import allotted_cpus  # the CPUs this process may use (set where cardio is imported)
from cardio.data import CardioError


@contextmanager
def cpu_threads(n: int | None, device: torch.device):
    """Run a block with n torch CPU threads (small models on a busy CPU run faster on one), then restore."""
    if not n or device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


_LIBC = ctypes.CDLL(None) if os.name == "posix" else None  # the C library this process has loaded


def release_freed() -> None:
    """Give the system back what a fit or prediction freed: glibc's malloc keeps it, and fits in a row piled it up."""
    trim = getattr(_LIBC, "malloc_trim", None)  # glibc's; musl, macOS and Windows have none
    if trim is not None:
        trim(0)


def default_threads() -> int:
    """Torch's CPU threads for a run: the allotted CPUs, unless the user set OMP_NUM_THREADS (train.cpu_threads
    still overrides both around each fit)."""
    n = int(os.environ["OMP_NUM_THREADS"]) if os.environ.get("OMP_NUM_THREADS", "").isdigit() else allotted_cpus()
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CardioError(f"--device {name} asked for, but torch sees no CUDA device")
    return torch.device(name)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo, where platform.processor() is empty, else the platform's) and the
    vector kernels torch dispatches to on it: beside torch's version, what decides a CPU computation's last bits.
    The name alone does not: a virtual machine may say only "AMD EPYC", and two such machines, one with AVX-512 and
    one with AVX2 only, built the same seed's backbone to different sha256s."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        name = platform.processor() or platform.machine()
    return f"{name}, {torch.backends.cpu.get_cpu_capability()} kernels"


def device_name(device: torch.device) -> str:
    """What the run ran on, for run.json and figures: the GPU's name, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {cpu_model()} ({os.cpu_count()} logical cores)"


def set_determinism(flag: bool | None, device: torch.device) -> bool:
    """train.deterministic: true = deterministic kernels (bit-identical reruns and resumes), false = the fastest
    kernels (cudnn.benchmark picks convolution algorithms by timing them, so CUDA results vary in their last digits
    between runs); null = true on the CPU (it costs nothing measurable there) and false on CUDA (speed first; set it
    true for bit-identical GPU runs). Whether it is on."""
    on = device.type != "cuda" if flag is None else bool(flag)
    torch.use_deterministic_algorithms(on, warn_only=True)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = not on and device.type == "cuda"
    return on


def memory_format(ndim: int):
    """Channels-last for images (N, C, H, W), channels-last-3d for video (N, C, T, H, W)."""
    return {4: torch.channels_last, 5: torch.channels_last_3d}.get(ndim)


def to_device(x, device: torch.device, channels_last: bool):
    """A batch's inputs (a tensor, or a tuple of them) on `device`, in channels-last memory format if asked."""
    if isinstance(x, (tuple, list)):
        return tuple(to_device(a, device, channels_last) for a in x)
    x = x.to(device, non_blocking=True)
    fmt = memory_format(x.ndim) if channels_last else None
    if fmt is not None:
        x = x.contiguous(memory_format=fmt)
    return x


def autocast(device: torch.device, amp: bool):
    """bf16 autocast when train.amp is on, on CUDA only: a CPU bf16 matmul can die with SIGILL."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


def accumulator(device: torch.device) -> torch.Tensor:
    """A zero on the device that sums losses without a host sync (float64 where the device has it)."""
    return torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
