"""Device bundles: ONNX + plugin sources + manifest + build/bench scripts, to build the engine on the device."""

from __future__ import annotations

from edgedistill.bundle.package import Bundle, package
from edgedistill.bundle.unpack import unpack, verify_bundle

__all__ = ["Bundle", "package", "unpack", "verify_bundle"]
