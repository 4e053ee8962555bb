"""Bridge networking for virtlab's containers: networks, IPAM, veth pairs, published ports, hosts files.

The public names are imported lazily so that `import runtime.network` costs nothing;
pyroute2's rtnetlink codecs (about 20 ms, see netlink.py) are loaded only when a link is
actually created or removed.

    from runtime.network import NetworkManager, PortSpec
    nm = NetworkManager(root / "network")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Attachment", "NetworkError", "NetworkManager", "PortSpec", "parse_publish"]

_WHERE = {
    "Attachment": "runtime.network.manager",
    "NetworkManager": "runtime.network.manager",
    "NetworkError": "runtime.network.errors",
    "PortSpec": "runtime.network.ports",
    "parse_publish": "runtime.network.ports",
}

if TYPE_CHECKING:
    from runtime.network.errors import NetworkError
    from runtime.network.manager import Attachment, NetworkManager
    from runtime.network.ports import PortSpec, parse_publish


def __getattr__(name: str) -> Any:
    """Import a public name on first use."""
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'runtime.network' has no attribute {name!r}")
