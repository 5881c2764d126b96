#!/usr/bin/env python3
"""upmd-testpmd as a user runs it: its embedded default, virtual ports in
each forwarding mode, bad options, and a stop by signal. Every run's JSON
summary is checked so that each packet is accounted for. Usage:
testpmd_check.py PATH-TO-upmd-testpmd. Prints a CUnit-style summary."""
import json
import signal
import subprocess
import sys
import time

exe = sys.argv[1]
passed = failed = 0
MEM = ["-l", "0-1", "--no-huge", "-m", "128"]
NULLS = ["--vdev", "net_null0", "--vdev", "net_null1"]
RINGS = ["--vdev", "net_ring0,peer=net_ring1", "--vdev", "net_ring1,peer=net_ring0"]


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  Test: {name} ...passed")
    else:
        failed += 1
        print(f"  Test: {name} ...FAILED {detail}")


def run(args, timeout=60):
    p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)
    summary = None
    for line in p.stdout.splitlines():
        if line.startswith("{"):
            summary = json.loads(line)
    return p, summary


def ports(s):
    return {p["port"]: p for p in s["ports"]}


# The README's main job: no device arguments, the embedded default.
p, s = run(["--", "--run-time=1", "--json"])
check("embedded default exits 0", p.returncode == 0, p.stderr[-500:])
check("embedded default prints the rate", "Mpps (TX)" in p.stdout and "embedded default" in p.stdout, p.stdout[-500:])
if s:
    pp = ports(s)
    ok = s["nb_ports"] == 2 and s["total"]["tx_packets"] > 1000
    # io over a cross-connected pair: what a port sent is what its peer
    # received (less what was dropped) plus what --tx-first put on it;
    # what it sent and the peer has not received is still in the device
    # (at most the 32 packets of one stream's burst a side).
    for i in (0, 1):
        peer = pp[i ^ 1]
        ok &= pp[i]["tx_packets"] == peer["rx_packets"] - peer["fwd_dropped"] + pp[i]["tx_first_packets"]
        in_flight = pp[i]["tx_packets"] - peer["rx_packets"]
        ok &= 0 <= in_flight <= 32
        ok &= pp[i]["tx_first_packets"] == 32
        ok &= pp[i]["name"] in ("0000:00:04.0", "0000:00:05.0")
    check("embedded default: every packet accounted for", ok, json.dumps(s))
else:
    check("embedded default: JSON summary", False, p.stdout[-500:])

# Each forwarding mode over two net_null ports.
for mode in ("io", "mac", "macswap"):
    p, s = run(MEM + NULLS + ["--", f"--forward-mode={mode}", "--run-time=0.5", "--json", "--burst=64"])
    ok = p.returncode == 0 and s is not None and s["forward_mode"] == mode and s["burst"] == 64
    if ok:
        pp = ports(s)
        for i in (0, 1):
            # What port i received went out on its peer, or was dropped.
            ok &= pp[i]["rx_packets"] == pp[i ^ 1]["tx_packets"] + pp[i]["fwd_dropped"]
            ok &= pp[i]["rx_packets"] > 0
            ok &= pp[i]["tx_bytes"] == pp[i]["tx_packets"] * 64
    check(f"{mode} on net_null: rx = tx + drops on every port", ok, (p.stderr + json.dumps(s))[-800:])

p, s = run(MEM + NULLS + ["--", "--forward-mode=rxonly", "--run-time=0.3", "--json"])
ok = p.returncode == 0 and s is not None
if ok:
    ok = all(x["rx_packets"] > 0 and x["tx_packets"] == 0 for x in s["ports"])
check("rxonly: receives, sends nothing", ok, json.dumps(s))

p, s = run(MEM + NULLS + ["--", "--forward-mode=txonly", "--txpkts=64,64", "--run-time=0.3", "--json"])
ok = p.returncode == 0 and s is not None
if ok:
    ok = all(x["tx_packets"] > 0 and x["rx_packets"] == 0 and x["tx_bytes"] == 128 * x["tx_packets"]
             for x in s["ports"])
check("txonly with two-segment packets: 128-byte frames sent", ok, json.dumps(s))

