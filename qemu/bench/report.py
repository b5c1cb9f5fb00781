#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the guest log of a benchmark boot (qemu/bench/guest.sh) into a report.

    report.py --boot BOOT_LOG_DIR --out DIR [--flavour NAME] [--kdir DIR] [--elapsed S]

Writes DIR/report.md (Markdown tables: absolute figures as median (min-max) over the
repetitions, and Rust/C ratios), DIR/results.json (every sample, the settings and the summary)
and DIR/ratios.png (a bar chart of the ratios). Only the Python standard library is used.
"""

import argparse
import datetime
import json
import os
import re
import statistics
import struct
import sys
import zlib

# The fio devices, in table order: (name in the log, column title).
DEVS = [
    ("iovx0", "iovx0 (Rust blk-mq)"),
    ("ram0", "brd"),
    ("nullb0", "null_blk"),
    ("iovx_dio0", "iovx_dio0 (Rust DIO)"),
]
# The ratios: (label, Rust device, C device, meaning).
FIO_RATIOS = [
    ("iovx/brd", "iovx0", "ram0", "Rust blk-mq RAM disk vs brd"),
    ("iovx/null_blk", "iovx0", "nullb0", "Rust blk-mq RAM disk vs null_blk (memory backed)"),
    ("dio/O_DIRECT", "iovx_dio0", "iovx0",
     "Rust direct-I/O path vs the kernel's O_DIRECT path, same disk"),
]
# Reference ratios between two C devices, shown to read the others by (not Rust / C).
REF_RATIOS = [
    ("ref: null_blk/brd", "nullb0", "ram0",
     "the kernel's blk-mq RAM disk vs its bio-based one, both C: what going through blk-mq"
     " (a request, a tag, a hardware queue) costs, which iovx/brd includes and iovx/null_blk"
     " does not"),
]
WORKLOADS = [
    "randread-4k-qd1", "randwrite-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd32",
    "read-128k", "write-128k", "read-1m", "write-1m",
]
GUP_CMDS = [("a", "PIN_FAST_BENCHMARK"), ("L", "PIN_LONGTERM_BENCHMARK")]


def kv(text):
    """key=value words of a log line."""
    return dict(w.split("=", 1) for w in text.split() if "=" in w)


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def parse_guest_log(path):
    res = {"meta": {}, "devices": {}, "fio": [], "gup": [], "absent": {}, "memcpy": [],
           "errors": [], "info": [], "stamps": [], "runner": [], "begun": False, "ended": False}
    with open(path, errors="replace") as f:
        lines = f.read().splitlines()
    for line in lines:
        if line.startswith("BENCH-BEGIN"):
            res["begun"] = True
        elif line.startswith("BENCH-END"):
            res["ended"] = True
        elif line.startswith("BENCH-META "):
            d = kv(line[len("BENCH-META "):])
            if "dev" in d:
                res["devices"][d.pop("dev")] = d
            else:
                res["meta"].update(d)
        elif line.startswith("BENCH-FIO "):
            head, terse = line[len("BENCH-FIO "):].split(";", 1)
            s = parse_terse(kv(head), terse.split(";"))
            if s:
                res["fio"].append(s)
        elif line.startswith("BENCH-GUP "):
            d = kv(line[len("BENCH-GUP "):])
            pages = int(d["mib"]) * 256
            get_us, put_us = float(d["get_us"]), float(d["put_us"])
            res["gup"].append({
                "rep": int(d["rep"]), "dev": d["dev"], "cmd": d["cmd"], "n": int(d["n"]),
                "pages": pages, "calls": int(d.get("calls", 1)), "get_us": get_us,
                "put_us": put_us, "get_ns_per_page": get_us * 1000.0 / pages,
                "put_ns_per_page": put_us * 1000.0 / pages,
            })
        elif line.startswith("BENCH-ABSENT "):
            d = line[len("BENCH-ABSENT "):].split(None, 1)
            res["absent"][d[0].split("=", 1)[-1]] = d[1] if len(d) > 1 else "absent"
        elif line.startswith("BENCH-MEMCPY "):
            d = kv(line[len("BENCH-MEMCPY "):])
            res["memcpy"].append({k: (v if k in ("method", "pattern") else float(v) if k == "gbps" else int(v))
                                  for k, v in d.items()})
        elif line.startswith("BENCH-ERROR "):
            res["errors"].append(line[len("BENCH-ERROR "):])
        elif line.startswith("BENCH-INFO "):
            res["info"].append(line[len("BENCH-INFO "):])
            m = re.match(r"^BENCH-INFO t=([\d.]+) (?:rtc=(\d+) )?(.*)", line)
            if m:
                res["stamps"].append((float(m.group(1)), m.group(3), int(m.group(2) or 0)))
        elif re.match(r"^(not )?ok \d+ ", line) or line.startswith("IOVX-"):
            res["runner"].append(line)
        m = re.match(r"^# iov-extract guest runner, mode \S+, kernel (\S+)", line)
        if m:
            res["meta"].setdefault("kernel", m.group(1))
    return res


def parse_terse(head, f):
    """One fio terse (v3) line; the read or the write half, whichever the job does."""
    if len(f) < 50 or f[0] != "3":
        return None
    job = f[2]
    m = re.match(r"^(.*)-j(\d+)$", job)
    workload, numjobs = (m.group(1), int(m.group(2))) if m else (job, 1)
    bs_kib = 1024 if "-1m" in workload else int(re.search(r"-(\d+)k", workload).group(1))
    base = 5 if workload.startswith(("read", "randread")) else 46
    kib, runtime_ms = int(f[base]), int(f[base + 3])
    secs = runtime_ms / 1000.0 if runtime_ms else None
    return {
        "rep": int(head["rep"]), "dev": head["dev"], "job": job, "workload": workload,
        "numjobs": numjobs, "bs_kib": bs_kib, "error": int(f[4]),
        "kib": kib, "runtime_ms": runtime_ms,
        "iops": kib / bs_kib / secs if secs else 0.0,
        "mbps": kib * 1024 / secs / 1e6 if secs else 0.0,
        "clat_mean_us": num(f[base + 10]),
        "fio_iops": num(f[base + 2]),
    }


def spread(vals):
    """(median, min, max) or None."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    return statistics.median(vals), min(vals), max(vals)


