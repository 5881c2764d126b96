#!/usr/bin/env python3
"""upmd-nvme-perf as a user runs it, on the model NVMe controller: its
embedded default, the JSON summary, queue depths, I/O sizes, sector sizes,
two lcores, namespaces, verify catching corruption, mistakes, and a stop
by signal. Usage: nvme_perf_check.py PATH-TO-upmd-nvme-perf. Prints a
CUnit-style summary; exit 1 if any check failed."""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

exe = sys.argv[1]
passed = failed = skipped = 0
BDF = "0000:00:04.0"


def model(args=""):
    spec = f"nvme@{BDF}" + (":" + args if args else "")
    return ["--no-huge", "-m", "256", "--model", spec, "-a", BDF]


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"  Test: {name} ...passed")
    else:
        failed += 1
        print(f"  Test: {name} ...FAILED {detail}")


def skip(name, why):
    global skipped
    skipped += 1
    print(f"  Test: {name} ...skipped ({why})")


def run(args, timeout=60):
    p = subprocess.run([exe] + args, capture_output=True, text=True, timeout=timeout)
    return p


def run_json(args, timeout=60):
    """--json: stdout must be exactly one JSON object."""
    p = run(args + ["--json"], timeout)
    try:
        s = json.loads(p.stdout)
    except ValueError:
        s = None
    return p, s


def tail(p, n=600):
    return f"rc={p.returncode} stdout={p.stdout[-n:]!r} stderr={p.stderr[-n:]!r}"


def clean(s, p):
    """A run that moved data, without errors or mismatches."""
    return (p.returncode == 0 and s is not None and s["errors"] == 0 and s["mismatches"] == 0
            and s["total"]["ios"] > 0 and s["total"]["iops"] > 0)


def total_row(text):
    for line in text.splitlines():
        if line.startswith("Total"):
            return [float(x) for x in line.split(":", 1)[1].split()]
    return None


FIELDS = ("ios", "reads", "writes", "bytes", "elapsed_s", "iops", "mib_s", "lat_avg_us", "lat_min_us",
          "lat_max_us", "lat_p50_us", "lat_p99_us", "lat_p999_us", "errors", "verify_reads", "verify_blocks",
          "mismatches")

# ---- the embedded default: no device given ----
p = run([], timeout=120)
row = total_row(p.stdout)
check("embedded default exits 0", p.returncode == 0, tail(p))
check("embedded default says it runs on the model NVMe controller", "model NVMe controller" in p.stdout, tail(p))
check("embedded default prints the table with IOPS > 0 and 0 errors",
      "Device Information" in p.stdout and "Latency(us)" in p.stdout and row is not None and len(row) == 9
      and row[0] > 0 and row[8] == 0 and "errors: 0" in p.stdout, tail(p))
verify_line = [l for l in p.stdout.splitlines() if l.startswith("verify:") and "reads compared" in l]
check("embedded default verifies: reads compared, 0 mismatches",
      len(verify_line) == 1 and " 0 mismatches" in verify_line[0] and not verify_line[0].startswith("verify: 0 reads"),
      tail(p))
check("embedded default is randrw -M 70 for 2 s", "-w randrw -M 70 --verify -t 2 -q 32 -o 4096" in p.stdout, tail(p))

# ---- --json: one object, the fields, sums that add up ----
p, s = run_json(["--", "-t", "0.5"])
ok = clean(s, p)
if ok:
    t = s["total"]
    r = s["rows"]
    ok &= all(k in t for k in FIELDS) and all(all(k in x for k in FIELDS + ("device", "nsid", "lcore", "qpair"))
                                               for x in r)
    ok &= s["workload"] == "randrw" and s["rwmixread"] == 70 and s["verify"] is True and s["io_depth"] == 32
    ok &= t["ios"] == sum(x["ios"] for x in r) and t["ios"] == t["reads"] + t["writes"]
    ok &= t["bytes"] == t["ios"] * 4096
    # 70 % reads, give or take what chance does over thousands of I/Os
    ok &= 0.6 < t["reads"] / t["ios"] < 0.8
    ok &= t["lat_min_us"] <= t["lat_p50_us"] <= t["lat_p99_us"] <= t["lat_p999_us"] <= t["lat_max_us"]
    ok &= t["lat_min_us"] <= t["lat_avg_us"] <= t["lat_max_us"]
    ok &= t["verify_reads"] >= t["reads"] and t["verify_blocks"] == t["verify_reads"] * 8
    ok &= s["controllers"][0]["device"] == BDF and s["controllers"][0]["namespaces"][0]["sector_size"] == 512
    ok &= "Device Information" in p.stderr     # the table went to stderr
