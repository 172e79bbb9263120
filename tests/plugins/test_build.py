"""`edgedistill plugins build`: where it builds, what it configures, and a build folder of another source."""

from __future__ import annotations

from pathlib import Path

from edgedistill.plugins import build, loader


def test_build_folder_follows_the_cache_conventions(monkeypatch, tmp_path):
    monkeypatch.delenv(build.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.default_build_dir().parent == tmp_path / "xdg" / "edgedistill" / "plugins"
    assert build.default_build_dir().name.endswith(f"-abi{loader.ABI_VERSION}")  # a new ABI builds afresh
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path / "mine"))
    assert build.cache_root() == tmp_path / "mine"


def test_configure_command_is_the_packages_own_project(tmp_path):
    cmd = build.configure_command(tmp_path, cuda=False, cuda_archs="87", tensorrt_root=Path("/opt/trt"))
    assert cmd[:5] == ["cmake", "-S", str(build.PLUGINS_DIR), "-B", str(tmp_path)]
    assert {"-DEDGEDISTILL_CUDA=OFF", "-DCMAKE_CUDA_ARCHITECTURES=87", "-DTensorRT_ROOT=/opt/trt"} <= set(cmd)
    assert (build.PLUGINS_DIR / "CMakeLists.txt").is_file() and (build.PLUGINS_DIR / "native.cmake").is_file()


def test_a_cache_of_another_source_is_forgotten(tmp_path):
    (tmp_path / "CMakeFiles").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "CMakeCache.txt").write_text("CMAKE_HOME_DIRECTORY:INTERNAL=/somewhere/else\n")
    build.forget_other_source(tmp_path)
    assert not (tmp_path / "CMakeCache.txt").exists() and not (tmp_path / "CMakeFiles").exists()
    assert (tmp_path / "lib").is_dir()
    (tmp_path / "CMakeCache.txt").write_text(f"CMAKE_HOME_DIRECTORY:INTERNAL={build.PLUGINS_DIR}\n")
    build.forget_other_source(tmp_path)
    assert (tmp_path / "CMakeCache.txt").is_file()