def fmt_num(v):
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def fmt_spread(s, fmt=fmt_num):
    if s is None:
        return "n/a"
    return f"{fmt(s[0])} ({fmt(s[1])}–{fmt(s[2])})"


def fmt_ratio(r):
    if r is None:
        return "n/a"
    return f"**{r[0]:.2f}** ({r[1]:.2f}–{r[2]:.2f})"


def metric(workload):
    return ("iops", "IOPS") if "-4k-" in workload else ("mbps", "MB/s")


def ratio(rust, c, key, invert=False):
    """The median of the per-repetition ratios, with their range. The two sides of one
    repetition run back to back, so pairing them cancels the slow drifts of an emulated guest's
    speed, which are larger than the differences measured; without pairs, the ratio of the
    medians. invert: the samples are times, so the speed ratio is C / Rust."""
    rs, cs = {s["rep"]: s[key] for s in rust}, {s["rep"]: s[key] for s in c}
    mr, mc = spread(rs.values()), spread(cs.values())
    if not mr or not mc or not mr[0] or not mc[0]:
        return None
    per = []
    for rep in sorted(set(rs) & set(cs)):
        a, b = rs[rep], cs[rep]
        if a and b:
            per.append(b / a if invert else a / b)
    if not per:
        central = mc[0] / mr[0] if invert else mr[0] / mc[0]
        return central, central, central
    return spread(per)


