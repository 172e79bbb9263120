"""Unpacking a device bundle safely: every path stays inside the destination, no links, no devices."""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath

from edgedistill.artifacts import read_json, sha256_path
from edgedistill.errors import InputError


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
    members = tar.getmembers()
    for member in members:
        reason = unsafe_reason(member)
        if reason:
            raise InputError(f"{source}: refusing to unpack '{member.name}' ({reason}); the bundle is not one "
                             "edgedistill wrote, or it was tampered with")
    return members


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract ``tarball`` into ``dest`` after checking every member, then verify the manifest's hashes.

    Returns:
        The bundle folder inside ``dest``.
    Raises:
        InputError: a member would escape ``dest`` or is a link/device, or a file's hash differs.
    """
    if not tarball.is_file():
        raise InputError(f"bundle not found: {tarball}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:gz") as tar:
        members = check_members(tar, tarball)
        tops = {PurePosixPath(m.name).parts[0] for m in members}
        if len(tops) != 1:
            raise InputError(f"{tarball}: expected one top-level folder, found {sorted(tops)}")
        if hasattr(tarfile, "data_filter"):  # Python's own 'data' filter as a second line of defence (3.11.4+)
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)
    folder = dest / tops.pop()
    verify_bundle(folder)
    return folder


def verify_bundle(folder: Path) -> None:
    """Raise InputError if a file the manifest lists is missing, outside the folder, or changed."""
    manifest = read_json(folder / "manifest.json")
    root = folder.resolve()
    for rel, digest in manifest["files"].items():
        path = (folder / rel).resolve()
        if not path.is_relative_to(root):
            raise InputError(f"{folder}: manifest path '{rel}' points outside the bundle")
        if not path.is_file():
            raise InputError(f"{folder}: '{rel}' is missing; re-copy the bundle")
        if sha256_path(path) != digest:
            raise InputError(f"{folder}: '{rel}' differs from the packaged file; re-copy the bundle")
