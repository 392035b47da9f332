"""How much memory a device has for a new allocation now: the free memory of a CUDA device, or on the CPU the
smallest of the kernel's ``MemAvailable`` and the headroom of every memory cgroup the process is in (a container
sees the host's ``/proc/meminfo``, not its own limit).  The parsing is done by small pure functions of the
files' texts (:func:`meminfo_available`, :func:`cgroup_limit`, :func:`cgroup_headroom`,
:func:`memory_cgroup_dirs`), tested on given texts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

__all__ = ["V1_NO_LIMIT", "available_bytes", "cgroup_headroom", "cgroup_limit", "cpu_available_bytes",
           "meminfo_available", "memory_cgroup_dirs"]

#: A cgroup v1 memory limit at or above this (1 EiB) means "no limit": the kernel writes its page-counter
#: maximum, ``9223372036854771712`` (2^63 rounded down to a page), when none is set.
V1_NO_LIMIT = 1 << 60


def meminfo_available(text: str) -> int | None:
    """``MemAvailable`` of a ``/proc/meminfo`` text in bytes (the file says kB, meaning KiB); ``None`` if absent."""
    m = re.search(r"^[ \t]*MemAvailable[ \t]*:[ \t]*(\d+)[ \t]*(\S*)", text, re.MULTILINE)
    if m is None:
        return None
    return int(m[1]) * (1024 if m[2].lower() == "kb" else 1)


def cgroup_limit(text: str) -> int | None:
    """A cgroup memory limit file's value in bytes: v2 ``memory.max`` (``"max"``: no limit) or v1
    ``memory.limit_in_bytes`` (at or above :data:`V1_NO_LIMIT`: no limit);
    ``None`` for no limit or an unreadable text."""
    value = text.strip()
    if value == "max":
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return None if n >= V1_NO_LIMIT else n


def _stat_value(stat_text: str, keys: tuple[str, ...]) -> int:
    """The value of the first of ``keys`` that a ``memory.stat`` text holds, else 0."""
    found = (re.search(rf"^{key}[ \t]+(\d+)[ \t]*$", stat_text, re.MULTILINE) for key in keys)
    return next((int(m[1]) for m in found if m), 0)


def cgroup_headroom(limit_text: str, usage_text: str, stat_text: str = "") -> int | None:
    """What one memory cgroup still lets its processes allocate: ``limit - (usage - inactive_file)``, >= 0.

    ``limit_text`` / ``usage_text`` are ``memory.max`` / ``memory.current`` (v2) or ``memory.limit_in_bytes``
    / ``memory.usage_in_bytes`` (v1).  The usage includes the page cache; its inactive file pages
    (``inactive_file`` in v2's ``memory.stat``, ``total_inactive_file`` in v1's) are reclaimed before the
    cgroup's OOM killer acts, so they count as available (the kubelet's "working set" rule).  ``None`` when
    the cgroup sets no limit or a text cannot be read.
    """
    limit = cgroup_limit(limit_text)
    if limit is None:
        return None
    try:
        usage = int(usage_text.strip())
    except ValueError:
        return None
    inactive = _stat_value(stat_text, ("total_inactive_file", "inactive_file"))
    return max(limit - max(usage - inactive, 0), 0)


def memory_cgroup_dirs(proc_self_cgroup: str, root: Path | str = "/sys/fs/cgroup") -> list[tuple[Path, str, str]]:
    """The memory cgroup directories a process is in, from its own up to the mount's root, as
    ``(directory, limit file, usage file)``; from the text of ``/proc/self/cgroup``.

    v2 (line ``0::/path``): ``root/path``, ``memory.max``, ``memory.current``.  v1 (a line whose
    controllers include ``memory``): ``root/memory/path``, ``memory.limit_in_bytes``,
    ``memory.usage_in_bytes``.  Every ancestor is listed because a parent's limit binds its children.
    Whether the directories exist is not checked here.
    """
    root = Path(root)
    out: list[tuple[Path, str, str]] = []
    for line in proc_self_cgroup.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            base, files = root, ("memory.max", "memory.current")
        elif "memory" in controllers.split(","):
            base, files = root / "memory", ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        rel = Path(path.lstrip("/"))  # its parents end with "." (the mount's root)
        out += [(base / p, *files) for p in (rel, *rel.parents)]
    return out


def _read(path: Path) -> str:
    """The file's text; ``""`` when it cannot be read (which every parser here reads as "nothing known")."""
    try:
        return path.read_text()
    except OSError:
        return ""


def cpu_available_bytes(proc: Path | str = "/proc", cgroup_root: Path | str = "/sys/fs/cgroup") -> int | None:
    """The CPU's available memory: the smallest of ``MemAvailable`` (``proc/meminfo``) and every memory
    cgroup's headroom (:func:`cgroup_headroom`); ``os.sysconf`` free pages when ``proc/meminfo`` is missing;
    ``None`` when nothing can be read."""
    proc = Path(proc)
    candidates: list[int] = []
    avail = meminfo_available(_read(proc / "meminfo"))
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    if avail is not None and avail >= 0:
        candidates.append(avail)
    dirs = memory_cgroup_dirs(_read(proc / "self" / "cgroup"), cgroup_root)
    for d, limit_file, usage_file in dict.fromkeys(dirs):  # each directory once
        head = cgroup_headroom(_read(d / limit_file), _read(d / usage_file), _read(d / "memory.stat"))
        if head is not None:
            candidates.append(head)
    return min(candidates) if candidates else None


def available_bytes(device: torch.device | str) -> int | None:
    """Bytes a new allocation on ``device`` can take now: CUDA's free memory (``torch.cuda.mem_get_info``),
    :func:`cpu_available_bytes` on the CPU, ``None`` for other devices or when nothing can be read."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    if device.type == "cpu":
        return cpu_available_bytes()
    return None
