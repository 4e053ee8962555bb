"""The lean rtnetlink socket: pyroute2's codecs without pyroute2's package-wide imports, and its errors."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap

import pytest

from runtime.network.errors import LinkError, NetlinkError
from runtime.network.netlink import Netlink


def _python(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_codecs_load_without_asyncio_ndb_or_every_netlink_family():
    out = _python("""
        import sys
        from runtime.network.netlink import Netlink
        nl = Netlink()
        heavy = [m for m in ("asyncio", "pyroute2.ndb", "pyroute2.ipdb", "pyroute2.iproute.linux") if m in sys.modules]
        print(heavy, nl.link_index("lo"))
    """)
    assert out.split() == ["[]", "1"]


def test_the_whole_of_pyroute2_still_imports_afterwards_in_the_same_process():
    out = _python("""
        from runtime.network.netlink import Netlink
        Netlink().close()
        import pyroute2
        from pyroute2 import IPRoute
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        with IPRoute() as ipr:
            print(ipr.link_lookup(ifname="lo"), isinstance(pyroute2.__version__, str), type(pyroute2).__name__,
                  ifinfmsg is Netlink().ifinfmsg)
    """)
    assert out.split() == ["[1]", "True", "module", "True"]


def test_after_a_full_pyroute2_import_the_same_classes_are_used():
    out = _python("""
        import pyroute2
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from runtime.network.netlink import Netlink
        print(Netlink().ifaddrmsg is ifaddrmsg)
    """)
    assert out.strip() == "True"


def test_a_missing_link_is_none_and_a_refused_request_carries_the_errno():
    nl = Netlink()
    try:
        assert nl.link_index("vl-no-such-0") is None
        with pytest.raises(NetlinkError) as info:
            nl.delete("vl-no-such-0")
        assert info.value.code in (errno.ENODEV, errno.EPERM)
        assert isinstance(info.value, LinkError)  # exit code 125 through the package's hierarchy
    finally:
        nl.close()
