"""Write the dns_wire seed corpus (fuzz/corpus/dns_wire/) with dnspython.

The committed files are the output of this script; run it again only to change the seeds:
    python3 fuzz/make_dns_seeds.py
Valid replies of each kept type, and the edge cases the parser must refuse or survive
(compression loops, forward pointers, truncation, TC bit, counts that lie, trailing bytes).
"""
from __future__ import annotations

import struct
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rrset

CORPUS = Path(__file__).resolve().parent / "corpus"
OUT = CORPUS / "dns_wire"


def reply(qname: str, qtype: str, answers: list[tuple[str, int, str, str]] = (),
          authority: list[tuple[str, int, str, str]] = (), rcode: int = 0,
          qid: int = 0x1234) -> bytes:
    query = dns.message.make_query(qname, qtype)
    query.id = qid
    msg = dns.message.make_response(query)
    msg.set_rcode(rcode)
    for owner, ttl, rdtype, value in answers:
        msg.answer.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, value))
    for owner, ttl, rdtype, value in authority:
        msg.authority.append(dns.rrset.from_text(owner, ttl, "IN", rdtype, value))
    return msg.to_wire()


def cmsg(level: int, ctype: int, data: bytes, length: int | None = None) -> bytes:
    """One control message: cmsghdr (size_t len, int level, int type), data, padding to 8."""
    length = 16 + len(data) if length is None else length
    raw = struct.pack("=QiI", length, level, ctype) + data
    return raw + bytes(-len(raw) % 8)