p, s = run(MEM + RINGS + ["--", "--forward-mode=flowgen", "--run-time=0.3", "--json", "--flowgen-flows=16"])
ok = p.returncode == 0 and s is not None
if ok:
    pp = ports(s)
    ok = all(pp[i]["tx_packets"] > 0 and pp[i]["rx_packets"] > 0 for i in (0, 1))
check("flowgen over a ring pair: sends and takes back", ok, json.dumps(s))

# Two queues a port: four streams on the forwarding lcore.
p, s = run(MEM + NULLS + ["--", "--rxq=2", "--txq=2", "--run-time=0.3", "--json"])
ok = p.returncode == 0 and s is not None and "4 stream(s)" in p.stdout
if ok:
    pp = ports(s)
    ok = all(pp[i]["rx_packets"] == pp[i ^ 1]["tx_packets"] + pp[i]["fwd_dropped"] for i in (0, 1))
check("two queues a port: four streams, every packet accounted for", ok, (p.stderr + p.stdout)[-800:])

# dmacopy: every packet copied by the software DMA engine into a new mbuf.
# (A model edu device gives the process its IOAS, so mbufs have IOVAs.)
DMA = ["--model", "edu@0000:00:06.0", "-a", "0000:00:06.0", "--vdev", "dma_sw0"]
p, s = run(MEM + NULLS + DMA + ["--", "--forward-mode=dmacopy", "--dma-dev=dma_sw0", "--run-time=1", "--json"])
copied = None
for line in p.stdout.splitlines():
    if line.startswith("dmacopy:") and "copied by the DMA engine" in line:
        copied = int(line.split()[1])
        failed_copies = int(line.split(",")[1].split()[0])
ok = p.returncode == 0 and s is not None and copied is not None
if ok:
    ok = copied > 0 and failed_copies == 0 and copied == s["total"]["tx_packets"]
check("dmacopy on net_null through dma_sw: every packet sent was copied by the engine", ok,
      (p.stderr + p.stdout)[-800:])
p, _ = run(MEM + NULLS + ["--", "--forward-mode=dmacopy", "--run-time=1"])
check("dmacopy without a DMA device is refused with exit 2", p.returncode == 2 and "needs a DMA device" in p.stderr,
      f"rc={p.returncode} {p.stderr[-400:]}")

# Periodic statistics.
p, _ = run(MEM + NULLS + ["--", "--stats-period=1", "--run-time=2.2"])
check("--stats-period prints while running", p.returncode == 0 and p.stdout.count("statistics after") == 2,
      p.stdout[-800:])

# Mistakes: exit 2, and say what was wrong.
for args, says in ((["--", "--forward-mode=bogus"], "unknown --forward-mode 'bogus'"),
                   (["--", "--burst=0"], "--burst '0'"),
                   (["--", "--txpkts=20"], "42 bytes at least"),
                   (["--", "--eth-peer=0,zz:00"], "--eth-peer '0,zz:00'"),
                   (["--", "--nb-cores=9"], "--nb-cores=9 but the EAL has"),
                   (["--bogus-eal"], "unknown option"),
                   (MEM + ["--vdev", "net_nope0", "--"], "no driver for 'net_nope0'")):
    p, _ = run(args)
    code = 1 if any("net_nope0" in a for a in args) else 2
    check(f"'{' '.join(args)}' is refused with exit {code}", p.returncode == code and says in p.stderr,
          f"rc={p.returncode} {p.stderr[-400:]}")

p, _ = run(["--", "--help"])
check("--help exits 0 with the options", p.returncode == 0 and "--forward-mode" in p.stdout)

# SIGINT and SIGTERM stop it cleanly, with the final statistics.
for sig in (signal.SIGINT, signal.SIGTERM):
    proc = subprocess.Popen([exe] + MEM + RINGS + ["--", "--tx-first", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    summary = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    check(f"signal {int(sig)} stops it: exit 0, statistics printed",
          proc.returncode == 0 and f"signal {int(sig)}: stopping" in out and summary and
          summary[0]["total"]["tx_packets"] > 0, f"rc={proc.returncode} {err[-400:]} {out[-400:]}")

print(f"Run Summary:    Type  Total    Ran Passed Failed Inactive")
print(f"               tests {passed + failed:6d} {passed + failed:6d} {passed:6d} {failed:6d}        0")
sys.exit(1 if failed else 0)
