#!/usr/bin/env python3
"""upmd-dma-perf as a user runs it: the embedded default (the software
engine) verifying every copy, JSON, sizes and batches, two lcores, and
mistakes. Usage: dma_perf_check.py PATH-TO-upmd-dma-perf."""
import json
import subprocess
import sys

exe = sys.argv[1]
passed = failed = 0
DEV = ["--no-huge", "-m", "256", "--model", "virtio-net@0000:00:04.0", "-a", "0000:00:04.0", "--vdev", "dma_sw0"]


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  Test: {name} ...passed")
    else:
        failed += 1
        print(f"  Test: {name} ...FAILED {detail}")


def run(args, timeout=60):
    return subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)


def verified(out):
    for line in out.splitlines():
        if line.startswith("verify:"):
            w = line.split()
            return int(w[1]), int(w[-2])
    return None, None


p = run(["--", "-t", "0.5"])
n, bad = verified(p.stdout)
check("embedded default (model DSA through the DSA PMD) with --verify: exit 0, copies compared, none wrong",
      p.returncode == 0 and "model DSA device" in p.stdout and "0000:00:04.0-wq0" in p.stdout and n and n > 100
      and bad == 0, f"rc={p.returncode} {p.stdout[-600:]} {p.stderr[-400:]}")

p = run(["--", "-t", "0.5", "--json", "--verify", "-s", "1024", "-b", "16"])
try:
    j = json.loads([l for l in p.stdout.splitlines() if l.startswith("{")][-1])
    ok = (p.returncode == 0 and j["size"] == 1024 and j["batch"] == 16 and j["total"]["ops"] > 0 and
          j["total"]["errors"] == 0 and j["total"]["mismatches"] == 0 and
          j["channels"][0]["device"] == "0000:00:04.0-wq0" and
          j["channels"][0]["lat_max_us"] >= j["channels"][0]["lat_p50_us"])
except (ValueError, IndexError, KeyError) as e:
    ok = False
check("--json: one object, sizes as asked, no errors or mismatches", ok, p.stdout[-600:])

for size in ("64", "4k", "1m"):
    p = run(DEV + ["--", "-s", size, "-t", "0.3", "--verify", "--dev", "dma_sw0"])
    n, bad = verified(p.stdout)
    check(f"-s {size} --verify", p.returncode == 0 and n and bad == 0, f"rc={p.returncode} {p.stderr[-300:]}")

p = run(["-l", "0-1"] + DEV + ["--vdev", "dma_sw1", "--", "-t", "0.3", "--verify"])
check("two lcores on two engines: a row each, verified",
      p.returncode == 0 and "dma_sw0" in p.stdout and "dma_sw1" in p.stdout and verified(p.stdout)[1] == 0,
      f"rc={p.returncode} {p.stdout[-600:]} {p.stderr[-300:]}")

for args, says in ((["--", "-s", "0"], "-s/--size '0'"),
                   (["--", "-r", "1000"], "power of two"),
                   (["--", "-b", "64", "-r", "64"], "does not fit a ring"),
                   (["--", "-t", "-1"], "-t/--time '-1'"),
                   (["--", "--bogus"], "unknown option"),
                   (["--", "--dev", "nope0"], "no DMA device that copies called nope0")):
    p = run(args)
    check(f"'{' '.join(args)}' is refused with exit 2 and says so", p.returncode == 2 and says in p.stderr,
          f"rc={p.returncode} {p.stderr[-300:]}")

p = run(["--", "--help"])
check("--help exits 0", p.returncode == 0 and "--verify" in p.stdout)

print("Run Summary:    Type  Total    Ran Passed Failed Inactive")
print(f"               tests {passed + failed:6d} {passed + failed:6d} {passed:6d} {failed:6d}        0")
sys.exit(1 if failed else 0)
