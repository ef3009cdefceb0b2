#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Live tests of kmemscope serve on this host's kernel, scraped by Debian's own
# Prometheus. Prints one PASS or FAIL line per check; tests/live/run.sh counts
# them. Needs root (the tracing session), prometheus and promtool (make deps).
#
#   tests/live/serve.sh BUILD_DIR
#
# - bad --listen values, a port in use, -i: one line, exit status 2;
# - /metrics passes promtool's linter, every metric is kmemscope_ with HELP and
#   TYPE; HEAD has no body; POST is refused (405, Allow: GET, HEAD); other paths 404;
# - Prometheus scrapes serve -c trigger every second while trigger makes N
#   pipes; a PromQL query through /api/v1/query finds the 2 N allocations
#   alloc_pipe_info makes for them;
# - --top-sites and --max-caches bound the series, and count what they leave out;
# - with --pprof, `go tool pprof` reads /debug/pprof/kernel_allocs (the 2 N
#   objects at alloc_pipe_info) and /debug/pprof/kernel_inuse (inuse_space
#   first); without it, those paths are 404;
# - SIGTERM: exit status 0, and the port no longer accepts connections.
set -u

[ $# -eq 1 ] || { echo "usage: tests/live/serve.sh BUILD_DIR" >&2; exit 2; }
BUILD=$1
KMS=$BUILD/kmemscope
TRIGGER=$BUILD/tests/trigger
N=5000

# checks this script reports, whatever happens: one that goes missing fails
EXPECTED=19
SERVE=
PROM=
. "$(dirname "$0")/lib.sh"
lib_cleanup() {
	[ -n "$SERVE" ] && kill "$SERVE" 2>/dev/null
	[ -n "$PROM" ] && kill "$PROM" 2>/dev/null
	wait 2>/dev/null
}
lib_begin serve "$KMS" "$TRIGGER"
for t in prometheus promtool go; do
	command -v $t >/dev/null || { fail "serve: $t not installed (make deps)"; exit 1; }
done

# http METHOD URL: prints "STATUS ALLOW-HEADER BODY-LENGTH", the body to $WORK/body
cat >"$WORK/get.py" <<'EOF'
import sys, http.client, urllib.parse
u = urllib.parse.urlsplit(sys.argv[2])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
c.request(sys.argv[1], u.path + ("?" + u.query if u.query else ""),
          body="x=1" if sys.argv[1] == "POST" else None)
r = c.getresponse()
body = r.read()
open(sys.argv[3], "wb").write(body)
print(r.status, (r.getheader("Allow") or "-").replace(" ", ""), len(body))
EOF
http() { python3 "$WORK/get.py" "$1" "$2" "$WORK/body" 2>&1; }

# start_serve ARGS...: kmemscope serve ARGS in the background on a free port;
# sets SERVE (pid) and URL once it says where it serves
start_serve() {
	"$KMS" serve --listen 127.0.0.1:0 "$@" >"$WORK/serve.out" 2>"$WORK/serve.err" &
	SERVE=$!
	URL=
	i=0
	while [ -z "$URL" ] && [ $i -lt 600 ] && kill -0 "$SERVE" 2>/dev/null; do
		URL=$(sed -n 's|^Serving \(http://[0-9.:]*\)/metrics.*|\1|p' "$WORK/serve.err")
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$URL" ]
}

# stop_serve: SIGTERM; sets RC to serve's exit status
stop_serve() {
	RC=0
	kill -TERM "$SERVE" 2>/dev/null
	wait "$SERVE" || RC=$?
	SERVE=
}

# --- usage errors -------------------------------------------------------------

bad_arg "serve --listen 127.0.0.1:99999" serve --listen 127.0.0.1:99999
bad_arg "serve --listen 9464 (no address)" serve --listen 9464
# an address of no interface here: bind fails
bad_arg "serve --listen 192.0.2.1:9464" serve --listen 192.0.2.1:9464
bad_arg "serve -i FILE" serve -i /nonexistent.kmt

# --- one session: the endpoints, then SIGTERM ----------------------------------

if start_serve -I 0.5; then
	port=${URL##*:}
	bad_arg "serve on a port in use" serve --listen "127.0.0.1:$port"
	if grep -q "in use" "$WORK/err"; then
		pass "serve on a port in use: the line says so"
	else
		fail "serve on a port in use: the line says: $(cat "$WORK/err")"
	fi
	sleep 1
	res=$(http GET "$URL/metrics")
	if promtool check metrics <"$WORK/body" >"$WORK/lint" 2>&1 && [ "${res%% *}" = 200 ]; then
		pass "GET /metrics: 200, promtool check metrics finds nothing"
	else
		fail "GET /metrics: $res; promtool: $(head -n 3 "$WORK/lint")"
	fi
	cp "$WORK/body" "$WORK/page"
	res=$(python3 - "$WORK/page" <<'EOF'
import sys, re
names, helps, types, families = set(), set(), set(), set()
for line in open(sys.argv[1]):
    if line.startswith("# HELP "):
        helps.add(line.split()[2])
    elif line.startswith("# TYPE "):
        types.add(line.split()[2])
    else:
        name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
        names.add(name)
        m = re.match(r'kmemscope_allocations_total\{family="(\w+)"\} (\d+)', line)
        if m:
            families.add(m.group(1))
bad = [n for n in names if not n.startswith("kmemscope_") or n not in helps or n not in types]
want = {"kmalloc", "kmem_cache", "page", "vmalloc", "dma", "percpu", "user", "user_map"}
need = {"kmemscope_outstanding_bytes", "kmemscope_lost_events_total",
        "kmemscope_recursion_misses_total", "kmemscope_site_allocated_bytes_total",
        "kmemscope_cache_allocations_total", "kmemscope_tracked_objects"}
print("ok" if not bad and families == want and need <= names else
      "bad names %s, families %s, missing %s" % (bad, families, need - names))
EOF
)
	[ "$res" = ok ] && pass "every metric: kmemscope_ prefix, HELP, TYPE; all eight families" ||
		fail "metric names: $res"
	res=$(http HEAD "$URL/metrics")
	[ "${res%% *}" = 200 ] && [ "${res##* }" = 0 ] && pass "HEAD /metrics: 200, no body" ||
		fail "HEAD /metrics: $res"
	res=$(http POST "$URL/metrics")
	[ "$res" = "405 GET,HEAD 18" ] && pass "POST /metrics: 405, Allow: GET, HEAD" ||
		fail "POST /metrics: $res"
	res=$(http GET "$URL/debug/vars")
	[ "${res%% *}" = 404 ] && pass "GET /debug/vars: 404" || fail "GET /debug/vars: $res"
	res=$(http GET "$URL/debug/pprof/kernel_allocs")
	[ "${res%% *}" = 404 ] && pass "no --pprof: GET /debug/pprof/kernel_allocs: 404" ||
		fail "no --pprof: GET /debug/pprof/kernel_allocs: $res"
	stop_serve
	if [ "$RC" = 0 ] && ! python3 -c "
import socket, sys
socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)" "$port" 2>/dev/null; then
		pass "SIGTERM: exit status 0, the port is closed"
	else
		fail "SIGTERM: exit status $RC (want 0), or the port still accepts connections"
	fi
else
	fail "serve did not start: $(head -n 3 "$WORK/serve.err")"
	for c in "port in use: line" "GET /metrics" "names" HEAD POST 404 "pprof 404" SIGTERM; do
		fail "$c: serve did not start"
	done
fi

# --- bounds: --top-sites and --max-caches --------------------------------------

if start_serve -I 0.5 --top-sites 3 --max-caches 2; then
	"$TRIGGER" pipes 2000 >/dev/null 2>&1
	sleep 1.5
	http GET "$URL/metrics" >/dev/null
	res=$(python3 - "$WORK/body" <<'EOF'
import sys, re
sites, caches, v = set(), set(), {}
for line in open(sys.argv[1]):
    m = re.match(r"kmemscope_site_allocations_total(\{.*\}) \d+", line)
    if m:
        sites.add(m.group(1))
    m = re.match(r'kmemscope_cache_allocations_total\{cache="([^"]*)"\} \d+', line)
    if m:
        caches.add(m.group(1))
    m = re.match(r"(kmemscope_sites_not_exported|kmemscope_caches_folded) (\d+)", line)
    if m:
        v[m.group(1)] = int(m.group(2))
ok = (len(sites) == 3 and len(caches) == 3 and "other" in caches and
      v.get("kmemscope_sites_not_exported", 0) > 0 and v.get("kmemscope_caches_folded", 0) > 0)
print("ok" if ok else "sites %d, caches %s, counts %s" % (len(sites), sorted(caches), v))
EOF
)
	[ "$res" = ok ] && pass "--top-sites 3 --max-caches 2: 3 site series, 2 caches + other, both counted" ||
		fail "--top-sites 3 --max-caches 2: $res"
	stop_serve
else
	fail "--top-sites 3 --max-caches 2: serve did not start: $(head -n 3 "$WORK/serve.err")"
fi

# --- Prometheus scrapes it: a PromQL query sees what the workload made -----------

# trigger's worker is named trigger: -c keeps the rest of the system out
if start_serve -I 1 -c trigger --pprof; then
	pport=$(python3 -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
	cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: kmemscope
    static_configs:
      - targets: ['${URL#http://}']
EOF
	prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
		--web.listen-address="127.0.0.1:$pport" >"$WORK/prom.log" 2>&1 &
	PROM=$!
	PURL="http://127.0.0.1:$pport"
	i=0
	until [ "$(http GET "$PURL/-/ready" | cut -d' ' -f1)" = 200 ] || [ $i -ge 60 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	"$TRIGGER" pipes $N >"$WORK/trigger" 2>&1
	# the query, until a scrape after trigger's end answers it (serve renders every 1 s)
	q='sum(kmemscope_site_allocations_total{job="kmemscope",function="alloc_pipe_info"})'
	qs=$(python3 -c "import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))" "$q")
	got=0
	i=0
	while [ "$got" -lt $((2 * N)) ] && [ $i -lt 30 ]; do
		sleep 1
		http GET "$PURL/api/v1/query?query=$qs" >/dev/null
		got=$(python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
r = d['data']['result'] if d.get('status') == 'success' else []
print(int(float(r[0]['value'][1])) if r else 0)" "$WORK/body" 2>/dev/null || echo 0)
		i=$((i + 1))
	done
	if [ "$got" -ge $((2 * N)) ]; then
		pass "Prometheus: $q = $got >= 2 x $N pipes"
	else
		fail "Prometheus: $q = $got, want >= $((2 * N)) ($(tail -n 2 "$WORK/prom.log"))"
	fi
	http GET "$PURL/api/v1/query?query=up" >/dev/null
	res=$(python3 -c "
import json, sys
r = json.load(open(sys.argv[1]))['data']['result']
print('ok' if len(r) == 1 and r[0]['value'][1] == '1' else r)" "$WORK/body" 2>&1)
	[ "$res" = ok ] && pass "Prometheus: up{job=\"kmemscope\"} = 1" || fail "Prometheus: up: $res"
	# go tool pprof fetches the profiles itself, as from a Go service; it saves a copy under $HOME
	HOME=$WORK go tool pprof -top -sample_index=alloc_objects "$URL/debug/pprof/kernel_allocs" \
		>"$WORK/pprof.top" 2>&1
	got=$(awk '$6 == "alloc_pipe_info" { print $1 }' "$WORK/pprof.top")
	if [ -n "$got" ] && [ "$got" -ge $((2 * N)) ]; then
		pass "go tool pprof $URL/debug/pprof/kernel_allocs: alloc_pipe_info $got objects >= 2 x $N"
	else
		fail "go tool pprof kernel_allocs: alloc_pipe_info '$got', want >= $((2 * N)): $(head -n 12 "$WORK/pprof.top")"
	fi
	HOME=$WORK go tool pprof -top "$URL/debug/pprof/kernel_inuse" >"$WORK/pprof.top" 2>&1
	grep -q "^Type: inuse_space" "$WORK/pprof.top" &&
		pass "go tool pprof $URL/debug/pprof/kernel_inuse: Type: inuse_space" ||
		fail "go tool pprof kernel_inuse: $(head -n 6 "$WORK/pprof.top")"
	kill "$PROM"
	wait "$PROM"
	PROM=
	stop_serve
	[ "$RC" = 0 ] && pass "serve -c trigger: exit status 0 on SIGTERM" ||
		fail "serve -c trigger: exit status $RC on SIGTERM: $(tail -n 2 "$WORK/serve.err")"
else
	fail "serve -c trigger did not start: $(head -n 3 "$WORK/serve.err")"
	fail "Prometheus: up: serve did not start"
	fail "go tool pprof kernel_allocs: serve did not start"
	fail "go tool pprof kernel_inuse: serve did not start"
	fail "serve -c trigger: SIGTERM: serve did not start"
fi
