"""Unpacking a device bundle safely: every path stays inside the destination, no links, no devices.

A bundle is a tar archive (gzip, bzip2, xz or uncompressed) holding one folder, as ``edgedistill package`` writes
it, or the bundle's files at its root, as ``tar -C bundle -czf b.tgz .`` writes them. It is extracted into
``<dest>/<name>.partial`` and renamed to ``<dest>/<name>`` once every file's hash matches the manifest, so an
interrupted or refused unpack leaves nothing that looks like a bundle.
"""

from __future__ import annotations

import copy
import tarfile
from pathlib import Path, PurePosixPath

from edgedistill.artifacts import read_json, sha256_path, stage_dir
from edgedistill.errors import InputError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar")


def unsafe_reason(member: tarfile.TarInfo) -> str | None:
    """Why extracting ``member`` could write outside the destination (None if it cannot)."""
    path = PurePosixPath(member.name)
    if path.is_absolute() or member.name.startswith(("/", "\\")):
        return "absolute path"
    if ".." in path.parts:
        return "'..' in the path"
    if member.issym() or member.islnk():
        return "a link"
    if not (member.isfile() or member.isdir()):
        return "not a regular file or folder"
    return None


def check_members(tar: tarfile.TarFile, source: Path) -> list[tarfile.TarInfo]:
    """The archive's members, ``./`` prefixes and the root entry ``.`` dropped, each checked.

    Raises:
        InputError: a member is unsafe, or the archive is empty.
    """
    members = []
    for member in tar.getmembers():
        reason = unsafe_reason(member)
        if reason:
            raise InputError(f"{source}: refusing to unpack '{member.name}' ({reason}); the bundle is not one "
                             "edgedistill wrote, or it was tampered with")
        parts = PurePosixPath(member.name).parts  # PurePosixPath drops "./" and a lone "."
        if parts:
            members.append(renamed(member, "/".join(parts)))
    if not members:
        raise InputError(f"{source}: the archive is empty")
    return members


def renamed(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    out = copy.copy(member)
    out.name = name
    return out


def bundle_root(members: list[tarfile.TarInfo], tarball: Path) -> tuple[str, list[tarfile.TarInfo]]:
    """(the bundle's name, its members with paths relative to the bundle folder).

    A manifest at the archive's root means the files themselves were archived (``tar -C dir -czf b.tgz .``): the
    bundle is named after the archive. Otherwise the archive must hold one folder.
    """
    if any(m.name == "manifest.json" for m in members):
        name = next(tarball.name[: -len(s)] for s in (*ARCHIVE_SUFFIXES, "") if tarball.name.endswith(s))
        return name or "bundle", members
    tops = {PurePosixPath(m.name).parts[0] for m in members}
    if len(tops) != 1:
        raise InputError(f"{tarball}: expected one top-level folder or a manifest.json at the top, found "
                         f"{sorted(tops)[:5]}")
    top = tops.pop()
    inner = [renamed(m, m.name[len(top) + 1:]) for m in members if m.name != top]
    return top, inner


def check_destination(dest: Path, name: str) -> None:
    """Refuse to write through a link already present where the bundle goes."""
    for path in (dest / name, dest / f"{name}.partial", dest / f"{name}.old"):
        if path.is_symlink():
            raise InputError(f"refusing to unpack into {path}: it is a symbolic link (to {path.readlink()}); "
                             "remove it or choose another --out")


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract ``tarball`` into ``dest`` after checking every member, then verify the manifest's hashes.

    Returns:
        The bundle folder inside ``dest``.
    Raises:
        InputError: not a tar archive, a member would escape ``dest`` or is a link/device, a link sits where the
            bundle goes, or a file's hash differs (then nothing is left in ``dest``).
    """
    tarball = Path(tarball)
    if not tarball.is_file():
        raise InputError(f"bundle not found: {tarball}")
    if dest.exists() and not dest.is_dir():
        raise InputError(f"--out {dest} is a file; choose a folder to unpack into")
    dest.mkdir(parents=True, exist_ok=True)
    try:
        tar = tarfile.open(tarball, "r:*")  # noqa: SIM115 (closed by the `with` below; opening is what may fail)
    except (tarfile.ReadError, tarfile.CompressionError, EOFError, OSError) as err:
        raise InputError(f"{tarball} is not a tar archive ({err}); a bundle is the .tar.gz `edgedistill package` "
                         "writes, or a tar of its folder") from None
    with tar:
        name, members = bundle_root(check_members(tar, tarball), tarball)
        check_destination(dest, name)
        with stage_dir(dest / name, keep_partial=False) as partial:
            extract(tar, members, partial)
            verify_bundle(partial)
    return dest / name


def extract(tar: tarfile.TarFile, members: list[tarfile.TarInfo], into: Path) -> None:
    try:
        if hasattr(tarfile, "data_filter"):  # Python's own 'data' filter as a second line of defence (3.11.4+)
            tar.extractall(into, members=members, filter="data")
        else:
            tar.extractall(into, members=members)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise InputError(f"cannot unpack the bundle: {err}; the archive is damaged or cut short, copy it "
                         "again") from None


def verify_bundle(folder: Path) -> None:
    """Raise InputError if a file the manifest lists is missing, outside the folder, or changed."""
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise InputError(f"{folder}: no manifest.json; this is not a bundle `edgedistill package` wrote")
    manifest = read_json(manifest_path)
    root = folder.resolve()
    for rel, digest in manifest["files"].items():
        path = (folder / rel).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"{folder}: manifest path '{rel}' points outside the bundle")
        if not path.is_file():
            raise InputError(f"{folder}: '{rel}' is missing; re-copy the bundle")
        if sha256_path(path) != digest:
            raise InputError(f"{folder}: '{rel}' differs from the packaged file; re-copy the bundle")
