"""Errors of the image store and registry client.

    ImageError (exit_code 125)
    ├── ImageNotFound            no image matches a reference or ID
    ├── InvalidReference         a name, tag, digest or ID that is not well formed
    ├── InvalidArchive           a tar, layer, OCI layout or docker archive we refuse
    │   ├── DigestMismatch       content does not hash to the digest it claims
    │   └── LimitExceeded        too big, too many entries, too deep, too long
    ├── ImageInUse               a container holds the image (use force)
    ├── AmbiguousImage           an ID prefix that matches several images
    └── RegistryError            the registry refused or failed (HTTP status, protocol)
        └── AuthError            missing or wrong credentials, or an unsafe auth realm
"""

from __future__ import annotations


class ImageError(Exception):
    """Root of every image-store error; docker's exit code for an engine error."""

    exit_code = 125


class ImageNotFound(ImageError):
    """No image matches the reference or ID."""

    def __init__(self, ref: str):
        super().__init__(f"no such image: {ref}")
        self.ref = ref


class InvalidReference(ImageError):
    """A reference, tag, digest or ID is not well formed."""


class InvalidArchive(ImageError):
    """An archive, layer or image document is malformed or hostile."""


class DigestMismatch(InvalidArchive):
    """Content does not match the digest it was announced with."""


class LimitExceeded(InvalidArchive):
    """Untrusted input went over a size, count, depth or length limit."""


class ImageInUse(ImageError):
    """The image is held by a container and cannot be removed without force."""


class AmbiguousImage(ImageError):
    """An ID prefix matches more than one image."""


class RegistryError(ImageError):
    """A registry answered with an error or broke the distribution protocol."""


class AuthError(RegistryError):
    """Authentication failed, or the registry asked for credentials in an unsafe way."""
