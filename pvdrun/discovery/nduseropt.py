"""RTM_NEWNDUSEROPT: the RA options (RDNSS, DNSSL) the kernel hands to netlink listeners.

The kernel passes these only as events, one option per message, with the
router's address in NDUSEROPT_SRCADDR; there is no dump.  Listening needs no
privilege, so a monitor without the raw RA socket still learns RA DNS.
Pure parsing of the bytes of a netlink datagram; bound-checked.
"""
from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass

from pvdrun.discovery.ra import ND_ROUTER_ADVERT, Options, parse_options_into

RTM_NEWNDUSEROPT = 68
NDUSEROPT_SRCADDR = 1
_NLMSG_HDR = struct.Struct("=IHHII")
_NDUSEROPT = struct.Struct("=BBHiBBHI")


@dataclass
class UserOption:
    """ND user options from one RA, as the kernel reported them."""

    ifindex: int
    source: str
    options: Options


def parse_datagram(data: bytes) -> tuple[list[UserOption], bool]:
    """(the ND user options in a netlink datagram, whether it held other messages)."""
    found: list[UserOption] = []
    other = False
    offset = 0
    while offset + _NLMSG_HDR.size <= len(data):
        length, msg_type, _flags, _seq, _pid = _NLMSG_HDR.unpack_from(data, offset)
        if length < _NLMSG_HDR.size or offset + length > len(data):
            break
        if msg_type == RTM_NEWNDUSEROPT:
            parsed = parse_useropt(data[offset + _NLMSG_HDR.size:offset + length])
            if parsed is not None:
                found.append(parsed)
        else:
            other = True
        offset += (length + 3) & ~3
    return found, other


def parse_useropt(body: bytes) -> UserOption | None:
    """One RTM_NEWNDUSEROPT message's body (after the netlink header), or None if malformed."""
    if len(body) < _NDUSEROPT.size:
        return None
    family, _pad1, opts_len, ifindex, icmp_type, _code, _pad2, _pad3 = _NDUSEROPT.unpack_from(body)
    if family != socket.AF_INET6 or icmp_type != ND_ROUTER_ADVERT:
        return None
    start = _NDUSEROPT.size
    if start + opts_len > len(body):
        return None
    options = Options()
    parse_options_into(body[start:start + opts_len], 0, options, [], nested=True, context="useropt")
    source = None
    offset = (start + opts_len + 3) & ~3
    while offset + 4 <= len(body):
        nla_len, nla_type = struct.unpack_from("=HH", body, offset)
        if nla_len < 4 or offset + nla_len > len(body):
            break
        if nla_type == NDUSEROPT_SRCADDR and nla_len >= 20:
            source = str(ipaddress.IPv6Address(body[offset + 4:offset + 20]))
        offset += (nla_len + 3) & ~3
    if source is None:
        return None
    return UserOption(ifindex=ifindex, source=source, options=options)