check("--json: one object on stdout with per-row and total figures that add up", ok,
      tail(p) if s is None else json.dumps(s)[:800])
max_xfer = s["controllers"][0]["max_xfer_size"] if s else 524288

# ---- queue depth: Little's law says IOPS x latency = requests outstanding ----
for qd in (1, 32):
    p, s = run_json(model() + ["--", "-q", str(qd), "-w", "randrw", "--verify", "--verify-size", "8m", "-t", "0.5"])
    ok = clean(s, p) and s["io_depth"] == qd and s["total"]["verify_reads"] > 0
    if ok:
        inflight = s["total"]["iops"] * s["total"]["lat_avg_us"] / 1e6
        ok &= 0.5 * qd <= inflight <= 1.1 * qd
    check(f"-q {qd} --verify: clean, {qd} outstanding on average (IOPS x latency)", ok,
          tail(p) if s is None else json.dumps(s["total"]))

# ---- I/O sizes ----
for size in (512, 4096, 65536):
    p, s = run_json(model() + ["--", "-o", str(size), "-w", "randrw", "--verify", "--verify-size", "8m", "-t", "0.4"])
    ok = clean(s, p) and s["io_size"] == size and s["total"]["bytes"] == s["total"]["ios"] * size
    ok = ok and s["total"]["verify_blocks"] == s["total"]["verify_reads"] * (size // 512)
    check(f"-o {size} --verify: clean, every I/O {size} bytes", ok, tail(p) if s is None else json.dumps(s["total"]))
p = run(model() + ["--", "-o", str(2 * max_xfer), "-t", "0.2"])
check(f"-o {2 * max_xfer} (over max transfer {max_xfer}) refused with exit 2",
      p.returncode == 2 and f"max transfer {max_xfer} bytes" in p.stderr and f"give at most {max_xfer}" in p.stderr,
      tail(p))
p = run(model("mdts=1") + ["--", "-o", "16384", "-t", "0.2"])
check("mdts=1 (8 KiB): -o 16384 refused, the limit named", p.returncode == 2 and "max transfer 8192" in p.stderr,
      tail(p))

# ---- 4096-byte sectors ----
p = run(model("lba=4096") + ["--", "-o", "512", "-t", "0.2"])
check("lba=4096: -o 512 refused (not a multiple of the sector size)",
      p.returncode == 2 and "not a multiple of the sector size" in p.stderr and "(4096 bytes)" in p.stderr, tail(p))
p, s = run_json(model("lba=4096") + ["--", "-o", "8192", "-w", "randrw", "--verify", "--verify-size", "8m", "-t", "0.4"])
ok = clean(s, p) and s["controllers"][0]["namespaces"][0]["sector_size"] == 4096
ok = ok and s["total"]["verify_blocks"] == 2 * s["total"]["verify_reads"]
check("lba=4096: -o 8192 --verify accepted and clean (2 blocks an I/O)", ok,
      tail(p) if s is None else json.dumps(s["total"]))

# ---- sequential and write-only workloads ----
for wl in ("read", "write", "randwrite", "rw"):
    p, s = run_json(model() + ["--", "-w", wl, "--verify", "--verify-size", "4m", "-t", "0.3"])
    ok = clean(s, p) and s["workload"] == wl
    if ok:
        t = s["total"]
        ok &= (t["reads"] == t["ios"]) if wl == "read" else (t["writes"] == t["ios"]) if "write" in wl else \
            (t["reads"] > 0 and t["writes"] > 0)
        # reads are checked only where the region was written first
        ok &= (s["prefill_writes"] > 0) == (wl in ("read", "rw"))
    check(f"-w {wl} --verify: clean, the right mix of reads and writes", ok,
          tail(p) if s is None else json.dumps(s["total"]))

# ---- two lcores, one queue pair each ----
if len(os.sched_getaffinity(0)) >= 2 and {0, 1} <= os.sched_getaffinity(0):
    p, s = run_json(["-l", "0-1"] + model() + ["--", "-w", "randrw", "--verify", "--verify-size", "8m", "-t", "0.5"])
    ok = clean(s, p) and len(s["rows"]) == 2 and s["lcores"] == 2
    if ok:
        ok &= {x["lcore"] for x in s["rows"]} == {0, 1} and len({x["qpair"] for x in s["rows"]}) == 2
        ok &= all(x["ios"] > 0 for x in s["rows"])
    check("-l 0-1: two lcores, each with its own queue pair, both moving data, clean", ok,
          tail(p) if s is None else json.dumps(s["rows"]))
else:
    skip("-l 0-1: two lcores", "CPUs 0 and 1 are not both available")

p = run(model("mqes=63") + ["--", "-q", "64", "-t", "0.2"])
check("-q 64 on queues of 64 entries refused with exit 2, the limit named",
      p.returncode == 2 and "hold at most 64 entries" in p.stderr and "give -q 63 or less" in p.stderr, tail(p))
if {0, 1} <= os.sched_getaffinity(0):
    p = run(["-l", "0-1"] + model("queues=1") + ["--", "-t", "0.2"])
    check("-l 0-1 on a controller granting one queue pair refused with exit 2",
          p.returncode == 2 and "need 2 queue pairs" in p.stderr and "granted 1" in p.stderr, tail(p))

# ---- namespaces ----
p, s = run_json(model("nn=2,ns_mb=16") + ["--", "-t", "0.3", "--verify", "-w", "randrw"])
check("nn=2: every active namespace by default", clean(s, p) and sorted(x["nsid"] for x in s["rows"]) == [1, 2],
      tail(p))
p, s = run_json(model("nn=2,ns_mb=16") + ["--", "-n", "2", "-t", "0.3"])
check("-n 2: only namespace 2", clean(s, p) and [x["nsid"] for x in s["rows"]] == [2], tail(p))
p = run(model() + ["--", "-n", "5", "-t", "0.3"])
check("-n 5 (no such namespace) refused with exit 2, the active ones named",
      p.returncode == 2 and "no attached controller has an active namespace 5" in p.stderr and " has 1)" in p.stderr,
      tail(p))

# ---- SGLs ----
p, s = run_json(model("sgl=on") + ["--", "--sgl", "-o", "65536", "-w", "randrw", "--verify", "--verify-size", "8m",
                                   "-t", "0.3"])
check("--sgl on a controller with SGLs: used, 64 KiB I/Os clean", clean(s, p) and s["controllers"][0]["sgl"] is True,
      tail(p))
p, s = run_json(model("sgl=off") + ["--", "--sgl", "-t", "0.2"])
check("--sgl on a controller without: PRPs, and it says so",
      clean(s, p) and s["controllers"][0]["sgl"] is False and "offers no SGLs" in p.stderr, tail(p))

# ---- --warmup: the measured window starts after it ----
p, s = run_json(model() + ["--", "--warmup", "0.3", "-t", "0.3"])
check("--warmup 0.3 -t 0.3: only the 0.3 s after the warm-up measured",
      clean(s, p) and 0.25 < s["total"]["elapsed_s"] < 0.45, tail(p) if s is None else json.dumps(s["total"]))

# ---- verify catches corruption: a file-backed namespace changed behind the device's back ----
with tempfile.NamedTemporaryFile(prefix="nvme-perf-ns", suffix=".img") as f:
    f.truncate(16 << 20)
    f.flush()
    proc = subprocess.Popen([exe] + model(f"ns_mb=16,file={f.name}") +
                            ["--", "-w", "randread", "--verify", "--verify-size", "1m", "-t", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = ""
    deadline = time.time() + 30
    while "Launching workers" not in line and time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
    time.sleep(0.6)     # the 1 MiB region is written by then; reads only from here on
    fd = os.open(f.name, os.O_WRONLY)
    os.pwrite(fd, b"\0" * (1 << 20), 0)
    os.close(fd)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    vline = [l for l in out.splitlines() if l.startswith("verify:")]
    mism = [l for l in err.splitlines() if l.startswith("verify: first mismatch")]
    ok = proc.returncode == 1 and len(mism) == 1 and "got 0x00" in mism[0] and vline
    ok = ok and " 0 mismatches" not in vline[-1] and "VERIFY MISMATCHES" in out
    check("verify catches data changed behind the device: first mismatch printed once, counted, exit 1", bool(ok),
          f"rc={proc.returncode} {out[-500:]!r} {err[-500:]!r}")

# ---- mistakes: exit 2, and say what was wrong ----
for args, says in ((["--", "-q", "0"], "-q/--io-depth '0'"),
                   (["--", "-q", "many"], "-q/--io-depth 'many'"),
                   (["--", "-o", "0"], "-o/--io-size '0'"),
                   (["--", "-o", "4x"], "-o/--io-size '4x'"),
                   (["--", "-w", "bogus"], "unknown -w/--workload 'bogus'"),
                   (["--", "-M", "101"], "-M/--rwmixread '101'"),
                   (["--", "-w", "randread", "-M", "30"], "applies to the rw and randrw workloads"),
                   (["--", "-t", "-1"], "-t/--time '-1'"),
                   (["--", "-t", "soon"], "-t/--time 'soon'"),
                   (["--", "--warmup", "x"], "--warmup 'x'"),
                   (["--", "-n", "0"], "-n/--ns '0'"),
                   (["--", "-n", "1,,x"], "-n/--ns '1,,x'"),
                   (["--", "--no-verify", "--verify-size", "1m"], "--verify-size needs --verify"),
                   (["--", "--bogus"], "unknown option '--bogus'"),
                   (["--", "-q"], "option '-q' needs a value"),
                   (["--", "stray"], "unexpected argument 'stray'"),
                   (["--bogus-eal"], "unknown option"),
                   (model("lba=1000") + ["--"], "")):
    p = run(args)
    check(f"'{' '.join(args)}' is refused with exit 2" + (f" saying \"{says}\"" if says else ""),
          p.returncode == 2 and says in p.stderr and (not says or "Try '" in p.stderr or "--bogus-eal" in args),
          tail(p, 300))
p = run(["--", "--help"])
check("--help exits 0 and lists the options",
      p.returncode == 0 and all(o in p.stdout for o in ("--io-depth", "--io-size", "--workload", "--rwmixread",
                                                        "--time", "--ns", "--verify", "--json", "--sgl",
                                                        "--warmup")), tail(p))

# ---- SIGINT/SIGTERM: stop issuing, drain, print results, exit 0 ----
for sig in (signal.SIGINT, signal.SIGTERM):
    proc = subprocess.Popen([exe] + model() + ["--", "-t", "30", "-w", "randrw", "--verify", "--verify-size", "8m",
                                               "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    t0 = time.time()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    took = time.time() - t0
    try:
        s = json.loads(out)
    except ValueError:
        s = None
    ok = proc.returncode == 0 and s is not None and s["signal"] == int(sig) and f"signal {int(sig)}: stopping" in err
    ok = ok and s["total"]["ios"] > 0 and s["errors"] == 0 and s["mismatches"] == 0 and "Total" in err
    ok = ok and s["total"]["elapsed_s"] < 29 and took < 20
    check(f"signal {int(sig)} mid-run: drained, results printed, exit 0", ok,
          f"rc={proc.returncode} {err[-500:]!r} {out[-300:]!r}")

print("Run Summary:    Type  Total    Ran Passed Failed Inactive")
print(f"               tests {passed + failed + skipped:6d} {passed + failed:6d} {passed:6d} {failed:6d} {skipped:8d}")
sys.exit(1 if failed else 0)
