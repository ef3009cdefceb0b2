# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Sourced by the live test scripts that print one PASS or FAIL line per check
# (all but run.sh). The script sets KMS and EXPECTED (the number of checks it always
# reports) and calls lib_begin, whose exit trap calls lib_finish: a check that went
# missing fails the script.

REPORTED=0
FAILED=0
pass() { echo "PASS $*"; REPORTED=$((REPORTED + 1)); }
fail() { echo "FAIL $*"; REPORTED=$((REPORTED + 1)); FAILED=$((FAILED + 1)); }

# run CMD... with stdout/stderr to $WORK/out, $WORK/err; sets RC
run() {
	RC=0
	"$@" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
}

# bad_arg NAME ARGS...: kmemscope ARGS is a usage error: exit 2, one line on stderr
bad_arg() {
	name=$1
	shift
	run timeout 20 "$KMS" "$@"
	lines=$(wc -l <"$WORK/err")
	if [ "$RC" -eq 2 ] && [ "$lines" -eq 1 ]; then
		pass "$name"
	else
		fail "$name: exit $RC (want 2), $lines stderr lines (want 1): $(head -n 2 "$WORK/err")"
	fi
}

# jcheck [FILE...] <<'EOF' (python): reads $WORK/out (sys.argv[1]) and FILEs (sys.argv[2:]),
# prints "ok" or what is wrong; res gets its last line
jcheck() {
	res=$(python3 - "$WORK/out" "$@" 2>&1 | tail -n 1)
}

# judge NAME [WANT]: PASS when the last run exited WANT (default 0) and res is "ok"
judge() {
	if [ "$RC" -eq "${2:-0}" ] && [ "$res" = ok ]; then
		pass "$1"
	else
		fail "$1: exit $RC (want ${2:-0}), $res: $(head -n 2 "$WORK/err")"
	fi
}

# wait_tracing FILE: wait (at most 30 s) until kmemscope -v says in FILE that it traces;
# the file may not exist yet when kmemscope was just started in the background
wait_tracing() {
	i=0
	while ! grep -qs '^tracing' "$1" && [ $i -lt 300 ]; do
		sleep 0.1
		i=$((i + 1))
	done
}

# lib_begin NAME TOOL...: the work directory $WORK, removed at exit, when
# lib_finish judges the script; each TOOL (kmemscope first) must be built.
# A script with more to undo at exit (processes it started, descriptors it
# holds) defines lib_cleanup before the call: it runs first. LIVE_KEEP=1 keeps
# $WORK for a look after the run.
lib_begin() {
	lib_name=$1
	shift
	WORK=
	trap 'lib_exit' EXIT
	for tool; do
		[ -x "$tool" ] || { fail "$lib_name: $tool not built"; exit 1; }
	done
	WORK=$(mktemp -d "/tmp/kmemscope-$lib_name.XXXXXX") || exit 1
	[ "${LIVE_KEEP:-0}" = 1 ] && echo "$lib_name: work files in $WORK"
}

lib_exit() {
	command -v lib_cleanup >/dev/null && lib_cleanup
	[ -n "$WORK" ] && [ "${LIVE_KEEP:-0}" != 1 ] && rm -rf "$WORK"
	lib_finish
}

# held MODE N ARGS...: kmemscope ARGS -- CMD, where CMD exits as soon as trigger's worker
# holds N eventfds or pipes (MODE eventfd or pipes-held; in the background), so that the
# report sees them in use; then the trigger closes them and exits. Sets RC (kmemscope's exit status, 1 when the fifo could
# not be made) and worker (the worker's pid); trigger's output is in $WORK/trig.out.
held() {
	mode=$1
	n=$2
	shift 2
	worker=
	mkfifo "$WORK/fifo" || { RC=1; echo "mkfifo $WORK/fifo failed" >"$WORK/err"; return; }
	exec 3<>"$WORK/fifo"
	RC=0
	timeout 120 "$KMS" "$@" -- sh -c \
		"'$TRIGGER' $mode $n <'$WORK/fifo' >'$WORK/trig.out' 2>&1 &
		 i=0; while ! grep -q '^held' '$WORK/trig.out' 2>/dev/null && [ \$i -lt 600 ]; do
			sleep 0.05; i=\$((i + 1)); done" >"$WORK/out" 2>"$WORK/err" </dev/null || RC=$?
	worker=$(sed -n 's/^held n=[0-9]* pid=\([0-9]*\)$/\1/p' "$WORK/trig.out" 2>/dev/null)
	echo x >&3
	i=0
	while ! grep -q '^trigger mode=' "$WORK/trig.out" 2>/dev/null && [ $i -lt 200 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	exec 3>&-
	rm -f "$WORK/fifo"
}

lib_finish() {
	if [ "$REPORTED" -ne "$EXPECTED" ]; then
		echo "FAIL $(basename "$0"): $REPORTED of $EXPECTED checks reported"
		FAILED=$((FAILED + 1))
	fi
	[ "$FAILED" -eq 0 ] && exit 0
	exit 1
}
