#!/usr/bin/env python3
"""Packs binaries into an image archive without Docker.

    oci-pack.py OUT.tar NAME:TAG ENTRYPOINT_BINARY [--user UID] [--cmd ARG]... [--file SRC:DEST]...

The archive holds one layer with the binary at /<basename>, every shared library `ldd` names and
the dynamic loader (a static binary brings only itself), plus an image config and both an OCI
layout (index.json, blobs/) and a docker `manifest.json`, so `ctr images import`, `docker load`
and `kind load image-archive` all take it. Layers are deterministic: same inputs, same digest.
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile


def libraries(binary):
    out = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if out.returncode != 0 or "not a dynamic executable" in out.stdout + out.stderr:
        return []
    libs = []
    for line in out.stdout.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            libs.append(m.group(1))
    return libs


def add_file(tar, src, dest, mode=None):
    data = open(src, "rb").read()
    info = tarfile.TarInfo(dest.lstrip("/"))
    info.size = len(data)
    info.mode = mode if mode is not None else (os.stat(src).st_mode & 0o7777)
    info.mtime = 0
    info.uid = info.gid = 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar, path, mode=0o755):
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type = tarfile.DIRTYPE
    info.mode = mode
    info.mtime = 0
    tar.addfile(info)


def layer(files, dirs):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        made = set()
        for d in sorted(dirs):
            add_dir(tar, d, 0o1777 if d == "/tmp" else 0o755)
            made.add(d.lstrip("/"))
        for dest, src in sorted(files.items()):
            parts = dest.lstrip("/").split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in made:
                    add_dir(tar, d)
                    made.add(d)
            # Follow symlinks: the layer holds the real bytes under the name ldd printed.
            add_file(tar, os.path.realpath(src), dest)
    return buf.getvalue()


def blob(tar, data):
    digest = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo(f"blobs/sha256/{digest}")
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))
    return digest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("ref")
    ap.add_argument("binary")
    ap.add_argument("--user", default=None)
    ap.add_argument("--cmd", action="append", default=[])
    ap.add_argument("--file", action="append", default=[], help="SRC:DEST")
    a = ap.parse_args()

    entry = "/" + os.path.basename(a.binary)
    files = {entry: a.binary}
    for lib in libraries(a.binary):
        files[lib] = lib
    for f in a.file:
        src, dest = f.split(":", 1)
        files[dest] = src
    layer_tar = layer(files, ["/tmp"])
    diff_id = hashlib.sha256(layer_tar).hexdigest()
    layer_gz = gzip.compress(layer_tar, mtime=0)

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": [entry],
            "Cmd": a.cmd or None,
            "Env": ["PATH=/"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": "kotel e2e/images/oci-pack.py"}],
    }
    if a.user:
        config["config"]["User"] = a.user
    config_bytes = json.dumps(config, sort_keys=True).encode()

    with tarfile.open(a.out, "w") as tar:
        layer_digest = blob(tar, layer_gz)
        config_digest = blob(tar, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": len(config_bytes),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": f"sha256:{layer_digest}",
                "size": len(layer_gz),
            }],
        }
        manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
        manifest_digest = blob(tar, manifest_bytes)
        tag = a.ref.rsplit(":", 1)[1] if ":" in a.ref.split("/")[-1] else "latest"
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": f"sha256:{manifest_digest}",
                "size": len(manifest_bytes),
                "annotations": {
                    "io.containerd.image.name": a.ref,
                    "org.opencontainers.image.ref.name": tag,
                },
            }],
        }
        docker = [{
            "Config": f"blobs/sha256/{config_digest}",
            "RepoTags": [a.ref],
            "Layers": [f"blobs/sha256/{layer_digest}"],
        }]
        for name, data in [
            ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
            ("index.json", json.dumps(index, sort_keys=True).encode()),
            ("manifest.json", json.dumps(docker).encode()),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    print(f"{a.out}: {a.ref} ({len(files)} files, layer {len(layer_gz)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