def summarise(res):
    fio = res["fio"]
    rows = []
    for w in WORKLOADS:
        for nj in (1, 2):
            key, unit = metric(w)
            row = {"benchmark": f"{w}-j{nj}", "workload": w, "numjobs": nj, "unit": unit,
                   "metric": key, "abs": {}, "ratios": {}, "errors": 0}
            by_dev = {}
            for d, _ in DEVS:
                ss = [s for s in fio if s["dev"] == d and s["workload"] == w and s["numjobs"] == nj]
                row["errors"] += sum(1 for s in ss if s["error"])
                ss = [s for s in ss if not s["error"]]
                by_dev[d] = ss
                row["abs"][d] = spread([s[key] for s in ss])
            for label, a, b, _ in FIO_RATIOS + REF_RATIOS:
                row["ratios"][label] = ratio(by_dev[a], by_dev[b], key)
            rows.append(row)
    gup_rows = []
    for cmd, cname in GUP_CMDS:
        for n in sorted({g["n"] for g in res["gup"]} or {1, 512}):
            st = [g for g in res["gup"] if g["dev"] == "stock" and g["cmd"] == cmd and g["n"] == n]
            rx = [g for g in res["gup"] if g["dev"] == "iovx_gup" and g["cmd"] == cmd and g["n"] == n]
            row = {"benchmark": f"{cname} n={n}", "cmd": cmd, "n": n, "abs": {}, "ratios": {}}
            for what in ("get", "put"):
                k = f"{what}_ns_per_page"
                row["abs"][f"stock_{what}"] = spread([g[k] for g in st])
                row["abs"][f"iovx_gup_{what}"] = spread([g[k] for g in rx])
                row["ratios"][what] = ratio(rx, st, k, invert=True) if rx else None
            gup_rows.append(row)
    # Per pattern (read: disk buffer -> one block; write: the other way) and method.
    methods = {}
    for m in res["memcpy"]:
        key = (m.get("pattern", "read"), m.get("method", "memcpy"))
        methods.setdefault(key, []).append(m["gbps"])
    methods = {k: spread(v) for k, v in methods.items()}
    # The baseline: the fastest of the kernel's ways to copy ("rep movsq" as copy_page() with
    # REP_GOOD, "rep movsb" as memcpy() with FSRM, the loop of 64-bit moves of memcpy_orig), so
    # that a disk is measured against the best copy the kernel could make, whichever it uses.
    # The C library's memcpy() (vector registers) is left out: kernel code does not copy with
    # them. Without any kernel method in the samples, the fastest of all.
    kernel_methods = ("movq-loop", "movsq", "movsb")
    best = {}
    for (pat, meth), v in methods.items():
        if any((pat, k) in methods for k in kernel_methods) and meth not in kernel_methods:
            continue
        if pat not in best or v[0] > methods[(pat, best[pat])][0]:
            best[pat] = meth
    # And the method of the kernel's memcpy() on this CPU ("rep movsb" with FSRM, else the loop
    # of 64-bit moves), which brd and null_blk copy with.
    flags = res["meta"].get("copy_flags", "")
    memcpy_method = "movsb" if "fsrm" in flags.split(",") else "movq-loop"

    def fractions(method_of):
        frac = {}
        for row in rows:
            pat = {"read-1m": "read", "write-1m": "write"}.get(row["workload"])
            meth = method_of(pat)
            if (pat, meth) in methods:
                base = methods[(pat, meth)][0]
                for d, _ in DEVS:
                    a = row["abs"][d]
                    if a:
                        frac.setdefault(d, {})[row["benchmark"]] = a[0] / (base * 1000.0)
        return frac

    frac = fractions(lambda pat: best.get(pat))
    frac_memcpy = fractions(lambda pat: memcpy_method)
    return {"fio": rows, "gup": gup_rows,
            "memcpy_gbps": {f"{pat}/{meth}": v for (pat, meth), v in methods.items()},
            "memcpy_baseline": {pat: {"method": m, "gbps": methods[(pat, m)]}
                                for pat, m in best.items()},
            "fraction_of_memcpy": frac,
            "memcpy_method": memcpy_method,
            "fraction_of_kernel_memcpy": frac_memcpy}


def phases(stamps):
    """ '; guest: fio 600 s, gup 60 s, ...' from the uptime stamps of the guest script."""
    marks = [(t, what) for t, what, _ in stamps if what in ("begin", "fio", "gup", "memcpy", "end")]
    parts = []
    for (t0, a), (t1, _) in zip(marks, marks[1:]):
        parts.append(f"{'setup' if a == 'begin' else a} {t1 - t0:.0f} s")
    return f" (guest clock: {', '.join(parts)})" if parts else ""


