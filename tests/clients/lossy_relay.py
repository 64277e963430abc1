#!/usr/bin/env python3
"""A lossy UDP relay in front of the gateway's media port, to prove NACK repair on the wire.

The gateway advertises the relay's address (`[webrtc] public_ips`), so every client's media goes
client ⇄ relay ⇄ gateway. The relay drops every Nth RTP packet of each SSRC (after a warm-up of
WARMUP packets; never RTCP, STUN or DTLS) in each direction and watches for the same (SSRC, sequence number) to pass again later: a retransmission.
SRTP leaves the RTP header in clear, so this needs no keys.

  lossy_relay.py --listen 127.0.0.2:PORT --upstream 127.0.0.1:PORT --drop-every 25 --seconds 20

Prints ONE JSON line when it stops (after --seconds or on SIGTERM):
  {"up": {"<ssrc>": {"pt", "rtp", "dropped", "retransmitted", "missing"}, ...}, "down": {...}}
"up" = client → gateway (a publisher's media), "down" = gateway → client (a player's media).
"missing" counts sequence numbers never seen between the first and the 50th-from-last packet of
that SSRC: losses nobody repaired (ours that were not retransmitted, or upstream ones the gateway
could not recover, which then never reach the player).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal


def rtp_header(data: bytes) -> tuple[int, int, int] | None:
    """(ssrc, seq, payload type) of an RTP packet; None for RTCP, STUN, DTLS or anything else."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP packet types 192-223 (SR, RR, SDES, BYE, APP, RTPFB, PSFB)
        return None
    seq = int.from_bytes(data[2:4], "big")
    ssrc = int.from_bytes(data[8:12], "big")
    return ssrc, seq, data[1] & 0x7F


class Stream:
    """What one direction saw of one SSRC."""

    def __init__(self, pt: int) -> None:
        self.pt = pt
        self.rtp = 0
        self.seen: list[int] = []  # extended sequence numbers, in arrival order
        self.last_ext: int | None = None
        self.dropped: set[int] = set()
        self.retransmitted: set[int] = set()

    def extend(self, seq: int) -> int:
        if self.last_ext is None:
            self.last_ext = seq
            return seq
        delta = (seq - (self.last_ext & 0xFFFF) + 0x8000) % 0x10000 - 0x8000
        ext = self.last_ext + delta
        self.last_ext = max(self.last_ext, ext)
        return ext

    def report(self) -> dict:
        seen = set(self.seen)
        ordered = sorted(seen)
        missing: list[int] = []
        if len(ordered) > 60:
            first, last = ordered[0], ordered[-50]
            missing = [s for s in range(first, last + 1) if s not in seen]
        return {"pt": self.pt, "rtp": self.rtp, "dropped": len(self.dropped),
                "retransmitted": len(self.retransmitted), "missing": len(missing),
                "dropped_seqs": sorted(self.dropped), "missing_seqs": missing}


WARMUP = 30  # packets of a stream passed untouched: a receiver cannot NACK before its first packet


class Direction:
    def __init__(self, drop_every: int) -> None:
        self.drop_every = drop_every
        self.streams: dict[int, Stream] = {}

    def passes(self, data: bytes) -> bool:
        header = rtp_header(data)
        if header is None:
            return True
        ssrc, seq, pt = header
        stream = self.streams.setdefault(ssrc, Stream(pt))
        ext = stream.extend(seq)
        if ext in stream.dropped:
            stream.retransmitted.add(ext)  # never drop a repair
            stream.seen.append(ext)
            return True
        stream.rtp += 1
        if self.drop_every and stream.rtp > WARMUP and stream.rtp % self.drop_every == 0:
            stream.dropped.add(ext)
            return False
        stream.seen.append(ext)
        return True

    def report(self) -> dict:
        return {str(ssrc): s.report() for ssrc, s in self.streams.items()}


class Upstream(asyncio.DatagramProtocol):
    """One socket toward the gateway per client address."""

    def __init__(self, relay: "Relay", client: tuple) -> None:
        self.relay, self.client, self.transport = relay, client, None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if self.relay.down.passes(data) and self.relay.transport is not None:
            self.relay.transport.sendto(data, self.client)


class Relay(asyncio.DatagramProtocol):
    def __init__(self, upstream: tuple, drop_every: int) -> None:
        self.upstream = upstream
        self.up = Direction(drop_every)
        self.down = Direction(drop_every)
        self.links: dict[tuple, Upstream] = {}
        self.pending: dict[tuple, list[bytes]] = {}
        self.transport = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.up.passes(data):
            return
        link = self.links.get(addr)
        if link is not None and link.transport is not None:
            link.transport.sendto(data, self.upstream)
            return
        self.pending.setdefault(addr, []).append(data)
        if link is None:
            link = Upstream(self, addr)
            self.links[addr] = link
            asyncio.get_running_loop().create_task(self.open_link(addr, link))

    async def open_link(self, addr: tuple, link: Upstream) -> None:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: link, local_addr=("127.0.0.1", 0))
        for data in self.pending.pop(addr, []):
            link.transport.sendto(data, self.upstream)


def host_port(text: str) -> tuple[str, int]:
    host, port = text.rsplit(":", 1)
    return host, int(port)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--drop-every", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    loop = asyncio.get_running_loop()
    relay = Relay(host_port(args.upstream), args.drop_every)
    transport, _ = await loop.create_datagram_endpoint(
        lambda: relay, local_addr=host_port(args.listen))
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"listening": args.listen}), flush=True)
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.seconds)
    except asyncio.TimeoutError:
        pass
    transport.close()
    for link in relay.links.values():
        if link.transport is not None:
            link.transport.close()
    print(json.dumps({"up": relay.up.report(), "down": relay.down.report()}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
