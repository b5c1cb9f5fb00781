#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the guest log of a benchmark boot (qemu/bench/guest.sh) into a report.

    report.py --boot BOOT_LOG_DIR --out DIR [--flavour NAME] [--kdir DIR] [--elapsed S]

Writes DIR/report.md (Markdown tables: absolute figures as median (min-max) over the
repetitions, and Rust/C ratios), DIR/results.json (every sample, the settings and the summary)
and DIR/ratios.png (the ratios, one panel per comparison, drawn with matplotlib; without
matplotlib the picture is left out and the report says so).
"""

import argparse
import collections
import datetime
import json
import os
import re
import statistics
import sys

# The fio devices, in table order: (name in the log, column title).
DEVS = [
    ("iovx0", "iovx0 (Rust blk-mq)"),
    ("iovx1", "iovx1 (Rust bio-based)"),
    ("ram0", "brd"),
    ("nullb0", "null_blk"),
    ("iovx_dio0", "iovx_dio0 (Rust DIO)"),
]
# The ratios: (label, Rust device, C device, meaning).
# Each RAM disk against the C one of its kind: bio-based against brd, blk-mq against null_blk.
FIO_RATIOS = [
    ("iovx-bio/brd", "iovx1", "ram0", "Rust bio-based RAM disk vs brd, both bio-based"),
    ("iovx/null_blk", "iovx0", "nullb0",
     "Rust blk-mq RAM disk vs null_blk, both blk-mq (memory backed)"),
    ("dio/O_DIRECT", "iovx_dio0", "iovx0",
     "Rust direct-I/O path vs the kernel's O_DIRECT path, same disk"),
]
# Reference ratios between two C devices, shown to read the others by (not Rust / C).
REF_RATIOS = [
    ("ref: iovx/brd", "iovx0", "ram0",
     "the Rust blk-mq RAM disk vs brd, which is bio-based: includes what going through blk-mq"
     " costs (a request, a tag, a hardware queue)"),
    ("ref: null_blk/brd", "nullb0", "ram0",
     "the kernel's blk-mq RAM disk vs its bio-based one, both C: what going through blk-mq"
     " costs, which ref: iovx/brd includes and the two Rust/C ratios of the RAM disks do not"),
]
WORKLOADS = [
    "randread-4k-qd1", "randwrite-4k-qd1", "randread-4k-qd32", "randwrite-4k-qd32",
    "read-128k", "write-128k", "read-1m", "write-1m",
]
GUP_CMDS = [("a", "PIN_FAST_BENCHMARK"), ("L", "PIN_LONGTERM_BENCHMARK")]
# The buffers of gup_test: BENCH-GUP buf= -> how the report names them.
GUP_BUFS = collections.OrderedDict([("base", "base pages (-T)"), ("thp", "THP (-t)")])
# The bufbench.c comparisons: case prefix -> (title, Rust target, C target, reference targets).
BUF_GROUPS = collections.OrderedDict([
    ("buf-dio", ("Rust direct-I/O path vs C O_DIRECT, same disk (/dev/iovx_dio0 / /dev/iovx0)",
                 "dio", "odirect", [])),
    ("buf-blk", ("Rust bio-based RAM disk vs brd, O_DIRECT (/dev/iovx1 / /dev/ram0)",
                 "iovxb", "brd", [])),
    ("pt", ("passthrough IOVX_IOC_PT on /dev/iovx0: Rust mapping vs blk_rq_map_user_iov()"
            " (IOVX_PT_F_KERNEL_MAP)", "rust", "kernel", [])),
    ("vda", ("virtio-blk: Rust direct-I/O path on /dev/vda (/dev/iovx_dio_vda) vs O_DIRECT on"
             " /dev/vda; O_DIRECT on brd for reference", "dio", "vda", ["brd"])),
])
# The buffer kinds of bufbench cases, as the report names them.
BUF_KINDS = collections.OrderedDict([
    ("base", "base pages (MADV_NOHUGEPAGE), psync"),
    ("thp", "THP (2 MiB aligned, MADV_HUGEPAGE), psync"),
    ("hugetlb", "hugetlb 2 MiB (MAP_HUGETLB), psync"),
    ("uring", "THP registered with io_uring (READ_FIXED/WRITE_FIXED, QD1)"),
])


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
           "buf": [], "backing": [],
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
            # Lines without buf= are from before the THP runs: base pages (-T).
            g = {
                "rep": int(d["rep"]), "dev": d["dev"], "cmd": d["cmd"], "n": int(d["n"]),
                "buf": d.get("buf", "base"),
                "pages": pages, "calls": int(d.get("calls", 1)), "get_us": get_us,
                "put_us": put_us, "get_ns_per_page": get_us * 1000.0 / pages,
                "put_ns_per_page": put_us * 1000.0 / pages,
            }
            if "thp_faults" in d:
                got, exp = d["thp_faults"].split("/")
                g["thp_faults"], g["thp_expected"] = int(got), int(exp)
                # A mapping that is not PMD-aligned holds one huge page less.
                g["thp_backed"] = int(exp) > 0 and int(got) >= int(exp) - 1
            res["gup"].append(g)
        elif line.startswith("BENCH-ABSENT "):
            d = line[len("BENCH-ABSENT "):].split(None, 1)
            res["absent"][d[0].split("=", 1)[-1]] = d[1] if len(d) > 1 else "absent"
        elif line.startswith("BENCH-MEMCPY "):
            d = kv(line[len("BENCH-MEMCPY "):])
            res["memcpy"].append({k: (v if k in ("method", "pattern") else float(v) if k == "gbps" else int(v))
                                  for k, v in d.items()})
        elif line.startswith("BENCH-BUF "):
            d = kv(line[len("BENCH-BUF "):])
            try:
                res["buf"].append({"case": d["case"], "kind": d["kind"], "op": d["op"],
                                   "size": int(d["size"]), "rep": int(d["rep"]), "dev": d["dev"],
                                   "engine": d["engine"], "ios": int(d["ios"]),
                                   "ns": int(d["ns"]), "mbps": float(d["mbps"]),
                                   "iops": int(d["ios"]) * 1e9 / int(d["ns"]) if int(d["ns"]) else 0.0})
            except (KeyError, ValueError):
                res["errors"].append("unreadable: " + line)
        elif line.startswith("BENCH-BACKING "):
            d = kv(line[len("BENCH-BACKING "):])
            d["ok"] = d.get("ok") == "1"
            res["backing"].append(d)
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
    for buf in GUP_BUFS:
        for cmd, cname in GUP_CMDS:
            for n in sorted({g["n"] for g in res["gup"]} or {1, 512}):
                mine = [g for g in res["gup"] if g["buf"] == buf and g["cmd"] == cmd and g["n"] == n]
                # Base-page rows are listed even when not measured, THP rows only when measured.
                if buf != "base" and not mine:
                    continue
                st = [g for g in mine if g["dev"] == "stock"]
                rx = [g for g in mine if g["dev"] == "iovx_gup"]
                name = f"{cname} n={n}" + ("" if buf == "base" else f" {buf}")
                row = {"benchmark": name, "cmd": cmd, "n": n, "buf": buf, "abs": {},
                       "ratios": {}}
                # THP rows: the runs in which fewer huge pages were faulted in than expected.
                short = [g for g in mine if "thp_backed" in g and not g["thp_backed"]]
                if buf == "thp":
                    row["not_thp_backed"] = [
                        f"{g['dev']} rep {g['rep']}: {g['thp_faults']}/{g['thp_expected']}"
                        for g in short]
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
    kernel_methods = ("movq-loop", "movsq", "movsb", "ldp-stp")
    best = {}
    for (pat, meth), v in methods.items():
        if any((pat, k) in methods for k in kernel_methods) and meth not in kernel_methods:
            continue
        if pat not in best or v[0] > methods[(pat, best[pat])][0]:
            best[pat] = meth
    # And the method of the kernel's memcpy() on this CPU ("rep movsb" with FSRM, else the loop
    # of 64-bit moves), which brd and null_blk copy with.
    # On arm64 (no x86 copy methods measured) that is the loop of load/store pairs.
    flags = res["meta"].get("copy_flags", "")
    if any(meth == "ldp-stp" for (_, meth) in methods):
        memcpy_method = "ldp-stp"
    else:
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


def parse_case(case):
    """(group, kind, size KiB, op) of a bufbench case name, or None."""
    m = re.match(r"^(buf-dio|buf-blk|vda)-(\w+)-(\d+)k-(read|write)$", case)
    if m:
        return m.group(1), m.group(2), int(m.group(3)), m.group(4)
    m = re.match(r"^(pt)-(?:(thp|hugetlb)-)?(\d+)k-(read|write)$", case)
    if m:
        return "pt", m.group(2) or "base", int(m.group(3)), m.group(4)
    return None


def summarise_buf(res, summ):
    """One row per bufbench case seen in the log (measured, or refused for its backing)."""
    cases = []
    for d in res["backing"]:
        if d.get("case") not in cases:
            cases.append(d.get("case"))
    for b in res["buf"]:
        if b["case"] not in cases:
            cases.append(b["case"])
    base = summ.get("memcpy_baseline", {})
    rows = []
    for case in cases:
        pc = parse_case(case or "")
        if not pc:
            continue
        group, kind, kib, op = pc
        _, rust, c, refs = BUF_GROUPS[group]
        key, unit = ("iops", "IOPS") if kib < 64 else ("mbps", "MB/s")
        samples = [b for b in res["buf"] if b["case"] == case]
        back = {d.get("when"): d for d in res["backing"] if d.get("case") == case}
        row = {"case": case, "group": group, "kind": kind, "op": op, "size_kib": kib,
               "unit": unit, "metric": key, "backing": back, "abs": {}, "ratio": None,
               "refs": {}, "engine": samples[0]["engine"] if samples else None}
        before, after = back.get("before"), back.get("after")
        if before is not None and not before["ok"]:
            row["status"] = "not measured: backing wrong (%s)" % before.get("why", "?")
        elif not samples:
            row["status"] = "not measured: no samples (see Problems)"
        elif after is not None and not after["ok"]:
            row["status"] = "backing changed during the run (%s)" % after.get("why", "?")
        elif after is None:
            row["status"] = "incomplete: no backing check after the run (see Problems)"
        else:
            row["status"] = "ok"
        by = {}
        for dev in [rust, c] + refs:
            by[dev] = [b for b in samples if b["dev"] == dev]
            row["abs"][dev] = spread([b[key] for b in by[dev]])
        row["ratio"] = ratio(by[rust], by[c], key)
        for r in refs:
            row["refs"][r] = ratio(by[c], by[r], key)
        # Large huge-page I/O against the memory-copy baseline of its pattern.
        if kib == 1024 and kind in ("thp", "hugetlb", "uring") and op in base:
            bl = base[op]["gbps"][0] * 1000.0
            row["fraction_of_memcpy"] = {dev: row["abs"][dev][0] / bl
                                         for dev in row["abs"] if row["abs"][dev]}
            row["memcpy_baseline"] = {"method": base[op]["method"], "gbps": base[op]["gbps"][0]}
        rows.append(row)
    return rows


def buf_markdown(res, summ, p):
    rows = summ["buf"]
    g = res["meta"]
    if not rows and not any(k.startswith("iovx_dio_vda") for k in res["absent"]):
        return
    p("## Buffer kinds, passthrough, virtio-blk (bufbench)")
    p("")
    p("`qemu/bench/bufbench.c`: one process per case, one buffer (whole 2 MiB units, 2 MiB"
      " aligned, written before use) used by both sides; each side runs its I/Os one after the"
      " other through the first 32 MiB of its device, a tenth of them untimed first, then"
      f" {g.get('reps', '?')} samples per side in an order rotating per repetition (100 I/Os per"
      " sample, up to 1000 for small I/Os, at least 16 MiB). The buffer's VMA is read from"
      " `/proc/self/smaps` before and after: base pages must show AnonHugePages 0 and"
      " KernelPageSize the base page size; THP AnonHugePages covering the whole buffer (where a"
      " PMD is larger than 2 MiB, as with 64 KiB pages, 2 MiB transparent huge pages mapped by"
      " page table entries, `hugepages-2048kB`, found in `/proc/kpageflags` covering it); hugetlb"
      " Private_Hugetlb covering it with KernelPageSize 2048 kB. A case whose backing is wrong"
      " before is not measured, one whose backing changed is marked. Huge pages reserved in the"
      f" guest: {g.get('hugetlb_pages', '?')}; THP defrag: {g.get('thp_defrag', '?').replace('_', ' ')}.")
    p("")
    for k, what in BUF_KINDS.items():
        p(f"- **{k}**: {what}")
    p("")
    sizes = lambda rs: sorted({r["size_kib"] for r in rs})  # noqa: E731
    for group, (title, rust, c, refs) in BUF_GROUPS.items():
        rs = [r for r in rows if r["group"] == group]
        if not rs:
            continue
        p(f"### {group}: {title}")
        p("")
        p(f"Ratio {rust}/{c} (> 1: the Rust side is faster), median (min–max) of the"
          " per-repetition ratios:")
        p("")
        sz = sizes(rs)
        p("| buffer | op | " + " | ".join(f"{k} KiB" for k in sz) + " |")
        p("|---|---|" + "---:|" * len(sz))
        kinds = [k for k in BUF_KINDS if any(r["kind"] == k for r in rs)]
        for k in kinds:
            for op in ("read", "write"):
                cells = []
                any_row = False
                for kib in sz:
                    r = next((r for r in rs if r["kind"] == k and r["op"] == op
                              and r["size_kib"] == kib), None)
                    if r is None:
                        cells.append("")
                        continue
                    any_row = True
                    if r["status"].startswith("not measured"):
                        cells.append(r["status"])
                    else:
                        cell = fmt_ratio(r["ratio"])
                        if r["status"] != "ok":
                            cell += f" ({r['status']})"
                        cells.append(cell)
                if any_row:
                    p(f"| {k} | {op} | " + " | ".join(cells) + " |")
        p("")
        p("Absolute figures, median (min–max), and the backing seen in /proc/self/smaps"
          " before the run:")
        p("")
        devs = [rust, c] + refs
        p("| case | unit | " + " | ".join(devs) + f" | {rust}/{c} | "
          + "".join(f"ref: {c}/{x} | " for x in refs) + "backing |")
        p("|---|---|" + "---:|" * (len(devs) + 1 + len(refs)) + "---|")
        for r in rs:
            b = r["backing"].get("before") or {}
            pte = b.get("thp_map") == "pte" and r.get("kind") in ("thp", "uring")
            thp = "2 MiB THP (PTE-mapped)" if pte else "AnonHugePages"
            bk = (f"{thp} {b.get('anon_huge_kib', '?')} kB, Hugetlb"
                  f" {b.get('hugetlb_kib', '?')} kB, KernelPageSize {b.get('kernel_page_kib', '?')} kB"
                  f" of {b.get('vma_kib', '?')} kB")
            if r["status"] != "ok":
                bk = f"**{r['status']}**; " + bk
            cells = [fmt_spread(r["abs"][d]) for d in devs]
            cells.append(fmt_ratio(r["ratio"]))
            cells += [fmt_ratio(r["refs"][x]) for x in refs]
            p(f"| {r['case']} | {r['unit']} | " + " | ".join(cells) + f" | {bk} |")
        p("")
    fr = [r for r in rows if r.get("fraction_of_memcpy") and r["status"] == "ok"]
    if fr:
        p("### 1 MiB on huge pages against the memory-copy baseline")
        p("")
        p("Median MB/s of each side over the baseline of its pattern (see Memory-copy baseline;"
          + ", ".join(sorted({f" {r['op']}: {r['memcpy_baseline']['method']}"
                              f" {r['memcpy_baseline']['gbps']:.2f} GB/s" for r in fr}))
          + "):")
        p("")
        p("| case | Rust side | C side | Rust / C |")
        p("|---|---:|---:|---:|")
        for r in fr:
            _, rust, c, _ = BUF_GROUPS[r["group"]]
            f = r["fraction_of_memcpy"]
            p(f"| {r['case']} | {rust} {f.get(rust, 0):.2f} | {c} {f.get(c, 0):.2f} | "
              + (f"{r['ratio'][0]:.2f}" if r["ratio"] else "n/a") + " |")
        p("")


def phases(stamps):
    """ '; guest: fio 600 s, gup 60 s, ...' from the uptime stamps of the guest script."""
    marks = [(t, what) for t, what, _ in stamps
             if what in ("begin", "fio", "gup", "buffers", "passthrough", "memcpy", "virtio", "end")]
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
    p(f"- guest: {g.get('arch', 'x86_64')}, {g.get('page_kib', '4')} KiB pages,"
      f" {g.get('cpus', '?')} vCPU(s) ({g.get('cpu', '?').replace('_', ' ')}), "
      f"{int(g.get('mem_kib', 0)) // 1024} MiB, THP {g.get('thp', '?').replace('_', ' ')},"
      f" clocksource {g.get('clocksource', '?')}"
      + (" (a jiffy of resolution: short intervals are coarse)"
         if "jiffies" in g.get("clocksource", "") else ""))
    p(f"- fio {g.get('fio', '?').replace('fio-', '')}: O_DIRECT, {g.get('size_mb', '?')} MiB on"
      f" every device (preconditioned by one full write), runtime {g.get('runtime', '?')} after"
      f" a ramp of {g.get('ramp', '?')}, {g.get('reps', '?')} repetitions; the devices of a"
      " workload run back to back, in an order rotating per workload and repetition; 4 KiB QD1"
      " and sequential jobs use psync, QD32 io_uring; -jN = numjobs")
    if meta.get("tree"):
        p(f"- source tree measured: {meta['tree']}")
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
    p(f"tools/testing/selftests/mm/gup_test, {gm} MiB per call of the benchmark ioctl, `-n`"
      " pages per pin call, on base pages (`-T`, MADV_NOHUGEPAGE: every page a PTE mapping) or"
      " on transparent huge pages (`-t`, MADV_HUGEPAGE, rows marked thp); stock = the kernel's"
      " /sys/kernel/debug/gup_test, iovx_gup = /dev/iovx_gup bind-mounted over it. One sample is"
      f" the mean of {g.get('gup_calls', '?')} calls (`-r`) in one process; stock and iovx_gup"
      " alternate. Times in ns per page (per base page, also on THP); ratio = stock time /"
      " iovx_gup time (> 1: the Rust device is faster). A THP run counts as THP-backed when"
      " /proc/vmstat thp_fault_alloc grew during it by the number of PMD-sized pages in the"
      " mapping (one less allowed for a mapping that is not PMD-aligned); a row with runs that"
      " were not says so in its buffer column.")
    p("")
    absent = res["absent"]
    p("| benchmark | buffer | get stock | get iovx_gup | get ratio | put stock | put iovx_gup"
      " | put ratio |")
    p("|---|---|---:|---:|---:|---:|---:|---:|")
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
        kind = GUP_BUFS[row["buf"]]
        if row.get("not_thp_backed"):
            kind += " **not THP-backed in " + "; ".join(row["not_thp_backed"]) + "**"
        p(f"| {row['benchmark']} | {kind} | " + " | ".join(c) + " |")
    p("")
    buf_markdown(res, summ, p)
    p("## Memory-copy baseline")
    p("")
    base = summ["memcpy_baseline"]
    if base:
        m0 = res["memcpy"][0]
        gb = lambda v: f"{v:.2f}"  # noqa: E731
        p(f"One thread copies {m0['block_kib']} KiB blocks taken one after the other from a"
          f" {m0['buffer_mib']} MiB buffer into one block-sized buffer (read: what a RAM disk does"
          " for a large read into a reader's buffer) or the other way round (write), GB/s (10^9"
          " bytes copied per second), with the C library's memcpy() and the kernel's ways to copy"
          " (x86-64: movq-loop, its memcpy without FSRM; movsq; movsb, with FSRM; arm64: ldp-stp,"
          " the load/store pairs of its memcpy() and copy_page()). Guest CPU copy"
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
          " whole pages with copy_page() (x86-64: movsq where the CPU has REP_GOOD; arm64: ldp-stp),"
          " brd and null_blk with memcpy() (x86-64: movsb with FSRM, else movq-loop; arm64:"
          " ldp-stp).")
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
    for r in summ["buf"]:
        if r["status"] != "ok":
            problems.append(f"{r['case']}: {r['status']}")
    for r in summ["gup"]:
        if r.get("not_thp_backed"):
            problems.append(f"gup_test {r['benchmark']}: not THP-backed in "
                            + "; ".join(r["not_thp_backed"]) + " (thp_fault_alloc grew/expected)")
    if meta.get("no_chart"):
        problems.append(f"no ratios.png: {meta['no_chart']}")
    nfail = sum(1 for s in res["fio"] if s["error"])
    if nfail:
        problems.append(f"{nfail} fio runs reported an error")
    p("")
    p("## Problems")
    p("")
    p("\n".join(f"- {x}" for x in problems) if problems else "none")
    p("")
    return "\n".join(out), problems


# --- The picture: one panel per comparison, only what was measured.

KIND_COLOURS = {"base": "#1f77b4", "thp": "#ff7f0e", "hugetlb": "#2ca02c", "uring": "#9467bd",
                "fio": "#7f7f7f", "gup get": "#8c564b", "gup put": "#e377c2"}


def panels(summ):
    """[(title, [(label, colour key, (median, min, max))])], measured rows only."""
    out = []
    for label, a, b, what in FIO_RATIOS:
        bars = [(row["benchmark"], "fio", row["ratios"][label]) for row in summ["fio"]
                if row["ratios"][label]]
        if bars:
            out.append((f"fio {label}: {what}", bars))
    bars = []
    for row in summ["gup"]:
        for what in ("get", "put"):
            if row["ratios"][what]:
                bars.append((row["benchmark"].replace("_BENCHMARK", "") + " " + what,
                             "gup " + what, row["ratios"][what]))
    if bars:
        out.append(("gup_test stock / iovx_gup time (pin and unpin per page)", bars))
    for group, (title, rust, c, _) in BUF_GROUPS.items():
        bars = []
        for r in summ["buf"]:
            if r["group"] != group or r["status"] != "ok" or not r["ratio"]:
                continue
            bars.append((f"{r['kind']} {r['size_kib']}k {r['op']}", r["kind"], r["ratio"]))
        if bars:
            out.append((f"{group} {rust}/{c}: {title}", bars))
    return out


def chart(summ, meta, path):
    """Write the picture to path; returns None, or why it could not."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError as e:
        return f"matplotlib is missing ({e}; scripts/setup installs python3-matplotlib)"
    ps = panels(summ)
    if not ps:
        return "nothing measured"
    heights = [max(2, len(b)) * 0.22 + 0.9 for _, b in ps]
    fig, axes = plt.subplots(len(ps), 1, figsize=(11, sum(heights) + 1.2),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    sub = (f"{meta['accel'].upper()}"
           + (f" -icount shift={meta['icount_shift']}" if meta.get("icount_shift") is not None else "")
           + f", {meta['flavour']} kernel {meta.get('kernel', '')}"
           + (f", tree {meta['tree']}" if meta.get("tree") else "")
           + f", {meta['date']}; median and min–max of the per-repetition ratios")
    fig.suptitle("iov-extract: Rust / C speed ratio (> 1: Rust faster)\n" + sub, fontsize=10)
    for ax, (title, bars) in zip(axes[:, 0], ps):
        top = max([1.2] + [r[2] for _, _, r in bars])
        low = min([0.8] + [r[1] for _, _, r in bars])
        y = list(range(len(bars)))[::-1]
        med = [r[0] for _, _, r in bars]
        err = [[r[0] - r[1] for _, _, r in bars], [r[2] - r[0] for _, _, r in bars]]
        cols = [KIND_COLOURS.get(k, "#7f7f7f") for _, k, _ in bars]
        ax.barh(y, med, color=cols, height=0.7, xerr=err, ecolor="black", capsize=2,
                error_kw={"elinewidth": 0.8})
        ax.axvline(1.0, color="black", linewidth=1.2)
        ax.set_yticks(y)
        ax.set_yticklabels([b[0] for b in bars], fontsize=7)
        ax.set_xlim(max(0.0, low - 0.1), top + 0.15)
        ax.set_ylim(-0.6, len(bars) - 0.4)
        ax.set_title(title, fontsize=8, loc="left")
        ax.tick_params(axis="x", labelsize=7)
        ticks = [t for t in ax.get_xticks() if abs(t - 1.0) > 0.04] + [1.0]
        ax.set_xticks(sorted(ticks))
        ax.set_xlim(max(0.0, low - 0.1), top + 0.15)
        ax.grid(axis="x", color="#dddddd", linewidth=0.5)
        ax.set_axisbelow(True)
        for yy, (_, _, r) in zip(y, bars):
            ax.text(r[2] + 0.01, yy, f"{r[0]:.2f}", fontsize=6, va="center")
        kinds = [k for k in BUF_KINDS if any(b[1] == k for b in bars)]
        if kinds:
            ax.legend(handles=[Patch(color=KIND_COLOURS[k], label=k) for k in kinds],
                      fontsize=7, loc="upper left", bbox_to_anchor=(1.005, 1.0), title="buffer",
                      title_fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


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
    ap.add_argument("--tree", default="", help="the source tree measured (git describe)")
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
        "only": a.only, "tree": a.tree,
    }
    meta["guest_clock_rate"] = clock_rates(res["stamps"])
    summ = summarise(res)
    summ["buf"] = summarise_buf(res, summ)
    os.makedirs(a.out, exist_ok=True)
    meta["no_chart"] = chart(summ, meta, os.path.join(a.out, "ratios.png"))
    md, problems = markdown(res, summ, meta)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(md)
    doc = {
        "meta": meta, "guest": res["meta"], "devices": res["devices"],
        "samples": {"fio": res["fio"], "gup": res["gup"], "memcpy": res["memcpy"],
                    "buf": res["buf"], "backing": res["backing"]},
        "absent": res["absent"], "summary": summ, "problems": problems,
        "guest_info": res["info"],
    }
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(md)
    return 1 if not res["fio"] and not res["buf"] else 0


if __name__ == "__main__":
    sys.exit(main())