def clock_rates(stamps):
    """Guest clock seconds per RTC (host) second over each stretch between stamps of at least
    20 RTC seconds: 1.0 when the guest's clock keeps up, less when it loses ticks."""
    st = [(t, r) for t, _, r in stamps if r]
    rates, i = [], 0
    while i < len(st) - 1:
        j = i + 1
        while j < len(st) - 1 and st[j][1] - st[i][1] < 20:
            j += 1
        dr = st[j][1] - st[i][1]
        if dr >= 20:
            rates.append((st[j][0] - st[i][0]) / dr)
        i = j
    total = None
    if len(st) >= 2 and st[-1][1] - st[0][1] > 0:
        total = (st[-1][0] - st[0][0]) / (st[-1][1] - st[0][1])
    return {"overall": total, "min": min(rates) if rates else None,
            "max": max(rates) if rates else None}


def markdown(res, summ, meta):
    out = []
    p = out.append
    accel = meta["accel"]
    p(f"# iov-extract benchmark, {meta['date']}")
    p("")
    sh = meta.get("icount_shift")
    if accel == "tcg" and sh is not None:
        p(f"- accelerator: **TCG with -icount shift={sh}** (software emulation in which the"
          f" guest's clock counts instructions, {2 ** sh} ns each: every time the guest measures"
          " is an instruction count, the same from run to run whatever the host does, so the"
          " figures compare the work each path executes; they do not model caches, atomics"
          " or memory latency, which a KVM run measures)")
    else:
        p(f"- accelerator: **{accel.upper()}**"
          + (" (software emulation: the figures are only indicative; ratios measured in the"
             " same boot are more meaningful than absolute values)" if accel != "kvm" else ""))
    p(f"- kernel: {meta.get('kernel', '?')}, flavour **{meta['flavour']}**"
      + (f" ({meta['kdir_name']})" if meta.get("kdir_name") else ""))
    g = res["meta"]
    p(f"- guest: {g.get('cpus', '?')} vCPU(s) ({g.get('cpu', '?').replace('_', ' ')}), "
      f"{int(g.get('mem_kib', 0)) // 1024} MiB, THP {g.get('thp', '?').replace('_', ' ')},"
      f" clocksource {g.get('clocksource', '?')}"
      + (" (a jiffy of resolution: short intervals are coarse)"
         if "jiffies" in g.get("clocksource", "") else ""))
    p(f"- fio {g.get('fio', '?').replace('fio-', '')}: O_DIRECT, {g.get('size_mb', '?')} MiB on"
      f" every device (preconditioned by one full write), runtime {g.get('runtime', '?')} after"
      f" a ramp of {g.get('ramp', '?')}, {g.get('reps', '?')} repetitions; the devices of a"
      " workload run back to back, in an order rotating per workload and repetition; 4 KiB QD1"
      " and sequential jobs use psync, QD32 io_uring; -jN = numjobs")
    if meta.get("only"):
        p(f"- only the measurements matching `{meta['only']}` (`scripts/bench --only`)")
    for d, info in res["devices"].items():
        p(f"- /dev/{d}: " + ", ".join(f"{k} {v.replace('_', ' ')}" for k, v in info.items()))
    p(f"- wall time of scripts/bench (module build, staging, boot, measurements):"
      f" {meta.get('elapsed', '?')} s" + phases(res["stamps"]))
    if meta.get("host"):
        p(f"- host: {meta['host']}")
    cr = meta.get("guest_clock_rate") or {}
    if cr.get("overall") and meta.get("icount_shift") is not None:
        p(f"- guest clock vs host (RTC): {cr['overall']:.2f} guest s per host s (with -icount"
          " the guest's clock follows the instructions executed, not the host's)")
    elif cr.get("overall"):
        slow = cr["overall"] < 0.97 or (cr["min"] or 1) < 0.95
        p(f"- guest clock vs host (RTC): {cr['overall']:.2f} guest s per host s overall"
          + (f", {cr['min']:.2f}–{cr['max']:.2f} over stretches of >= 20 s" if cr["min"] else "")
          + ("; **the guest clock lost ticks** (it advanced roughly only while the vCPU ran), so"
             " the rates fio and gup_test computed are per guest second, higher than per host"
             " second by about that factor, unevenly if the host load changed; compare ratios"
             " rather than absolute figures" if slow else ""))
    for d, why in res["absent"].items():
        p(f"- **{d} not measured**: {why}")
    p("- figures: median (min–max) over the repetitions; ratios: the median of the"
      " per-repetition ratios Rust / C (the two run back to back in a repetition), in brackets"
      " their range; > 1 means the Rust side is faster")
    p("")
    p("## fio")
    p("")
    p("| benchmark | unit | " + " | ".join(t for _, t in DEVS) + " | "
      + " | ".join(r[0] for r in FIO_RATIOS + REF_RATIOS) + " |")
    p("|---|---|" + "---:|" * (len(DEVS) + len(FIO_RATIOS) + len(REF_RATIOS)))
    only = meta.get("only")
    for row in summ["fio"]:
        if only and not any(row["abs"][d] for d, _ in DEVS):
            continue  # not selected by --only
        cells = [fmt_spread(row["abs"][d]) if row["abs"][d] or d not in res["absent"]
                 else "n/a (absent)" for d, _ in DEVS]
        cells += [fmt_ratio(row["ratios"][r[0]]) for r in FIO_RATIOS + REF_RATIOS]
        err = f" ({row['errors']} failed runs)" if row["errors"] else ""
        p(f"| {row['benchmark']}{err} | {row['unit']} | " + " | ".join(cells) + " |")
    p("")
    for label, a, b, what in FIO_RATIOS + REF_RATIOS:
        p(f"- {label}: {what} (/dev/{a} / /dev/{b})")
    p("")
    p("## Pin + unpin cost per page (gup_test)")
    p("")
    gm = g.get("gup_mib", "?")
    p(f"tools/testing/selftests/mm/gup_test, `-T` (4 KiB pages), {gm} MiB per call of the"
      " benchmark ioctl, `-n` pages per pin call; stock = the kernel's /sys/kernel/debug/gup_test,"
      " iovx_gup = /dev/iovx_gup bind-mounted over it. One sample is the mean of"
      f" {g.get('gup_calls', '?')} calls (`-r`) in one process; stock and iovx_gup alternate."
      " Times in ns per page; ratio = stock time / iovx_gup time (> 1: the Rust device is"
      " faster).")
    p("")
    absent = res["absent"]
    p("| benchmark | get stock | get iovx_gup | get ratio | put stock | put iovx_gup | put ratio |")
    p("|---|---:|---:|---:|---:|---:|---:|")
    na = f"n/a ({absent['iovx_gup']})" if "iovx_gup" in absent else "n/a"
    for row in summ["gup"]:
        if only and not row["abs"]["stock_get"] and not row["abs"]["iovx_gup_get"]:
            continue  # not selected by --only
        c = []
        for what in ("get", "put"):
            c.append(fmt_spread(row["abs"][f"stock_{what}"]))
            rx = row["abs"][f"iovx_gup_{what}"]
            c.append(fmt_spread(rx) if rx else na)
            c.append(fmt_ratio(row["ratios"][what]) if row["ratios"][what] else na)
        p(f"| {row['benchmark']} | " + " | ".join(c) + " |")
    p("")
    p("## Memory-copy baseline")
    p("")
    base = summ["memcpy_baseline"]
    if base:
        m0 = res["memcpy"][0]
        gb = lambda v: f"{v:.2f}"  # noqa: E731
        p(f"One thread copies {m0['block_kib']} KiB blocks taken one after the other from a"
          f" {m0['buffer_mib']} MiB buffer into one block-sized buffer (read: what a RAM disk does"
          " for a large read into a reader's buffer) or the other way round (write), GB/s (10^9"
          " bytes copied per second), with the C library's memcpy() and the x86-64 kernel's ways"
          " to copy (movq-loop: its memcpy without FSRM; movsq; movsb: with FSRM). Guest CPU copy"
          f" flags: {g.get('copy_flags', '?').strip(',') or 'none'}.")
        p("")
        pats = [pt for pt in ("read", "write") if pt in base]
        meths = []
        for k in summ["memcpy_gbps"]:
            meth = k.split("/", 1)[1]
            if meth not in meths:
                meths.append(meth)
        p("| method | " + " | ".join(pats) + " |")
        p("|---|" + "---:|" * len(pats))
        for meth in meths:
            cells = []
            for pt in pats:
                v = summ["memcpy_gbps"].get(f"{pt}/{meth}")
                mark = " (baseline)" if base[pt]["method"] == meth else ""
                cells.append(fmt_spread(v, gb) + mark if v else "n/a")
            p(f"| {meth} | " + " | ".join(cells) + " |")
        p("")
        p("The baseline is the fastest of the kernel's ways to copy on this CPU (the C library's"
          " memcpy() uses vector registers, which kernel code does not). The Rust RAM disk copies"
          " whole pages with copy_page() (movsq where the CPU has REP_GOOD), brd and null_blk"
          " with memcpy() (movsb with FSRM, else movq-loop).")
        p("")
        p("Large-block throughput as a fraction of the baseline of its pattern ("
          + ", ".join(f"{pt}: {base[pt]['method']}, {gb(base[pt]['gbps'][0])} GB/s" for pt in pats)
          + "; median MB/s / baseline MB/s; the -j2 jobs run two threads, the baseline one):")
        p("")
        benches = [r["benchmark"] for r in summ["fio"] if r["workload"] in ("read-1m", "write-1m")
                   and any(r["abs"][d] for d, _ in DEVS)]
        p("| device | " + " | ".join(benches) + " |")
        p("|---|" + "---:|" * len(benches))
        for d, t in DEVS:
            fr = summ["fraction_of_memcpy"].get(d, {})
            p(f"| {t} | " + " | ".join(f"{fr[b]:.2f}" if b in fr else "n/a" for b in benches) + " |")
        if summ["fraction_of_kernel_memcpy"]:
            p("")
            p(f"The same against the kernel's memcpy() on this CPU ({summ['memcpy_method']}),"
              " which brd and null_blk copy with:")
            p("")
            p("| device | " + " | ".join(benches) + " |")
            p("|---|" + "---:|" * len(benches))
            for d, t in DEVS:
                fr = summ["fraction_of_kernel_memcpy"].get(d, {})
                p(f"| {t} | " + " | ".join(f"{fr[b]:.2f}" if b in fr else "n/a"
                                          for b in benches) + " |")
    else:
        p("n/a (memcpy_bw printed nothing)")
    problems = list(res["errors"])
    if not res["begun"]:
        problems.append("the guest benchmark script did not start")
    elif not res["ended"]:
        problems.append("the guest benchmark script did not finish (timeout or crash?)")
    problems += [l for l in res["runner"] if l.startswith(("not ok", "IOVX-HOST"))]
    nfail = sum(1 for s in res["fio"] if s["error"])
    if nfail:
        problems.append(f"{nfail} fio runs reported an error")
    p("")
    p("## Problems")
    p("")
    p("\n".join(f"- {x}" for x in problems) if problems else "none")
    p("")
    return "\n".join(out), problems


