"""Deployment size: the shared layer and every function, built for python3.13 / arm64 as `sam build`
would, without Docker, against Lambda's limits.

The layer's dependencies are installed with pip's platform options (`pip install --platform
manylinux2014_aarch64 --implementation cp --python-version 3.13 --only-binary=:all: --target
python/ -r layers/shared/requirements.txt`), the amazon_pay_refunds package is copied beside them
(python/amazon_pay_refunds), and the result is zipped (deflate, as sam/CloudFormation packaging does).
Each function is its CodeUri folder (plus its own requirements.txt, if any). The pip install is cached
in .bench-cache/ (git-ignored by the .gitignore it holds), keyed by the requirements' content; the copy
and the zips are redone every run. Limits: 250 MB unzipped for a function with all its layers; 50 MB
zipped for a direct upload (function or layer).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from bench._lambda_env import REPO, functions
from bench._report import Options, Result, Row, verdict

CACHE = REPO / ".bench-cache"
LAYER_SOURCE = REPO / "layers" / "shared"
PLATFORM = ["--platform", "manylinux2014_aarch64", "--implementation", "cp", "--python-version", "3.13"]
UNZIPPED_LIMIT_MB = 250.0
ZIPPED_DIRECT_LIMIT_MB = 50.0
MB = 1024 * 1024
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", ".pytest_cache")


def cache_root() -> Path:
    CACHE.mkdir(exist_ok=True)
    marker = CACHE / ".gitignore"
    if not marker.exists():
        marker.write_text("# benchmark build cache (bench/package_size.py)\n*\n")
    return CACHE


def pip_install(requirements: Path, target: Path) -> None:
    """Dependencies for python3.13 / arm64 into `target`, cached by the requirements' content."""
    key = hashlib.sha256(requirements.read_bytes() + " ".join(PLATFORM).encode()).hexdigest()[:16]
    cached = cache_root() / "pip" / key
    if not (cached / ".complete").exists():
        shutil.rmtree(cached, ignore_errors=True)
        print(
            f"[bench] pip install {requirements.relative_to(REPO)} for arm64 ...", file=sys.stderr, flush=True
        )
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *PLATFORM,
            "--only-binary=:all:",
            "--target",
            str(cached),
            "-r",
            str(requirements),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"pip install for arm64 failed: {tail}")
        (cached / ".complete").write_text(key)
    shutil.copytree(cached, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".complete"))


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def zip_bytes(folder: Path, archive: Path) -> int:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                bundle.write(path, path.relative_to(folder))
    return archive.stat().st_size


def build_layer(build: Path) -> Path:
    root = build / "layer"
    shutil.rmtree(root, ignore_errors=True)
    python = root / "python"
    python.mkdir(parents=True)
    pip_install(LAYER_SOURCE / "requirements.txt", python)
    for entry in LAYER_SOURCE.iterdir():  # what `sam build` copies: the source beside the dependencies
        if entry.is_dir() and (entry / "__init__.py").exists():
            shutil.copytree(entry, python / entry.name, ignore=IGNORED)
    shutil.copy2(LAYER_SOURCE / "requirements.txt", python / "requirements.txt")
    return root


def build_function(build: Path, code_dir: Path) -> Path:
    root = build / "functions" / code_dir.name
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(code_dir, root, ignore=IGNORED)
    if (code_dir / "requirements.txt").exists() and (code_dir / "requirements.txt").read_text().strip():
        pip_install(code_dir / "requirements.txt", root)
    return root


def top_level(folder: Path, limit: int = 8) -> list[tuple[str, int]]:
    sizes: dict[str, int] = {}
    for child in folder.iterdir():
        name = child.name.split("-")[0] if child.name.endswith((".dist-info", ".libs")) else child.name
        name = name.removesuffix(".libs")
        size = tree_bytes(child) if child.is_dir() else child.stat().st_size
        sizes[name] = sizes.get(name, 0) + size
    return sorted(sizes.items(), key=lambda item: -item[1])[:limit]


def run(options: Options) -> Result:
    build = cache_root() / "build"
    build.mkdir(exist_ok=True)
    layer = build_layer(build)
    layer_unzipped = tree_bytes(layer) / MB
    layer_zipped = zip_bytes(layer, build / "layer.zip") / MB
    result = Result("package_size")
    case = "python3.13 / arm64 (pip --platform manylinux2014_aarch64), deflate zip"
    result.rows.append(Row(case, "SharedLayer unzipped", [layer_unzipped], unit="MB"))
    result.rows.append(
        Row(
            case,
            "SharedLayer zipped",
            [layer_zipped],
            f"{verdict(layer_zipped <= ZIPPED_DIRECT_LIMIT_MB)} "
            f"<= {ZIPPED_DIRECT_LIMIT_MB:.0f} MB direct upload",
            unit="MB",
        )
    )
    for info in functions():
        built = build_function(build, info.code_dir)
        unzipped = tree_bytes(built) / MB
        zipped = zip_bytes(built, build / f"{info.code_dir.name}.zip") / MB
        total = unzipped + layer_unzipped
        result.rows.append(
            Row(
                case,
                f"{info.logical_id} code zipped",
                [zipped * 1024],
                f"{verdict(zipped <= ZIPPED_DIRECT_LIMIT_MB)} "
                f"<= {ZIPPED_DIRECT_LIMIT_MB:.0f} MB; unzipped {unzipped * 1024:.1f} KB",
                unit="KB",
            )
        )
        result.rows.append(
            Row(
                case,
                f"{info.logical_id} + layer unzipped",
                [total],
                f"{total / UNZIPPED_LIMIT_MB:.0%} of {UNZIPPED_LIMIT_MB:.0f} MB: "
                f"{verdict(total <= UNZIPPED_LIMIT_MB)}",
                unit="MB",
            )
        )
    packages = top_level(layer / "python")
    result.notes.append(
        "largest in the layer (unzipped): "
        + ", ".join(f"{name} {size / MB:.1f} MB" for name, size in packages)
    )
    installed = {p.name.split("-")[0].lower() for p in (layer / "python").glob("*.dist-info")}
    if "botocore" in installed and "boto3" not in installed:
        result.notes.append(
            "FINDING: botocore is in the layer (pulled in by aws-xray-sdk, Powertools' [tracer] extra) but "
            "boto3 is not: the layer's botocore comes first on sys.path (/opt/python), so the runtime's "
            "boto3 would run on it, a version pairing nobody tested"
        )
    elif "botocore" in installed:
        result.notes.append(
            "boto3 and botocore both ship in the layer (layers/shared/requirements.txt), so the functions "
            "run on the SDK pair the tests ran with, not on the runtime's"
        )
    result.notes.append(
        f"build cache: {CACHE.relative_to(REPO)}/ (pip installs by requirements hash, builds)"
    )
    return result


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench._report import print_results

    print_results([run(Options())])
    os._exit(0)
