# Shared by the bench scripts (sourced after they cd to the repository root).

# A free TCP port on 127.0.0.1 (racy by nature; the benches start one thing at a time).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# status_kib <key>: a /proc/$KPID/status figure in KiB (VmRSS, VmHWM) of the collector under test.
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$KPID/status"; }
