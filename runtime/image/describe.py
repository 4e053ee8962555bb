"""Docker-shaped views of an image: `inspect_image` (for `virtlab inspect`) and `history_rows`."""

from __future__ import annotations

from runtime.image import reference
from runtime.image.store import Image, ImageStore

_CONFIG_DEFAULTS = {
    "Hostname": "", "Domainname": "", "User": "", "AttachStdin": False, "AttachStdout": False, "AttachStderr": False,
    "Tty": False, "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None, "Image": "", "Volumes": None,
    "WorkingDir": "", "Entrypoint": None, "OnBuild": None, "Labels": None,
}


def inspect_image(store: ImageStore, ref: str | Image) -> dict:
    """The image as `docker image inspect` shows it (one element of the JSON array)."""
    img = ref if isinstance(ref, Image) else store.resolve(ref)
    refs = img.refs or store.refs(img)
    repos = []
    for r in refs:
        repo = reference.parse(r).repository
        if repo not in repos:
            repos.append(repo)
    cfg = dict(_CONFIG_DEFAULTS)
    cfg.update(img.config.get("config") or {})
    history = [h for h in (img.config.get("history") or []) if isinstance(h, dict)] \
        if isinstance(img.config.get("history"), list) else []
    snap = [str(store.snap_dir / layer.diff_id.split(":", 1)[1] / "fs") for layer in img.layers]
    size = store.image_size(img)
    return {
        "Id": img.id,
        "RepoTags": [r for r in refs if "@" not in r],
        "RepoDigests": [f"{repo}@{img.digest}" for repo in repos],
        "Parent": "",
        "Comment": str(history[-1].get("comment") or "") if history else "",
        "Created": img.created,
        "Container": "",
        "ContainerConfig": {},
        "DockerVersion": "",
        "Author": img.config.get("author", ""),
        "Config": cfg,
        "Architecture": img.config.get("architecture", ""),
        "Variant": img.config.get("variant", ""),
        "Os": img.config.get("os", ""),
        "Size": size,
        "VirtualSize": size,
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": ":".join(reversed(snap))}},
        "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in img.layers]},
        "Metadata": {"LastTagTime": ""},
        "ManifestDigest": img.digest,
        "ManifestMediaType": img.manifest_media_type,
    }


def history_rows(store: ImageStore, img: Image) -> list[dict]:
    """History entries newest first: id (top only), created, created_by, size of the layer, comment."""
    rows = []
    layers = list(img.layers)
    entries = img.config.get("history")
    if not isinstance(entries, list) or not entries:
        entries = [{} for _ in layers]
    li = 0
    for h in entries:
        if not isinstance(h, dict):
            continue  # image config is untrusted data: skip what is not a history entry
        size = 0
        if not h.get("empty_layer") and li < len(layers):
            meta = store.snapshot_meta(layers[li].diff_id)
            size = meta.get("apparent_bytes", layers[li].size)
            li += 1
        rows.append({"created": str(h.get("created") or ""), "created_by": str(h.get("created_by") or ""),
                     "size": size, "comment": str(h.get("comment") or "")})
    rows.reverse()
    for i, row in enumerate(rows):
        row["id"] = img.id if i == 0 else "<missing>"
    return rows
