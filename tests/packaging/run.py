#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What a user and a packager get, checked against the built binary (no root):

- one man page per command `kmemscope --help` lists, plus kmemscope(1);
- every page renders with `man --warnings -l` without a warning;
- every option a command's --help lists is in its man page (a new option
  without documentation fails here), --help and --version in kmemscope(1);
- --version (and every command's -V): release, git describe, libbpf;
- make install DESTDIR= PREFIX= installs exactly the expected files, man
  finds the pages there, make uninstall removes them;
- the installed bash completion completes every command and, for each, every
  option its --help lists;
- a packager's make CFLAGS= CPPFLAGS= LDFLAGS= builds a copy of the tree
  without .git (as from a tarball) into another OUTPUT, with their flags
  added to the build's own, and --version falls back to the VERSION file.

    tests/packaging/run.py BUILD_DIR      (make packaging)
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# argp's own options: every command has them, kmemscope(1) documents them
ARGP_OWN = {"-?", "--help", "--usage", "-V", "--version"}
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from checks import check, finish  # noqa: E402


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def commands(kms):
    out = run([kms, "--help"]).stdout
    block = out.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    return [line.split()[0] for line in block.splitlines() if line.strip()]


def options(kms, cmd):
    """The options argp's --help lists: '  -d, --duration=SEC' or '      --json'."""
    out = run([kms, cmd, "--help"]).stdout
    opts = set()
    for line in out.splitlines():
        m = re.match(r"^  (-[\w?]), (--[\w-]+)", line) or re.match(r"^      (--[\w-]+)", line)
        if m:
            opts.update(m.groups())
    return opts


def rendered(page):
    """The page as man shows it, on one line per paragraph (no line breaks to split
    an option), with troff's hyphens and minus signs back to ASCII."""
    env = dict(os.environ, MANWIDTH="2000", LANG="C.UTF-8")
    env.pop("MAN_KEEP_FORMATTING", None)
    text = run(["man", "-l", page], env=env).stdout
    return re.sub("[\u2010\u2011\u2212]", "-", text)


def documented(text, opt):
    return re.search(r"(?<![\w-])" + re.escape(opt) + r"(?![\w-])", text) is not None


def check_pages(kms, mandir):
    cmds = commands(kms)
    want = {"kmemscope.1"} | {f"kmemscope-{c}.1" for c in cmds}
    have = {f for f in os.listdir(mandir) if f.endswith(".1")}
    check("a man page per command", want == have,
          f"no page for {sorted(want - have)}, no command for {sorted(have - want)}")
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8")
    for page in sorted(have):
        r = run(["man", "--warnings", "-l", os.path.join(mandir, page)], env=env)
        check(f"man --warnings -l {page}",
              r.returncode == 0 and not r.stderr.strip() and len(r.stdout) > 500,
              f"exit {r.returncode}, {len(r.stdout)} bytes: {r.stderr.strip()[:300]}")
    for c in cmds:
        page = os.path.join(mandir, f"kmemscope-{c}.1")
        if not os.path.exists(page):
            continue
        text = rendered(page)
        missing = sorted(o for o in options(kms, c) - ARGP_OWN if not documented(text, o))
        check(f"kmemscope-{c}(1) documents every option of {c} --help", not missing,
              f"missing {missing}")
    text = rendered(os.path.join(mandir, "kmemscope.1"))
    missing = [o for o in ("--help", "--version", "-V") if not documented(text, o)]
    missing += [f"kmemscope-{c}(1)" for c in cmds if f"kmemscope-{c}(1)" not in text]
    check("kmemscope(1) documents --help, --version and names every page", not missing,
          f"missing {missing}")


def check_version(kms):
    release = open(os.path.join(ROOT, "VERSION")).read().strip()
    describe = run(["git", "-C", ROOT, "describe", "--always", "--dirty"]).stdout.strip()
    out = run([kms, "--version"]).stdout.splitlines()
    ok = (len(out) == 2 and out[0] == f"kmemscope {release} (git {describe})"
          and re.fullmatch(r"libbpf v?\d+\.\d+(\.\d+)?", out[1]))
    check("kmemscope --version: release, git describe, libbpf", ok,
          f"{out} (want 'kmemscope {release} (git {describe})', 'libbpf vX.Y')")
    bad = [c for c in commands(kms) + ["-V"]
           if run([kms] + ([c, "-V"] if c != "-V" else ["-V"])).stdout.splitlines() != out]
    check("-V prints the same, for kmemscope and every command", not bad, f"differs: {bad}")


def check_install(build, kms):
    dest = tempfile.mkdtemp(prefix="kms-install.")
    try:
        r = run(["make", "--no-print-directory", "-C", ROOT, f"OUTPUT={os.path.abspath(build)}",
                 f"DESTDIR={dest}", "PREFIX=/usr/local", "install"])
        files = sorted(os.path.relpath(os.path.join(d, f), dest)
                       for d, _, fs in os.walk(dest) for f in fs)
        want = sorted(["usr/local/bin/kmemscope",
                       "usr/local/share/bash-completion/completions/kmemscope",
                       "usr/local/share/man/man1/kmemscope.1"] +
                      [f"usr/local/share/man/man1/kmemscope-{c}.1" for c in commands(kms)])
        check("make install DESTDIR= PREFIX=/usr/local", r.returncode == 0 and files == want,
              f"exit {r.returncode} {r.stderr.strip()[:200]}; extra "
              f"{sorted(set(files) - set(want))}, missing {sorted(set(want) - set(files))}")
        binary = os.path.join(dest, "usr/local/bin/kmemscope")
        mode = oct(os.stat(binary).st_mode & 0o777) if os.path.exists(binary) else None
        found = run(["man", "-M", os.path.join(dest, "usr/local/share/man"), "-w",
                     "kmemscope-leaks"]).stdout.strip()
        check("installed: binary 0755, man finds kmemscope-leaks(1)",
              mode == "0o755" and found.endswith("man1/kmemscope-leaks.1"),
              f"mode {mode}, man -w '{found}'")
        check_completion(os.path.join(dest, "usr/local/share/bash-completion/completions",
                                      "kmemscope"), binary)
        r = run(["make", "--no-print-directory", "-C", ROOT, f"OUTPUT={os.path.abspath(build)}",
                 f"DESTDIR={dest}", "PREFIX=/usr/local", "uninstall"])
        left = [os.path.join(d, f) for d, _, fs in os.walk(dest) for f in fs]
        check("make uninstall removes every file", r.returncode == 0 and not left,
              f"exit {r.returncode}, left {left}")
    finally:
        shutil.rmtree(dest)


def complete(script, words):
    """COMPREPLY of the completion function for the words typed so far."""
    prog = (f'. "{script}"; COMP_WORDS=({" ".join(repr(w) for w in words)}); '
            f'COMP_CWORD={len(words) - 1}; _kmemscope; printf "%s\\n" "${{COMPREPLY[@]}}"')
    return set(run(["bash", "-c", prog]).stdout.split())


def check_completion(script, kms):
    cmds = commands(kms)
    got = complete(script, [kms, ""])
    check("completion: the commands", got == set(cmds) | {"--help", "--version"},
          f"got {sorted(got)}")
    for c in cmds:
        want = options(kms, c)
        got = complete(script, [kms, c, "-"])
        check(f"completion: the options of {c}", got == want and want,
              f"missing {sorted(want - got)}, extra {sorted(got - want)}")


def check_packager():
    work = tempfile.mkdtemp(prefix="kms-packager.")
    try:
        # the tree as a tarball has it: the files git knows, no .git
        src = os.path.join(work, "src")
        files = run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard"]).stdout.split("\n")
        for f in filter(None, files):
            if os.path.isfile(os.path.join(ROOT, f)):
                os.makedirs(os.path.join(src, os.path.dirname(f)), exist_ok=True)
                shutil.copy2(os.path.join(ROOT, f), os.path.join(src, f))
        out = os.path.join(work, "out")
        flags = ["CFLAGS=-O2 -g", "CPPFLAGS=-DKMS_PACKAGER_FLAG",
                 "LDFLAGS=-Wl,-z,relro -Wl,-z,now"]
        r = run(["make", "--no-print-directory", "-C", src, f"OUTPUT={out}", "V=1", "-j2"] +
                flags + ["all"])
        check("make CFLAGS= CPPFLAGS= LDFLAGS= OUTPUT= builds a tarball's tree", r.returncode == 0,
              f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-400:]}")
        cc = [line for line in r.stdout.splitlines() if " -c src/" in line]
        bad = [line for line in cc if not all(f in line for f in
                                              ("-Iinclude", "-DKMS_PACKAGER_FLAG", "-O2 -g"))]
        check("every compile keeps the build's flags and adds the packager's", cc and not bad,
              f"{len(cc)} compiles, {len(bad)} without: {bad[:1]}")
        kms = os.path.join(out, "kmemscope")
        dyn = run(["readelf", "-d", kms]).stdout
        sections = run(["readelf", "-S", kms]).stdout
        now = "BIND_NOW" in dyn or re.search(r"FLAGS_1.*\bNOW\b", dyn)
        check("the binary is linked with the packager's LDFLAGS and CFLAGS (-z now, -g)",
              now and ".debug_info" in sections,
              f"bind now: {bool(now)}, .debug_info: {'.debug_info' in sections}")
        release = open(os.path.join(ROOT, "VERSION")).read().strip()
        first = run([kms, "--version"]).stdout.splitlines()[:1]
        check("--version without .git: the VERSION file", first == [f"kmemscope {release}"],
              f"{first}")
    finally:
        shutil.rmtree(work)


def main():
    if len(sys.argv) != 2:
        print("usage: tests/packaging/run.py BUILD_DIR", file=sys.stderr)
        sys.exit(2)
    build = sys.argv[1]
    kms = os.path.abspath(os.path.join(build, "kmemscope"))
    for tool in ("man", "bash", "make", "git", "readelf", "pandoc"):
        if not shutil.which(tool):
            check(f"setup: {tool} found", False, "not installed (make deps)")
    if os.access(kms, os.X_OK) and os.path.isdir(os.path.join(build, "man")):
        check_pages(kms, os.path.join(build, "man"))
        check_version(kms)
        check_install(build, kms)
        check_packager()
    else:
        check("setup: built", False, f"{kms} or {build}/man missing (make all)")
    sys.exit(finish("packaging"))


if __name__ == "__main__":
    main()
