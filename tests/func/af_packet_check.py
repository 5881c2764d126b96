#!/usr/bin/env python3
"""net_af_packet against the kernel's own network stack: a veth pair with
one end in a network namespace this test makes. Frames injected from the
namespace with a raw socket are counted by upmd-testpmd rxonly; frames
upmd-testpmd txonly sends show up in the kernel's counters of the other
end. Bad arguments are refused with a message. Needs root (CAP_NET_ADMIN,
CAP_NET_RAW). Usage: af_packet_check.py PATH-TO-upmd-testpmd."""
import json
import os
import subprocess
import sys
import time

exe = sys.argv[1]
passed = failed = 0
tag = f"{os.getpid() % 100000}"
ns, a, b = f"upmdns{tag}", f"upa{tag}", f"upb{tag}"
MEM = ["-l", "0-1", "--no-huge", "-m", "128"]
N = 1000


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  Test: {name} ...passed")
    else:
        failed += 1
        print(f"  Test: {name} ...FAILED {detail}")


def sh(*args, ns_=None):
    cmd = (["ip", "netns", "exec", ns_] if ns_ else []) + list(args)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def counter(ifname, what, ns_=None):
    return int(sh("cat", f"/sys/class/net/{ifname}/statistics/{what}", ns_=ns_))


def summary(out):
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return None


INJECT = r"""
import socket, struct, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i in range(int(sys.argv[2])):
    # to the broadcast address, from a local one, a private ethertype, a sequence number
    s.send(b"\xff" * 6 + b"\x02\x00\x00\x00\xee\x01" + b"\x88\xb5" + struct.pack("!I", i) + bytes(46))
"""

try:
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
    sh("ip", "link", "set", b, "netns", ns)
    # No IPv6 on either end, so the kernel sends nothing of its own.
    sh("sysctl", "-qw", f"net.ipv6.conf.{a}.disable_ipv6=1")
    sh("sysctl", "-qw", f"net.ipv6.conf.{b}.disable_ipv6=1", ns_=ns)
    sh("ip", "link", "set", a, "up")
    sh("ip", "link", "set", b, "up", ns_=ns)
except (subprocess.CalledProcessError, FileNotFoundError) as e:
    print(f"cannot make the network namespace and veth pair: {e}; this test needs root and iproute2")
    print("Run Summary:    Type  Total    Ran Passed Failed Inactive")
    print("               tests      1      1      0      1        0")
    sys.exit(1)

try:
    # Rings of 2048 frames: the 1000 injected fit even if testpmd, under
    # a sanitizer on a busy machine, polls late.
    vdev = ["--vdev", f"net_af_packet0,iface={a},frames=2048"]
    # RX: the kernel side sends N frames while testpmd counts them.
    p = subprocess.Popen([exe] + MEM + vdev + ["--", "--forward-mode=rxonly", "--run-time=4", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Inject once it forwards (its socket is bound by then).
    first = ""
    while "forwarding:" not in first and p.poll() is None:
        first = p.stdout.readline()
    time.sleep(0.2)
    inj = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", INJECT, b, str(N)],
                         capture_output=True, text=True)
    out, err = p.communicate(timeout=60)
    s = summary(out)
    check("kernel -> upmd: frames injected from the namespace", inj.returncode == 0, inj.stderr[-300:])
    got = s["ports"][0]["rx_packets"] if s else -1
    missed = s["ports"][0]["rx_missed"] if s else -1
    check(f"kernel -> upmd: rxonly counted all {N} frames, none missed", p.returncode == 0 and got == N and missed == 0,
          f"rc={p.returncode} rx={got} missed={missed} {err[-400:]}")

    # TX: testpmd sends; the other end's kernel counters see every frame.
    # A frame veth could not queue at the peer is counted as dropped, on
    # the peer's RX or the sender's TX depending on the kernel: all three
    # together are every frame the kernel took from us.
    def taken():
        return counter(b, "rx_packets", ns) + counter(b, "rx_dropped", ns) + counter(a, "tx_dropped")
    before = taken()
    p = subprocess.run([exe] + MEM + vdev + ["--", "--forward-mode=txonly", "--run-time=1", "--json"],
                       capture_output=True, text=True, timeout=60)
    s = summary(p.stdout)
    time.sleep(0.5)
    seen = taken() - before
    sent = s["ports"][0]["tx_packets"] if s else -1
    check("upmd -> kernel: txonly's frames all reach the other end of the veth",
          p.returncode == 0 and sent > 0 and seen == sent, f"rc={p.returncode} sent={sent} seen={seen} {p.stderr[-400:]}")

    # Mistakes say what was wrong.
    for args, says in ((["--vdev", "net_af_packet0"], "give the interface: --vdev net_af_packet0,iface=eth0"),
                       (["--vdev", "net_af_packet0,iface=nosuch0"], "no network interface 'nosuch0'"),
                       (["--vdev", "net_af_packet0,iface=lo,frames=17"], "frames=17: give an even number")):
        p = subprocess.run([exe] + MEM + args + ["--", "--run-time=0.1"], capture_output=True, text=True, timeout=60)
        check(f"'{args[1]}' refused: {says}", p.returncode == 1 and says in p.stderr, f"rc={p.returncode} {p.stderr[-300:]}")
finally:
    subprocess.run(["ip", "link", "del", a], capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)

print("Run Summary:    Type  Total    Ran Passed Failed Inactive")
print(f"               tests {passed + failed:6d} {passed + failed:6d} {passed:6d} {failed:6d}        0")
sys.exit(1 if failed else 0)
