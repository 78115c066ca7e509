"""Virtual anatomical M-mode: a B-mode sequence resliced along a line for every frame of one cycle.

The sequence (T, H, W) is a volume in (x, y, t). An M-mode is the plane through that volume that
holds the line in (x, y) and the cycle's time axis, sampled on an output grid of depth x time
(500 x 500 by default; rows from the line's RV end to its LV end, columns from the first to the
last frame of the cycle). Both paths sample it with one trilinear interpolation:

- `mmodes_vtk`: VTK's vtkImageReslice (the paper's tool), one reslice per line;
- `mmodes_torch`: the fast path, every line of a batch of same-sized sequences at once: bilinear
  `grid_sample` in (x, y) with the frames as channels, then linear interpolation in time
  (1-D `interpolate` along time). Trilinear interpolation is separable, so this is the
  same weighted sum of the same eight voxels; the results agree to within one grey level
  (float rounding), tested and benchmarked (benchmarks/mmode_reslice.py).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cardio_mmode_septal_flash.geometry import Line

SIZE = (500, 500)  # depth samples, time samples


def _cycle(t0: int, t1: int, n_frames: int) -> tuple[int, int]:
    if not 0 <= t0 < t1 <= n_frames - 1:
        raise ValueError(f"cycle frames {t0}..{t1} do not lie in a sequence of {n_frames} frames")
    return int(t0), int(t1)


def mmodes_vtk(frames: np.ndarray, lines: Sequence[Line], t0: int, t1: int,
               size: tuple[int, int] = SIZE) -> np.ndarray:
    """(K, depth, time) uint8 M-modes of one (T, H, W) uint8 sequence along each line, by vtkImageReslice."""
    from vtkmodules.util.numpy_support import numpy_to_vtk, vtk_to_numpy
    from vtkmodules.vtkCommonDataModel import vtkImageData
    from vtkmodules.vtkImagingCore import vtkImageReslice

    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w = frames.shape
    t0, t1 = _cycle(t0, t1, n)
    depth, width = size
    image = vtkImageData()
    image.SetDimensions(w, h, n)  # x fastest, as a C-ordered (T, H, W) array
    image.SetSpacing(1.0, 1.0, 1.0)
    image.SetOrigin(0.0, 0.0, 0.0)
    image.GetPointData().SetScalars(numpy_to_vtk(frames.ravel(), deep=False))
    out = []
    for line in lines:
        u = (line.end - line.start) / max(line.length, 1e-9)
        reslice = vtkImageReslice()
        reslice.SetInputData(image)
        # output x follows the line, output y the time axis, z their normal (one slice)
        reslice.SetResliceAxesDirectionCosines(u[0], u[1], 0.0, 0.0, 0.0, 1.0, u[1], -u[0], 0.0)
        reslice.SetResliceAxesOrigin(line.start[0], line.start[1], float(t0))
        reslice.SetOutputSpacing(line.length / (depth - 1), (t1 - t0) / (width - 1), 1.0)
        reslice.SetOutputOrigin(0.0, 0.0, 0.0)
        reslice.SetOutputExtent(0, depth - 1, 0, width - 1, 0, 0)
        reslice.SetInterpolationModeToLinear()
        reslice.SetBackgroundLevel(0.0)
        reslice.Update()
        values = vtk_to_numpy(reslice.GetOutput().GetPointData().GetScalars())
        out.append(values.reshape(width, depth).T)
    return np.stack(out).astype(np.uint8)


def mmodes_torch(volumes: np.ndarray | torch.Tensor, lines: Sequence[Sequence[Line]],
                 cycles: Sequence[tuple[int, int]], size: tuple[int, int] = SIZE,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """(B, K, depth, time) uint8 M-modes of B same-sized sequences (B, T, H, W), K lines each, in one batch.

    Points within half a pixel outside the image take the edge value and points farther out are
    0, as vtkImageReslice's border mode does, so that lines leaving the image agree too.
    """
    vol = volumes if isinstance(volumes, torch.Tensor) else torch.as_tensor(np.asarray(volumes))
    if vol.ndim == 3:
        vol = vol[None]
    b, n, h, w = vol.shape
    if len(lines) != b or len(cycles) != b or len({len(ls) for ls in lines}) != 1:
        raise ValueError("mmodes_torch needs one cycle and the same number of lines for every sequence")
    cycles = [_cycle(t0, t1, n) for t0, t1 in cycles]
    depth, width = size
    s = torch.linspace(0.0, 1.0, depth, dtype=torch.float64)
    start = torch.tensor(np.array([[ln.start for ln in ls] for ls in lines]), dtype=torch.float64)  # (B, K, 2)
    end = torch.tensor(np.array([[ln.end for ln in ls] for ls in lines]), dtype=torch.float64)
    xy = start[:, :, None, :] + s[None, None, :, None] * (end - start)[:, :, None, :]  # (B, K, D, 2)
    limit = torch.tensor([w - 1.0, h - 1.0], dtype=torch.float64)
    inside = ((xy >= -0.5) & (xy <= limit + 0.5)).all(-1, keepdim=True)
    xy = torch.minimum(xy.clamp(min=0.0), limit)
    # points farther out go far off the grid, where zero padding gives them 0 (no mask pass over the samples)
    grid = torch.where(inside, 2.0 * xy / limit.clamp(min=1.0) - 1.0, -3.0).to(device=device, dtype=torch.float32)
    on_cpu = torch.device(device).type == "cpu"
    k = len(lines[0])
    host = np.empty((b, k, depth, width), np.uint8)  # filled on the CPU (on a device its pages are never touched)
    out = None if on_cpu else torch.empty(b, k, depth, width, dtype=torch.uint8, device=device)

    def one(i: int) -> None:
        t0, t1 = cycles[i]
        # the cycle's frames (as channels) in float32, every line of the sequence in one bilinear grid_sample
        frames = vol[i, t0:t1 + 1].to(device=device, dtype=torch.float32)[None]
        sampled = torch.nn.functional.grid_sample(frames, grid[i:i + 1], mode="bilinear", padding_mode="zeros",
                                                  align_corners=True)[0]  # (frames, K, D)
        # + 0.5 here rounds half up, as VTK does, once the cast truncates: linear weights sum to 1, so adding it
        # to the few samples before the time interpolation equals adding it to the 250,000 outputs after
        cyc = (sampled + 0.5).permute(1, 2, 0)  # (K, D, frames)
        for j in range(k):  # linear in time, one M-mode at a time: its 1 MB of floats stays in cache for the cast
            res = torch.nn.functional.interpolate(cyc[j][:, None], size=width, mode="linear", align_corners=True)
            # a convex combination of 0.5..255.5 needs no clamp; the cast truncates (NumPy's cast: a quarter of
            # torch's copy_ time on the CPU)
            if out is None:
                np.copyto(host[i, j], res.numpy().reshape(depth, width), casting="unsafe")
            else:
                out[i, j].copy_(res.view(depth, width))

    threads = torch.get_num_threads()
    if on_cpu and threads > 1 and b > 1:
        # Sequences over the threads, each op on one: torch's ops here are ~0.1 ms, and splitting each across
        # threads makes every one wait for a thread that waits for a busy core (measured: benchmarks/mmode_reslice.py)
        from concurrent.futures import ThreadPoolExecutor

        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(min(threads, b)) as pool:
                list(pool.map(one, range(b)))
        finally:
            torch.set_num_threads(threads)
    else:
        for i in range(b):
            one(i)
    return host if out is None else out.cpu().numpy()
