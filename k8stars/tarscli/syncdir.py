"""syncdir: copy a mounted ConfigMap (or any directory) into ``$TARS_PATH/bin``.

Non-recursive: regular files and symlinks to files (a ConfigMap volume's entries are symlinks into its ``..data``
directory; they are resolved relative to the source). A file whose size and modification time match is skipped;
others are written atomically with mode 0755 and the source's modification time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def sync(source: Path, target: Path) -> list[str]:
    """Returns the names copied."""
    target.mkdir(parents=True, exist_ok=True)
    copied = []
    for entry in sorted(source.iterdir()):
        real = Path(os.path.realpath(entry))
        if not real.is_file():
            continue
        st = real.stat()
        dest = target / entry.name
        try:
            ds = dest.stat()
            if ds.st_size == st.st_size and int(ds.st_mtime) == int(st.st_mtime):
                continue
        except FileNotFoundError:
            pass
        fd, tmp = tempfile.mkstemp(prefix=f".{entry.name}.", dir=target)
        try:
            with os.fdopen(fd, "wb") as out, open(real, "rb") as src:
                shutil.copyfileobj(src, out)
            os.chmod(tmp, 0o755)
            os.utime(tmp, (st.st_atime, st.st_mtime))
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        copied.append(entry.name)
    return copied


def sync_tree(source: Path, target: Path) -> list[str]:
    """``sync`` plus the source's directories, copied whole (the node image's agent is ``tarscli`` beside its
    ``_internal/`` directory); returns the names copied."""
    copied = sync(source, target)
    for entry in sorted(source.iterdir()):
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, symlinks=True, dirs_exist_ok=True)
            copied.append(f"{entry.name}/")
    return copied
