"""RoIAlign on a CPU over all its threads, with exactly torchvision's output.

torchvision's CPU RoIAlign runs on one thread, and it is the largest cost of a rollout on a CPU
(half of an adaptation batch on two cores). Each output RoI is computed from its own box alone, so
the RoIs can be pooled in chunks, one per thread (the op releases the GIL), and concatenated: the
same values, bit for bit. The gradient is torchvision's own backward op over all RoIs at once, as
the autograd of `torchvision.ops.roi_align` computes it. CUDA, reduced precision, autocast, a
compiled graph and small batches take torchvision's call as it is.
"""

import os
from concurrent.futures import ThreadPoolExecutor

import torch
from torchvision.ops import roi_align

MIN_ROIS_PER_THREAD = 25  # measured: with fewer RoIs per thread, handing them over costs about what it saves
_pool = {"executor": None, "workers": 0}


def _executor():
    """One pool with a worker per CPU thread; it serves any number of chunks up to that."""
    workers = torch.get_num_threads()
    if _pool["workers"] != workers:  # torch.set_num_threads changed it
        if _pool["executor"] is not None:
            _pool["executor"].shutdown(wait=False)
        _pool["executor"], _pool["workers"] = ThreadPoolExecutor(workers, thread_name_prefix="roi_align"), workers
    return _pool["executor"]


def _forget_pool():  # a forked child (a data-loader worker) has none of the parent's threads
    _pool["executor"], _pool["workers"] = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def chunk_count(features, rois):
    """How many threads pool these RoIs (1: torchvision's call as it is)."""
    if features.device.type != "cpu" or features.dtype not in (torch.float32, torch.float64) or rois.dtype != features.dtype:
        return 1
    if torch.is_autocast_enabled("cpu"):  # autocast is per thread: the workers would not see it
        return 1
    if torch.compiler.is_compiling():  # --compile 1: torchvision's op stays in the graph
        return 1
    return max(1, min(torch.get_num_threads(), rois.shape[0] // MIN_ROIS_PER_THREAD))


def _pool_chunks(features, rois, output_size, spatial_scale, sampling_ratio, aligned, chunks):
    def pool(part):
        with torch.no_grad():
            return torch.ops.torchvision.roi_align(features, part, spatial_scale, output_size[0], output_size[1], sampling_ratio, aligned)

    return torch.cat(list(_executor().map(pool, rois.chunk(chunks))))


class _ParallelRoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, features, rois, output_size, spatial_scale, sampling_ratio, aligned, chunks):
        ctx.save_for_backward(rois)
        ctx.args = (output_size, spatial_scale, sampling_ratio, aligned, features.shape)
        return _pool_chunks(features.detach(), rois, output_size, spatial_scale, sampling_ratio, aligned, chunks)

    @staticmethod
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        (height, width), spatial_scale, sampling_ratio, aligned, shape = ctx.args
        grad = torch.ops.torchvision._roi_align_backward(grad_output, rois, spatial_scale, height, width, shape[0], shape[1], shape[2],
                                                         shape[3], sampling_ratio, aligned)
        return grad, None, None, None, None, None, None


def parallel_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned):
    """`torchvision.ops.roi_align(features, rois (K, 5), output_size, spatial_scale, sampling_ratio,
    aligned)`, the RoIs split over the CPU's threads when that helps; the same values and gradient."""
    chunks = chunk_count(features, rois)
    if chunks == 1:
        return roi_align(features, rois, output_size, spatial_scale, sampling_ratio=sampling_ratio, aligned=aligned)
    output_size = tuple(output_size)
    if torch.is_grad_enabled() and features.requires_grad:
        return _ParallelRoIAlign.apply(features, rois, output_size, spatial_scale, sampling_ratio, aligned, chunks)
    return _pool_chunks(features, rois, output_size, spatial_scale, sampling_ratio, aligned, chunks)
