"""One run per work dir: a lock naming its holder, no silent re-run over a finished run, and a
writable folder checked before any training starts.

``tools/train.py`` claims the work dir with :func:`claim_work_dir` before it builds the Runner.
The lock is an ``flock`` on ``WORK_DIR/.lock`` (released by the kernel when the holder dies,
however it dies), whose text names the holder's pid, host and start time for the message a
second run prints. Where ``fcntl`` is missing the lock falls back to the pid check alone.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import os.path as osp
import re
import shutil
import socket
import time
from collections.abc import Iterator

from mmengine.logging import print_log

from promptsg.errors import WorkDirError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

__all__ = ['LOCK_FILE', 'check_writable', 'claim_work_dir', 'run_files', 'WorkDirLock']

LOCK_FILE = '.lock'
#: Files that show a work dir holds a (finished or interrupted) run.
_RUN_FILE = re.compile(
    r'(epoch|iter)_\d+\.pth|best_.+\.pth|last_checkpoint|best_checkpoint|test_metrics\.json'
)


def run_files(work_dir: str) -> list[str]:
    """Names of the checkpoints and results of a previous run in ``work_dir``."""
    if not osp.isdir(work_dir):
        return []
    return sorted(f for f in os.listdir(work_dir) if _RUN_FILE.fullmatch(f))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


class WorkDirLock:
    """An exclusive lock on a work dir, held until :meth:`release` or the process ends."""

    def __init__(self, work_dir: str, other: str = '--work-dir') -> None:
        self.work_dir = work_dir
        self.other = other  # the option that names another work dir, for the refusal
        self.path = osp.join(work_dir, LOCK_FILE)
        self._fd: int | None = None

    def _holder(self) -> dict:
        try:
            with open(self.path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _refuse(self, holder: dict) -> None:
        who = (
            f'pid {holder.get("pid", "?")} on {holder.get("host", "?")}, '
            f'started {holder.get("started", "?")}'
        )
        raise WorkDirError(
            f'work dir {self.work_dir} is in use by another run ({who}); wait for it, or pass '
            f'another {self.other} (if that run is gone, delete {self.path})'
        )

    def acquire(self) -> WorkDirLock:
        """Take the lock; a lock left by a dead process is taken over (and logged).

        Raises:
            WorkDirError: a live process holds it.
        """
        holder = self._holder()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                self._refuse(self._holder() or holder)
        elif holder.get('host') == socket.gethostname() and _pid_alive(int(holder.get('pid', 0))):
            os.close(fd)
            self._refuse(holder)
        if holder.get('pid') and holder.get('pid') != os.getpid():
            print_log(
                f'took over the lock of {self.work_dir} left by pid {holder["pid"]} on '
                f'{holder.get("host", "?")} (no longer running)',
                logger='current',
            )
        text = json.dumps(
            {
                'pid': os.getpid(),
                'host': socket.gethostname(),
                'started': datetime.datetime.now().isoformat(timespec='seconds'),
            }
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, text.encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock and delete the lock file."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.remove(self.path)
        os.close(self._fd)  # closing releases the flock
        self._fd = None


def check_writable(work_dir: str) -> None:
    """Create ``work_dir`` if needed and write (then delete) a probe file in it.

    Raises:
        WorkDirError: the folder cannot be created or written, naming the OS's reason.
    """
    try:
        os.makedirs(work_dir, exist_ok=True)
        probe = osp.join(work_dir, f'.write_probe.{os.getpid()}')
        with open(probe, 'wb') as f:
            f.write(b'0' * 4096)
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        raise WorkDirError(
            f'work dir {work_dir} is not writable: {e.strerror or e} (pass another --work-dir)'
        ) from e


def _move_run_aside(work_dir: str) -> str:
    """Move everything but the lock into ``<work_dir>.prev-<time>`` beside it; return that."""
    stamp = time.strftime('%Y%m%d_%H%M%S')
    target = f'{osp.normpath(work_dir)}.prev-{stamp}'
    os.makedirs(target)
    for name in os.listdir(work_dir):
        if name != LOCK_FILE:
            shutil.move(osp.join(work_dir, name), osp.join(target, name))
    return target


def _is_main_rank() -> bool:
    """Rank 0 of a launched job (torchrun, slurm, mpi) or a single process."""
    for key in ('RANK', 'SLURM_PROCID', 'OMPI_COMM_WORLD_RANK'):
        if os.environ.get(key) not in (None, '', '0'):
            return False
    return True


@contextlib.contextmanager
def claim_work_dir(
    work_dir: str,
    resume: bool = False,
    overwrite: bool = False,
    flags: tuple[str, str, str] = ('--resume', '--overwrite', '--work-dir'),
) -> Iterator[None]:
    """Hold ``work_dir`` for one training run (rank 0 only; the other ranks pass through).

    A work dir holding a previous run is refused unless ``resume`` (continue it) or
    ``overwrite`` (move it aside to ``<work_dir>.prev-<time>`` first). ``flags`` are the
    command-line names of those two choices and of another work dir, for the refusal message.

    Raises:
        WorkDirError: locked by a live run, holding a run, or not writable.
    """
    if not _is_main_rank():
        yield
        return
    check_writable(work_dir)
    lock = WorkDirLock(work_dir, other=flags[2]).acquire()
    try:
        found = run_files(work_dir)
        if found and overwrite:
            print_log(f'previous run in {work_dir} moved to {_move_run_aside(work_dir)}', 'current')
        elif found and not resume:
            shown = ', '.join(found[:4]) + (f' (+{len(found) - 4} more)' if len(found) > 4 else '')
            raise WorkDirError(
                f'work dir {work_dir} holds a previous run ({shown}): pass {flags[0]} to continue '
                f'it, {flags[1]} to move it aside and start afresh, or another {flags[2]}'
            )
        yield
    finally:
        lock.release()