# --- A small PNG bar chart, drawn with a built-in 5x7 font.

FONT = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "-": "00000 00000 00000 11111 00000 00000 00000", ".": "00000 00000 00000 00000 00000 01100 01100",
    "/": "00000 00001 00010 00100 01000 10000 00000", ":": "00000 01100 01100 00000 01100 01100 00000",
    "(": "00010 00100 01000 01000 01000 00100 00010", ")": "01000 00100 00010 00010 00010 00100 01000",
    "_": "00000 00000 00000 00000 00000 00000 11111", "=": "00000 00000 11111 00000 11111 00000 00000",
    "%": "11000 11001 00010 00100 01000 10011 00011", "+": "00000 00100 00100 11111 00100 00100 00000",
    ",": "00000 00000 00000 00000 01100 00100 01000", "<": "00010 00100 01000 10000 01000 00100 00010",
    ">": "01000 00100 00010 00001 00010 00100 01000", " ": "00000 00000 00000 00000 00000 00000 00000",
    "?": "01110 10001 00001 00010 00100 00000 00100",
}


class Canvas:
    def __init__(self, w, h, bg=(255, 255, 255)):
        self.w, self.h = w, h
        self.px = bytearray(bytes(bg) * (w * h))

    def rect(self, x0, y0, x1, y1, c):
        x0, x1 = max(0, int(x0)), min(self.w, int(x1))
        y0, y1 = max(0, int(y0)), min(self.h, int(y1))
        if x1 <= x0:
            return
        row = bytes(c) * (x1 - x0)
        for y in range(y0, y1):
            o = (y * self.w + x0) * 3
            self.px[o:o + len(row)] = row

    def text(self, x, y, s, c=(0, 0, 0), scale=2):
        for ch in s.upper():
            g = FONT.get(ch, FONT["?"]).split()
            for ry, bits in enumerate(g):
                for rx, b in enumerate(bits):
                    if b == "1":
                        self.rect(x + rx * scale, y + ry * scale,
                                  x + (rx + 1) * scale, y + (ry + 1) * scale, c)
            x += 6 * scale
        return x

    @staticmethod
    def text_width(s, scale=2):
        return len(s) * 6 * scale

    def png(self):
        raw = b"".join(b"\x00" + bytes(self.px[y * self.w * 3:(y + 1) * self.w * 3])
                       for y in range(self.h))

        def chunk(t, d):
            return (struct.pack(">I", len(d)) + t + d
                    + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff))
        return (b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", self.w, self.h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (148, 103, 189), (214, 39, 40)]


def chart(summ, meta):
    groups = []  # (label, [(series index, (median, min, max) or None)])
    series = [r[0] for r in FIO_RATIOS]
    for row in summ["fio"]:
        groups.append((row["benchmark"], [(i, row["ratios"][s]) for i, s in enumerate(series)]))
    have_gup = any(row["ratios"]["get"] for row in summ["gup"])
    if have_gup:
        series += ["gup get", "gup put"]
        for row in summ["gup"]:
            name = row["benchmark"].replace("_BENCHMARK", "")
            groups.append((name, [(len(FIO_RATIOS), row["ratios"]["get"]),
                                  (len(FIO_RATIOS) + 1, row["ratios"]["put"])]))
    vals = [v for _, bars in groups for _, r in bars if r for v in r]
    top = max([2.0] + vals)
    top = min(4.0, (int(top * 2) + 1) / 2.0)
    bar_h, gap, group_gap = 9, 1, 10
    left, right, head = 330, 90, 96
    plot_w = 700
    height = head + sum(len(b) * (bar_h + gap) + group_gap for _, b in groups) + 30
    width = left + plot_w + right
    cv = Canvas(width, height)
    title = "IOV-EXTRACT: RUST / C SPEED RATIO (>1: RUST FASTER)"
    cv.text(10, 8, title)
    sub = (f"{meta['accel'].upper()}"
           + (f" icount {meta['icount_shift']}" if meta.get("icount_shift") is not None else "")
           + f", {meta['flavour']} kernel {meta.get('kernel', '')}, "
           f"{meta['date']}, median with min-max")
    cv.text(10, 28, sub, (80, 80, 80), 1)
    x = 10
    for i, s in enumerate(series):
        cv.rect(x, 46, x + 14, 58, COLOURS[i % len(COLOURS)])
        x = cv.text(x + 18, 46, s, scale=2) + 16

    def xpos(v):
        return left + min(v, top) / top * plot_w

    # Grid every 0.25, labelled every 0.5, a heavy line at 1.
    y_axis0, y_axis1 = head - 8, height - 24
    t = 0.0
    while t <= top + 1e-9:
        gx = xpos(t)
        major = abs(t * 2 - round(t * 2)) < 1e-9
        cv.rect(gx, y_axis0, gx + 1, y_axis1, (200, 200, 200) if major else (232, 232, 232))
        if major:
            lab = f"{t:.1f}"
            cv.text(gx - Canvas.text_width(lab, 1) / 2, y_axis1 + 6, lab, (60, 60, 60), 1)
            cv.text(gx - Canvas.text_width(lab, 1) / 2, head - 22, lab, (60, 60, 60), 1)
        t += 0.25

    y = head
    labels = []  # drawn last, over the grid and the line at 1
    for label, bars in groups:
        gh = len(bars) * (bar_h + gap)
        cv.text(left - 8 - Canvas.text_width(label, 2), y + gh / 2 - 7, label)
        for i, r in bars:
            c = COLOURS[i % len(COLOURS)]
            if r is None:
                cv.text(left + 4, y + 1, "N/A", (150, 150, 150), 1)
            else:
                cv.rect(left, y, xpos(r[0]), y + bar_h, c)
                # The range of the per-repetition ratios.
                mid = y + bar_h // 2
                cv.rect(xpos(r[1]), mid, xpos(r[2]) + 1, mid + 1, (0, 0, 0))
                cv.rect(xpos(r[1]), y + 2, xpos(r[1]) + 1, y + bar_h - 2, (0, 0, 0))
                cv.rect(xpos(r[2]), y + 2, xpos(r[2]) + 1, y + bar_h - 2, (0, 0, 0))
                lab = f"{r[0]:.2f}" + (" >" if r[0] > top else "")
                labels.append((int(max(xpos(r[0]), xpos(r[2]))) + 5, y + 1, lab))
            y += bar_h + gap
        y += group_gap
    cv.rect(xpos(1.0) - 1, y_axis0, xpos(1.0) + 1, y_axis1, (0, 0, 0))
    for x, y, lab in labels:
        cv.rect(x - 1, y - 1, x + Canvas.text_width(lab, 1), y + 8, (255, 255, 255))
        cv.text(x, y, lab, (0, 0, 0), 1)
    return cv.png()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--boot", required=True, help="qemu/run --log directory of the boot")
    ap.add_argument("--out", required=True)
    ap.add_argument("--flavour", default="lean")
    ap.add_argument("--kdir", default="")
    ap.add_argument("--elapsed", default="?")
    ap.add_argument("--settings", default="", help="KEY=VALUE,... of the host-side settings")
    ap.add_argument("--only", default="", help="the --only selection of scripts/bench, if any")
    ap.add_argument("--host", default="", help="what else ran on the host")
    a = ap.parse_args()

    res = parse_guest_log(os.path.join(a.boot, "guest.log"))
    icount = None
    try:
        with open(os.path.join(a.boot, "accel")) as f:
            lines = f.read().split("\n")
        accel = lines[0].strip() or "unknown"
        for ln in lines[1:]:
            if ln.startswith("icount shift="):
                icount = int(ln.split("=", 1)[1])
    except (OSError, ValueError):
        accel = "unknown"
    meta = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "accel": accel, "icount_shift": icount, "flavour": a.flavour, "kdir_name": os.path.basename(a.kdir.rstrip("/")),
        "kernel": res["meta"].get("kernel", "?"), "elapsed": a.elapsed, "host": a.host,
        "settings": dict(s.split("=", 1) for s in a.settings.split(",") if "=" in s),
        "only": a.only,
    }
    meta["guest_clock_rate"] = clock_rates(res["stamps"])
    summ = summarise(res)
    md, problems = markdown(res, summ, meta)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(md)
    doc = {
        "meta": meta, "guest": res["meta"], "devices": res["devices"],
        "samples": {"fio": res["fio"], "gup": res["gup"], "memcpy": res["memcpy"]},
        "absent": res["absent"], "summary": summ, "problems": problems,
        "guest_info": res["info"],
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    with open(os.path.join(a.out, "ratios.png"), "wb") as f:
        f.write(chart(summ, meta))
    print(md)
    return 1 if not res["fio"] else 0


if __name__ == "__main__":
    sys.exit(main())
