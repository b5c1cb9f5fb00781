#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Instructions per function and per I/O, from QEMU's log of the translated blocks executed.

  tbprof.py drive --console LOG --monitor SOCK --logs DIR [--wait S] [--span S] -- CMD...
  tbprof.py report --logs DIR --console LOG --kdir KDIR --module KO [--top N]
                   [--blocks REGEX [--blocks-out DIR]]

drive runs CMD (qemu/run with --monitor SOCK), watches the guest's kernel log (console.log) for
"TRACE-GO CASE" (qemu/bench/trace.sh), waits --wait host seconds for the workload to settle,
then has QEMU log every translated block it executes ("log exec,nochain" on the monitor) to
DIR/CASE.exec for --span host seconds.

report counts, for each CASE.exec, the executions of each block, the instructions of each block
(from the disassembly of vmlinux and of the module, placed where the guest said it was: the
kernel must run with nokaslr), and sums them per function, per I/O: the I/Os are the calls of
the system call or io_uring function the workload makes per I/O (ioctl() for the passthrough
cases), and only the blocks from the first such call to the last are counted (whole I/Os, however
few the log holds). Pairs dio-X / blk-X and ptr-X / ptk-X are then
set side by side: what each function costs per I/O on the Rust path and on the C path.

The counts are exact for the blocks executed while logging; a block's instructions are counted
up to its first branch, call or return (where QEMU ends a block), on the code as built, before
the kernel patches alternatives and static branches at boot: small differences from what runs.
Needs python3-capstone and python3-pyelftools.
"""
import argparse
import bisect
import collections
import os
import re
import socket
import subprocess
import sys
import time


def monitor(sock, cmd):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.settimeout(5)
    time.sleep(0.2)
    try:
        s.recv(65536)
    except socket.timeout:
        pass
    s.sendall((cmd + "\n").encode())
    time.sleep(0.3)
    try:
        s.recv(65536)
    except socket.timeout:
        pass
    s.close()


def drive(a):
    os.makedirs(a.logs, exist_ok=True)
    p = subprocess.Popen(a.cmd)
    seen = set()
    while p.poll() is None:
        time.sleep(0.5)
        try:
            with open(a.console, errors="replace") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        for m in re.finditer(r"TRACE-GO (\S+)", text):
            case = m.group(1)
            if case in seen:
                continue
            seen.add(case)
            time.sleep(a.wait)
            if p.poll() is not None:
                break
            try:
                monitor(a.monitor, f"logfile {os.path.join(a.logs, case + '.exec')}")
                monitor(a.monitor, "log exec,nochain")
                time.sleep(a.span)
                monitor(a.monitor, "log none")
                print(f"[trace] logged {case} for {a.span} s", file=sys.stderr, flush=True)
            except OSError as e:
                print(f"[trace] {case}: monitor: {e}", file=sys.stderr, flush=True)
    return p.returncode


class Code:
    """The functions and instructions of vmlinux and of the module at its load address."""

    def __init__(self, kdir, module, modbase, others=()):
        from elftools.elf.elffile import ELFFile
        import capstone

        self.cs = capstone
        self.kf = open(os.path.join(kdir, "vmlinux"), "rb")
        kel = ELFFile(self.kf)
        self.arm64 = kel["e_machine"] == "EM_AARCH64"
        if self.arm64:
            self.md = capstone.Cs(capstone.CS_ARCH_ARM64, capstone.CS_MODE_ARM)
            # QEMU ends a block after an instruction that may change the CPU's state or how
            # interrupts are taken, as well as at a branch.
            self.stops = ("svc", "hvc", "smc", "eret", "isb", "wfi", "wfe", "msr", "brk")
        else:
            self.md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
            self.stops = ("sti", "popfq", "wrmsr", "hlt", "swapgs", "sysretq")
        self.md.detail = True
        self.ends = {capstone.CS_GRP_JUMP, capstone.CS_GRP_CALL, capstone.CS_GRP_RET,
                     capstone.CS_GRP_IRET, capstone.CS_GRP_INT}
        syms = []
        with open(os.path.join(kdir, "System.map")) as f:
            for line in f:
                a, t, n = line.split()[:3]
                if t in "tTwW":
                    syms.append((int(a, 16), n))
        kt = kel.get_section_by_name(".text")
        self.kbase, self.kdata = kt["sh_addr"], kt.data()
        # The module's .text, and that of the other modules given (name, file, address): the
        # C peers of the RAM disk, whose code would otherwise count one instruction per block.
        self.regions = []
        for tag, path, base in [("iovx", module, modbase)] + list(others):
            with open(path, "rb") as f:
                mel = ELFFile(f)
                mt = mel.get_section_by_name(".text")
                self.regions.append((base, mt.data()))
                idx = [i for i, s in enumerate(mel.iter_sections()) if s.name == ".text"][0]
                for s in mel.get_section_by_name(".symtab").iter_symbols():
                    if s["st_shndx"] == idx and s["st_info"]["type"] == "STT_FUNC":
                        syms.append((base + s["st_value"], "[%s] %s" % (tag, s.name)))
        syms.sort()
        self.addrs = [a for a, _ in syms]
        self.names = [n for _, n in syms]
        self.sizes = {}

    def sym(self, pc):
        # Kernel addresses have the top bit set, on x86-64 and on arm64.
        if pc < 1 << 63:
            return "[user]"
        i = bisect.bisect_right(self.addrs, pc) - 1
        return self.names[i] if i >= 0 else "?"

    def is_entry(self, pc):
        i = bisect.bisect_left(self.addrs, pc)
        return i < len(self.addrs) and self.addrs[i] == pc

    def block(self, pc):
        """Instructions of the block at pc: up to the first control transfer."""
        if pc in self.sizes:
            return self.sizes[pc]
        buf = b""
        for base, data in [(self.kbase, self.kdata)] + self.regions:
            if base <= pc < base + len(data):
                buf = data[pc - base:pc - base + 1024]
                break
        n = 0
        for ins in self.md.disasm(buf, pc):
            n += 1
            # QEMU ends a block at a control transfer, at an instruction that changes how
            # interrupts or the CPU state are handled, and (x86-64) after each iteration of a
            # string instruction with a rep prefix. capstone puts arm64's conditional branches
            # (b.cond, cbz, tbz) in no group: they are told by name.
            m = ins.mnemonic
            if (any(g in self.ends for g in ins.groups) or m in self.stops
                    or (not self.arm64 and m.startswith("rep"))
                    or (self.arm64 and (m.startswith(("b.", "cb", "tb", "bl", "br", "ret"))
                                        or m == "b"))):
                break
            if n >= 512:
                break
        self.sizes[pc] = max(n, 1)
        return self.sizes[pc]


# The function entered once per I/O, by workload.
def io_function(case, arm64=False):
    if case.startswith(("ptr-", "ptk-")):
        return "__arm64_sys_ioctl" if arm64 else "__x64_sys_ioctl"
    if "io_uring" in case or case.split("-")[1:2] == ["uring"]:
        return "io_write" if "write" in case else "io_read"
    return "ksys_pwrite64" if "write" in case else "ksys_pread64"


def profile(code, path, entry=None, blocks=None):
    """Instructions per function and entries per function of the blocks logged in path. With
    entry (the address of the function entered once per I/O), only the blocks from its first
    entry up to its last are counted, so that the counts cover whole I/Os: the I/Os are then
    the entries less one. With blocks (a regular expression), also the blocks of the functions
    whose readable names match it: (function, offset in it, executions, instructions)."""
    pat = re.compile(rb"/([0-9a-f]{16})/")
    pcs = []
    with open(path, "rb") as f:
        for line in f:
            m = pat.search(line)
            if m:
                pcs.append(int(m.group(1), 16))
    if entry is not None:
        at = [i for i, pc in enumerate(pcs) if pc == entry]
        pcs = pcs[at[0]:at[-1]] if len(at) > 1 else []
    counts = collections.Counter(pcs)
    per = collections.Counter()
    entries = collections.Counter()
    rows = []
    for pc, c in counts.items():
        s = code.sym(pc)
        if blocks and s != "[user]" and re.search(blocks, demangle(s)):
            i = bisect.bisect_right(code.addrs, pc) - 1
            rows.append((s, pc - code.addrs[i], c, code.block(pc)))
        # User blocks are not disassembled (no binary at hand): counted as 4 instructions.
        per[s] += c * (code.block(pc) if s != "[user]" else 4)
        if s != "[user]" and code.is_entry(pc):
            entries[s] += c
    return per, entries, sorted(rows)


_demangled = {}


def demangle(name):
    """Rust symbols (v0 mangling) readable, through llvm-cxxfilt if it is there."""
    prefix = "[iovx] " if name.startswith("[iovx] ") else ""
    raw = name[len(prefix):]
    if not raw.startswith("_R"):
        return name
    if raw not in _demangled:
        try:
            out = subprocess.run(["llvm-cxxfilt"], input=raw, capture_output=True, text=True,
                                 check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = raw
        # Crate paths of the module and of the kernel crate add nothing.
        out = re.sub(r"iov_extract::abstractions::|kernel::", "", out)
        _demangled[raw] = out or raw
    return prefix + _demangled[raw]


def short(name, width=110):
    name = demangle(name)
    return name if len(name) <= width else name[:width - 3] + "..."


def report(a):
    text = open(a.console, errors="replace").read()
    m = re.search(r"TRACE-SECT \.text (0x[0-9a-f]+)", text)
    if not m:
        sys.exit("tbprof: no TRACE-SECT .text line in " + a.console)
    # TRACE-KMOD NAME ADDRESS: the .text of another module, found in the kernel's build tree.
    others = []
    for name, addr in re.findall(r"TRACE-KMOD (\S+) (0x[0-9a-f]+)", text):
        for root, _, files in os.walk(a.kdir):
            if name + ".ko" in files:
                others.append((name, os.path.join(root, name + ".ko"), int(addr, 16)))
                break
    code = Code(a.kdir, a.module, int(m.group(1), 16), others)
    cases = sorted(f[:-5] for f in os.listdir(a.logs) if f.endswith(".exec"))
    res = {}
    out = []
    for case in cases:
        fn = io_function(case, code.arm64)
        entry = code.addrs[code.names.index(fn)] if fn in code.names else None
        per, entries, rows = profile(code, os.path.join(a.logs, case + ".exec"), entry,
                                     a.blocks)
        ios = entries[fn]
        if not ios:
            out.append(f"## {case}: no I/O seen ({fn} never entered)\n")
            continue
        if a.blocks:
            os.makedirs(a.blocks_out, exist_ok=True)
            with open(os.path.join(a.blocks_out, case + ".md"), "w") as f:
                f.write(f"# {case}: blocks of the functions matching {a.blocks}, per I/O\n\n")
                f.write("| function | offset | executions | instructions | per I/O |\n")
                f.write("|---|---:|---:|---:|---:|\n")
                for s, off, c, n in rows:
                    f.write(f"| {short(s, 70)} | {off:#x} | {c / ios:.2f} | {n} | "
                            f"{c * n / ios:.1f} |\n")
        total = sum(per.values()) / ios
        res[case] = (per, ios, total)
        out.append(f"## {case}: {ios} I/Os logged, {total:.0f} instructions per I/O")
        out.append("")
        out.append("| instructions per I/O | function |")
        out.append("|---:|---|")
        for s, v in per.most_common(a.top):
            out.append(f"| {v / ios:.1f} | {short(s)} |")
        out.append("")
    pairs = (("dio-", "blk-", "Rust direct I/O against the C O_DIRECT path"),
             ("ptr-", "ptk-", "IOVX_IOC_PT, the Rust mapping against blk_rq_map_user_iov()"))
    for case, (rust, c, what) in ((x, p) for x in cases for p in pairs):
        if not case.startswith(rust) or c + case[4:] not in res or case not in res:
            continue
        other = c + case[4:]
        (pa, ia, ta), (pb, ib, tb) = res[case], res[other]
        out.append(f"## {case[4:]}: {what}")
        out.append("")
        out.append(f"Instructions per I/O: Rust {ta:.0f}, C {tb:.0f}, ratio C/Rust {tb / ta:.3f}. "
                   "Functions whose cost per I/O differs by 3 or more:")
        out.append("")
        out.append("| Rust | C | Rust - C | function |")
        out.append("|---:|---:|---:|---|")
        rows = []
        for s in set(pa) | set(pb):
            x, y = pa[s] / ia, pb[s] / ib
            if abs(x - y) >= 3 and s != "[user]":
                rows.append((x - y, s, x, y))
        for d, s, x, y in sorted(rows):
            out.append(f"| {x:.1f} | {y:.1f} | {d:+.1f} | {short(s)} |")
        out.append("")
    print("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    d = sub.add_parser("drive")
    d.add_argument("--console", required=True)
    d.add_argument("--monitor", required=True)
    d.add_argument("--logs", required=True)
    d.add_argument("--wait", type=float, default=12)
    d.add_argument("--span", type=float, default=2)
    d.add_argument("cmd", nargs=argparse.REMAINDER)
    r = sub.add_parser("report")
    r.add_argument("--logs", required=True)
    r.add_argument("--console", required=True)
    r.add_argument("--kdir", required=True)
    r.add_argument("--module", required=True)
    r.add_argument("--top", type=int, default=40)
    r.add_argument("--blocks", help="list the blocks of the functions matching this regular "
                   "expression, per I/O, in one file per case under --blocks-out")
    r.add_argument("--blocks-out", help="where --blocks writes (default: --logs)")
    a = ap.parse_args()
    if a.what == "report" and not a.blocks_out:
        a.blocks_out = a.logs
    if a.what == "drive":
        if a.cmd and a.cmd[0] == "--":
            a.cmd = a.cmd[1:]
        sys.exit(drive(a) or 0)
    report(a)


if __name__ == "__main__":
    main()
