"""`AllowedUntrustedInternalConnections`: which addresses the server may call integrations on.

The real server dials through a filter (`shared/httpservice`): a host listed literally is dialled as is;
otherwise the host is resolved and an address that is reserved (private, loopback, link-local, documentation,
multicast, ...) is usable only inside a listed CIDR. When no address is usable the call fails with "address
forbidden", which the clicking client sees as the usual 400 integration error.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: `reservedIPRanges` of the real server.
RESERVED_NETWORKS = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "127.0.0.0/8",
        "0.0.0.0/8",
        "169.254.0.0/16",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "192.88.99.0/24",
        "198.18.0.0/15",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "100.64.0.0/10",
        "::/128",
        "::1/128",
        "100::/64",
        "2001::/23",
        "2001:2::/48",
        "2001:db8::/32",
        "2001::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
        "2002::/16",
        "64:ff9b::/96",
        "2001:10::/28",
        "2001:20::/28",
    )
)
FORBIDDEN = (
    "address forbidden, you may need to set AllowedUntrustedInternalConnections to allow an integration access "
    "to your internal network"
)
_SEPARATORS = re.compile(r"[\s,]+")


class AddressForbidden(Exception):
    """No address of the integration's host may be called; the message is the real server's."""


def allow_list(setting: str) -> list[str]:
    """The setting split as `strings.FieldsFunc(s, space or comma)`."""
    return [entry for entry in _SEPARATORS.split(setting) if entry]


def is_reserved(ip: IPAddress) -> bool:
    """`IsReservedIP`: IPv4-mapped IPv6 addresses are judged as IPv4."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in RESERVED_NETWORKS)


def refusal(ip: IPAddress, setting: str) -> str | None:
    """Why this address may not be dialled, or None when it may (public, or in a listed CIDR)."""
    if not is_reserved(ip):
        return None
    plain = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None else ip
    for entry in allow_list(setting):
        try:
            # Only CIDRs count here (Go's net.ParseCIDR); a bare IP is matched as a host name instead.
            network = ipaddress.ip_network(entry, strict=False) if "/" in entry else None
        except ValueError:
            continue
        if network is not None and network.version == plain.version and plain in network:
            return None
    return f"IP {ip} is in a reserved range and not in AllowedUntrustedInternalConnections"


async def check(host: str, port: int, setting: str) -> None:
    """Raise AddressForbidden unless the real server's dial filter would let this call through.

    The host's addresses come from the system resolver, as for the real server. (The fake then lets aiohttp
    connect by name; the real server dials the first permitted address itself.)
    """
    if host in allow_list(setting):
        return
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos))
    reasons = [reason for ip in addresses if (reason := refusal(ip, setting)) is not None]
    if len(reasons) == len(addresses):
        raise AddressForbidden(f"{FORBIDDEN}: {'; '.join(reasons)}" if reasons else FORBIDDEN)