def cmsg_seeds() -> None:
    """The harness's PvD: interfaces 3 and 5, 192.0.2.10, 10.1.0.2, 2001:db8::10, fe80::2."""
    import ipaddress

    ip, ipv6, ip_pktinfo, ipv6_pktinfo, ipv6_2292pktinfo, ipv6_nexthop, ip_ttl = 0, 41, 8, 50, 2, 9, 2

    def pk4(ifindex: int, spec: str) -> bytes:
        return cmsg(ip, ip_pktinfo, struct.pack("=i", ifindex)
                    + ipaddress.IPv4Address(spec).packed + bytes(4))

    def pk6(ifindex: int, addr: str, ctype: int = ipv6_pktinfo) -> bytes:
        return cmsg(ipv6, ctype, ipaddress.IPv6Address(addr).packed + struct.pack("=I", ifindex))

    out = CORPUS / "cmsg"
    out.mkdir(parents=True, exist_ok=True)
    seeds = {
        "v4_inside": b"\0" + pk4(3, "192.0.2.10"),
        "v4_any_source": b"\0" + pk4(5, "0.0.0.0"),
        "v4_other_interface": b"\0" + pk4(4, "192.0.2.10"),
        "v4_other_source": b"\0" + pk4(0, "198.51.100.1"),
        "v6_inside": b"\6" + pk6(5, "2001:db8::10"),
        "v6_other_source": b"\6" + pk6(3, "2001:db8::99"),
        "v6_2292_mapped": b"\0" + pk6(0, "::ffff:10.1.0.2", ipv6_2292pktinfo),
        "nexthop": b"\0" + cmsg(ipv6, ipv6_nexthop, bytes(28)),
        "ttl_then_bad": b"\0" + cmsg(ip, ip_ttl, struct.pack("=i", 9)) + pk4(7, "192.0.2.10"),
        "good_then_bad": b"\1" + pk6(3, "fe80::2") + pk6(3, "fe80::3"),
        "len_zero": b"\0" + cmsg(ip, ip_pktinfo, bytes(12), length=0),
        "len_too_long": b"\0" + cmsg(ip, ip_pktinfo, bytes(12), length=4096),
        "short_header": b"\0" + struct.pack("=Qi", 28, ip),
        "unaligned_len": b"\0" + cmsg(ip, ip_pktinfo, struct.pack("=i", 4) + bytes(8), length=27)[:27],
        "slot_without_pvd": b"\2" + pk4(3, "192.0.2.10"),
        "not_tied": b"\4" + pk4(9, "198.51.100.1"),
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def attributes_seeds() -> None:
    """pvdd's replies to op "get" for the PvD with handle 42 (fuzz/fuzz_attributes.c): the
    first byte picks the key (low 3 bits) and the output size (high 5 bits)."""
    import json

    out = CORPUS / "attributes"
    out.mkdir(parents=True, exist_ok=True)
    info = {"identifier": "pvd.example.com.", "expires": "2027-01-01T00:00:00Z",
            "prefixes": ["2001:db8:1::/48"], "name": "Caf\u00e9 \"net\"", "noInternet": True,
            "metered": False, "dnsZones": ["example.com."], "captivePortalURL": None,
            "proxies": [{"url": "http://[2001:db8::8]:3128", "bypass": [1.5e-3, -0, {"deep": [[[]]]}]}],
            "unknownKey": {"a": {"b": {"c": [1, 2, {"d": None}]}}}}
    pvd = {"pvd_id": "ispa", "handle": 42, "names": ["ispa"], "attributes": {"k": "v", "n": 3},
           "additional_info": info, "scope": "v=1 id=ispa handle=42"}

    def line(obj: object, **dump: object) -> bytes:
        return json.dumps(obj, **dump).encode()

    ok = {"v": 1, "ok": True, "op": "get", "pvd": pvd}
    seeds = {
        "whole_big": bytes([31 << 3]) + line(ok),
        "whole_4096": bytes([7 << 3]) + line(ok),
        "whole_small": bytes([4 << 3]) + line(ok),
        "key_noInternet": bytes([7 << 3 | 1]) + line(ok),
        "key_k": bytes([6 << 3 | 2]) + line(ok),
        "key_name_escaped": bytes([7 << 3 | 3]) + line(ok),
        "key_missing": bytes([7 << 3 | 6]) + line(ok),
        "key_utf8": bytes([7 << 3 | 4]) + line({**ok, "pvd": {**pvd, "attributes": {"café": 1}}}),
        "key_surrogates": bytes([7 << 3 | 5]) + line({**ok, "pvd": {**pvd, "attributes": {"\U0001F600": []}}}),
        "key_quote": bytes([7 << 3 | 7]) + line({**ok, "pvd": {**pvd, "attributes": {'a"b': "q"}}}),
        "info_null": bytes([7 << 3]) + line({**ok, "pvd": {**pvd, "additional_info": None}}),
        "no_attributes": bytes([7 << 3]) + line({**ok, "pvd": {"handle": 42}}),
        "other_handle": bytes([7 << 3]) + line({**ok, "pvd": {**pvd, "handle": 43}}),
        "unknown_pvd": bytes([7 << 3]) + b'{"v":1,"ok":false,"op":"get","code":"unknown_pvd","message":"no"}',
        "spaced": bytes([7 << 3 | 1]) + line(ok, indent=1),
        "truncated": bytes([7 << 3]) + line(ok)[:200],
        "too_deep": bytes([7 << 3]) + b'{"ok":true,"pvd":{"handle":42,"attributes":{"x":' + b"[" * 40 + b"]" * 40 + b"}}}",
        "bad_escape": bytes([7 << 3]) + b'{"ok":true,"pvd":{"handle":42,"attributes":{"x":"\\q"}}}',
        "numbers": bytes([7 << 3 | 2]) + b'{"ok":true,"pvd":{"handle":42,"attributes":{"k":-0.5e+10,"m":01}}}',
        "trailing": bytes([7 << 3]) + b'{"ok":true,"pvd":{"handle":42}} x',
    }
    for name, data in seeds.items():
        (out / name).write_bytes(data)


def main() -> None:
    cmsg_seeds()
    attributes_seeds()
    OUT.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, bytes] = {}
    seeds["a"] = reply("svc.example.", "A", [("svc.example.", 300, "A", "192.0.2.1"),
                                             ("svc.example.", 300, "A", "192.0.2.2")])
    seeds["aaaa"] = reply("svc.example.", "AAAA", [("svc.example.", 60, "AAAA", "2001:db8::1")])
    seeds["cname_chain"] = reply("www.example.", "A", [
        ("www.example.", 30, "CNAME", "web.isp-a.example."),
        ("web.isp-a.example.", 30, "CNAME", "edge.isp-a.example."),
        ("edge.isp-a.example.", 30, "A", "10.1.0.81")])
    seeds["ptr"] = reply("1.2.0.192.in-addr.arpa.", "PTR",
                         [("1.2.0.192.in-addr.arpa.", 60, "PTR", "host.example.")])
    seeds["nxdomain_soa"] = reply("nope.example.", "A", rcode=dns.rcode.NXDOMAIN, authority=[
        ("example.", 60, "SOA", "ns.example. admin.example. 1 60 60 60 60")])
    seeds["other_types"] = reply("svc.example.", "A", [
        ("svc.example.", 60, "TXT", '"hello"'), ("svc.example.", 60, "MX", "10 mx.example."),
        ("svc.example.", 60, "A", "192.0.2.9")])
    seeds["root_question"] = reply(".", "A")
    long_name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61]) + "."
    seeds["longest_name"] = reply(long_name, "A", [(long_name, 1, "A", "192.0.2.3")])
    ttl_high = bytearray(reply("svc.example.", "A", [("svc.example.", 300, "A", "192.0.2.1")]))
    ttl_high[-10:-6] = b"\x80\x00\x00\x01"  # TTL with the top bit set: read as 0
    seeds["ttl_top_bit"] = bytes(ttl_high)

    good = reply("svc.example.", "A", [("svc.example.", 300, "A", "192.0.2.1")])
    tc = bytearray(good)
    tc[2] |= 0x02
    seeds["truncated_bit"] = bytes(tc[:len(tc) - 8])
    seeds["cut_in_record"] = good[:-3]
    seeds["trailing_garbage"] = good + b"\x00\x01"
    lie = bytearray(good)
    lie[6:8] = struct.pack("!H", 0x7FF)  # ANCOUNT far beyond the message
    seeds["count_lies"] = bytes(lie)
    header = struct.pack("!HHHHHH", 0x1234, 0x8180, 1, 1, 0, 0)
    question = b"\x03svc\x07example\x00\x00\x01\x00\x01"
    rr_tail = b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    seeds["pointer_self"] = header + question + b"\xc0\x1d" + rr_tail  # points at itself
    seeds["pointer_forward"] = header + question + b"\xc0\x30" + rr_tail
    seeds["pointer_question"] = header + question + b"\xc0\x0c" + rr_tail
    seeds["pointer_chain"] = (header + question + b"\x01x\xc0\x0c" + rr_tail[:-4]
                              + b"\x00\x04\xc0\x00\x02\x01")
    seeds["reserved_label"] = header + question + b"\x40\x00" + rr_tail
    seeds["dot_in_label"] = header + b"\x03s.c\x07example\x00\x00\x01\x00\x01"
    seeds["a_wrong_length"] = (header + question + b"\xc0\x0c"
                               + b"\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x05\xc0\x00\x02\x01\x07")
    many = bytearray(reply("svc.example.", "A", [("svc.example.", 60, "A", f"192.0.2.{i}")
                                                 for i in range(1, 50)]))
    seeds["answers_49"] = bytes(many)  # one more than DNS_MAX_ANSWERS
    counts = bytearray(good)
    counts[6:12] = struct.pack("!HHH", 1, 1024, 1024)  # beyond DNS_MAX_RECORDS
    seeds["counts_over_2048"] = bytes(counts)
    # presentation names (the harness also reads its input as one)
    seeds["name_mixed_case"] = b"www.Example.COM."
    seeds["name_empty_label"] = b"a..b"
    seeds["name_label_64"] = b"x" * 64 + b".example"
    seeds["name_253"] = b".".join([b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61])
    seeds["name_254"] = seeds["name_253"] + b"e"
    seeds["header_only"] = header[:12]
    seeds["short"] = b"\x12\x34\x81"
    for name, data in seeds.items():
        (OUT / name).write_bytes(data)


if __name__ == "__main__":
    main()
