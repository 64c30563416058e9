//! The deployer's helpers on a host, installed by every deploy's first
//! steps under `/srv/services/auto-bin/` (so a host needs nothing but
//! `sh`, `git`, `setsid` and nginx): the supervisor that keeps an
//! instance running outside the agent's process tree, and the proxy
//! switch that tests nginx's configuration before a graceful reload.

/// `supervise start|stop|run|running INSTANCE_DIR REPLICA` (`running`:
/// exit 0 when a replica of the instance runs, whatever REPLICA).
///
/// The supervisor and nginx are the processes a step means to leave
/// running: each hands itself over to the local driver as a service
/// (its pid appended to `VIGIE_SERVICE_PIDS`,
/// `vigie_drivers::SERVICE_ENV`, before it starts anything), and drops
/// the step's mark (`VIGIE_STEP`, `vigie_drivers::STEP_MARK_ENV`) for a
/// driver that goes by marks only.
///
/// Where systemd is not PID 1 (test machines, containers) nothing would
/// keep an instance running once the agent is gone, and an instance must
/// not be the agent's child (a restarted agent would take it down): `start`
/// detaches a supervisor with `setsid -f`; the supervisor writes its own
/// pid file, starts the app in its own session (a stop reaches everything
/// the app started), restarts it when it crashes, and on SIGTERM passes
/// SIGTERM on, waits the instance's grace period, then SIGKILLs (seed 003).
/// SIGUSR1 (sent by the agent's health watch, `vigie_plug::heal`) does the
/// same to the app alone and starts it again.
/// `stop` waits for the supervisor's own exit; a zombie (PID 1 of a
/// container may never reap) counts as gone.
pub const SUPERVISE: &str = r#"#!/bin/sh
# Installed by the Vigie deployer; do not edit (rewritten at every deploy).
set -u
op=$1 dir=$2 r=$3
rep="$dir/replica-$r"
pidf="$rep/supervisor.pid"
grace=$(cat "$dir/stop_grace" 2>/dev/null || echo 10)
# Where systemd runs the machine and the host is the whole machine, the
# instance is a unit (vigie_deployer::Supervisor::choose says the same).
inst=$(basename "$dir")
unit="$(basename "$(dirname "$dir")")-$inst@$r.service"
template="$dir/${unit%@*}@.service"
systemd() { [ -d /run/systemd/system ] && [ -z "${VIGIE_HOST_ROOT%/}" ] && [ -f "$template" ] && command -v systemctl >/dev/null; }
if systemd; then
  case "$op" in
  start) systemctl link "$template" >/dev/null && systemctl enable --now "$unit"; exit $? ;;
  stop) systemctl disable --now "$unit"; exit $? ;;
  esac
fi
gone() {
  [ -d "/proc/$1" ] || return 0
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1)
  [ "$state" = Z ] || [ -z "$state" ]
}
alive() { [ -s "$pidf" ] && ! gone "$(cat "$pidf")"; }
case "$op" in
start)
  if alive; then exit 0; fi
  rm -f "$pidf"
  # A port of the deployer's range held by someone else would answer the
  # health check in the new instance's place: refuse to start.
  port=$(sed -n "s/^PORT='\\([0-9]*\\)'$/\\1/p" "$rep/env")
  bind=$(sed -n "s/^BIND='\\([0-9.]*\\)'$/\\1/p" "$rep/env")
  if [ -n "$port" ] && command -v ss >/dev/null && [ -n "$(ss -Hltn src "${bind:-127.0.0.1}:$port")" ]; then
    echo "port ${bind:-127.0.0.1}:$port is already taken by another process" >&2
    exit 1
  fi
  # The local driver kills what a step leaves behind: an instance is
  # meant to outlive the step (and the agent), so the supervisor hands
  # itself over as a service (`run` below, before the pid file the wait
  # below looks for) and, where the driver goes by marks only, leaves
  # without the VIGIE_STEP mark.
  env -u VIGIE_STEP setsid -f "$0" run "$dir" "$r" </dev/null >>"$rep/supervisor.log" 2>&1
  n=0
  while [ ! -s "$pidf" ]; do
    n=$((n + 1))
    if [ $n -gt 200 ]; then echo "supervisor of $rep did not start" >&2; exit 1; fi
    sleep 0.05
  done
  echo "started supervisor $(cat "$pidf") for $rep"
  ;;
stop)
  if ! alive; then rm -f "$pidf"; echo "$rep was not running"; exit 0; fi
  pid=$(cat "$pidf")
  kill -TERM "$pid" 2>/dev/null
  # The supervisor SIGKILLs the app after the grace period; wait that and
  # a margin, then kill what is left ourselves.
  limit=$(awk "BEGIN { print int(($grace + 5) * 20) }")
  n=0
  while ! gone "$pid"; do
    n=$((n + 1))
    if [ $n -gt "$limit" ]; then
      app=$(cat "$rep/app.pid" 2>/dev/null) && kill -KILL "-$app" 2>/dev/null
      kill -KILL "$pid" 2>/dev/null
      break
    fi
    sleep 0.05
  done
  rm -f "$pidf" "$rep/app.pid"
  echo "stopped $rep"
  ;;
run)
  if [ -n "${VIGIE_SERVICE_PIDS:-}" ]; then
    echo $$ >>"$VIGIE_SERVICE_PIDS" || exit 1
    unset VIGIE_SERVICE_PIDS
  fi
  echo $$ >"$pidf.tmp" && mv "$pidf.tmp" "$pidf"
  stopping=0 restart=0 child=
  trap 'stopping=1; [ -n "$child" ] && kill -TERM "-$child" 2>/dev/null' TERM INT
  # SIGUSR1: the agent's health watch asks for a restart (the app failed
  # its health check too many times in a row).
  trap 'restart=1; [ -n "$child" ] && kill -TERM "-$child" 2>/dev/null' USR1
  while [ $stopping = 0 ]; do
    # A restart asked while no app ran (between a crash and its restart)
    # is this start.
    restart=0
    (
      set -a; . "$rep/env"; set +a
      cd "$dir/src" && exec setsid /bin/sh "$dir/start"
    ) >>"$rep/app.log" 2>&1 </dev/null &
    child=$!
    echo "$child" >"$rep/app.pid"
    echo "$(date -u +%FT%TZ) app started, pid $child"
    wait "$child"
    status=$?
    if [ $restart = 1 ] && [ $stopping = 0 ]; then
      # SIGTERM was sent: the grace period, then SIGKILL, then start again.
      ( sleep "$grace"; kill -KILL "-$child" 2>/dev/null ) &
      killer=$!
      while [ $stopping = 0 ] && ! gone "$child"; do wait "$child" 2>/dev/null || sleep 0.05; done
      kill "$killer" 2>/dev/null
      restart=0
      echo "$(date -u +%FT%TZ) app restarted for its health check"
      continue
    fi
    [ $stopping = 1 ] && break
    # The instance was removed under us (a rollback, a cleanup): nothing to restart.
    [ -d "$dir/src" ] || break
    echo "$(date -u +%FT%TZ) app exited ($status), restarting in 1s"
    sleep 1
  done
  ( sleep "$grace"; kill -KILL "-$child" 2>/dev/null ) &
  killer=$!
  while ! gone "$child"; do wait "$child" 2>/dev/null || sleep 0.05; done
  kill "$killer" 2>/dev/null
  echo "$(date -u +%FT%TZ) app stopped"
  rm -f "$rep/app.pid" "$pidf"
  ;;
running)
  # Whether a replica of this instance runs: a deploy never replaces nor
  # prunes the directory of one that does (issue 19: a re-run planned on
  # a stale inventory deleted the instance that served).
  for p in "$dir"/replica-*/supervisor.pid; do
    [ -s "$p" ] && ! gone "$(cat "$p")" && exit 0
  done
  exit 1
  ;;
*)
  echo "usage: supervise start|stop|run|running INSTANCE_DIR REPLICA" >&2; exit 64
  ;;
esac
"#;

/// `proxy ensure | apply SITE TAG | back SITE TAG`: the host's nginx for
/// the deployer, run from `/srv/services/auto-proxy` (its own prefix,
/// configuration, pid and logs). `apply` puts a staged site configuration
/// live, keeps the one it replaces, runs `nginx -t` and puts the old one
/// back if nginx refuses, then reloads gracefully (old workers finish
/// their requests); `back` is its undo.
pub const PROXY: &str = r#"#!/bin/sh
# Installed by the Vigie deployer; do not edit (rewritten at every deploy).
set -u
P="${VIGIE_HOST_ROOT%/}/srv/services/auto-proxy"
ngx() { nginx -p "$P/" -c "$P/nginx.conf" -e "$P/logs/error.log" "$@"; }
running() { [ -s "$P/run/nginx.pid" ] && kill -0 "$(cat "$P/run/nginx.pid")" 2>/dev/null; }
# The worker processes of our nginx (children of its master).
workers() {
  m=$(cat "$P/run/nginx.pid" 2>/dev/null) || return 0
  for s in /proc/[0-9]*/stat; do
    read -r line <"$s" 2>/dev/null || continue
    set -- ${line##*) }
    [ "$2" = "$m" ] && { p=${s%/stat}; echo "${p#/proc/}"; }
  done
}
# A graceful reload, returned from once the workers of the previous
# configuration are gone: until then they may still accept a connection,
# so a switch is not done before (bounded: a request that never ends does
# not hold a deploy).
reload() {
  old=$(workers)
  ngx -s reload || return 1
  n=0
  for w in $old; do
    while [ -d "/proc/$w" ] && [ "$(sed 's/.*) //' "/proc/$w/stat" 2>/dev/null | cut -c1)" != Z ]; do
      n=$((n + 1))
      [ $n -gt 600 ] && { echo "nginx workers of the previous configuration still run" >&2; return 0; }
      sleep 0.02
    done
  done
}
restore() {
  if [ -f "$before.absent" ]; then rm -f "$live"
  elif [ -f "$before" ]; then cp "$before" "$live.new" && mv "$live.new" "$live"
  fi
}
case "$1" in
ensure)
  mkdir -p "$P/sites" "$P/staged" "$P/logs" "$P/run" "$P/tmp"
  if running; then exit 0; fi
  ngx -t -q || exit 1
  # Handed over as a service, like the supervisor: nginx outlives the
  # step (without the step's mark, where the driver goes by marks only).
  # The shell hands itself over before nginx starts (with step cgroups,
  # everything it starts is kept) ...
  env -u VIGIE_STEP /bin/sh -c '[ -z "${VIGIE_SERVICE_PIDS:-}" ] || echo $$ >>"$VIGIE_SERVICE_PIDS" || exit 1
    unset VIGIE_SERVICE_PIDS; exec "$@"' service \
    nginx -p "$P/" -c "$P/nginx.conf" -e "$P/logs/error.log" </dev/null >/dev/null 2>&1 || exit 1
  # nginx's first process returns before the daemon writes its pid file
  # (its signal handlers are set by then): a reload sent earlier would be
  # lost, or kill it. Wait for the pid file.
  n=0
  until running; do
    n=$((n + 1))
    if [ $n -gt 200 ]; then echo "nginx did not write its pid file" >&2; exit 1; fi
    sleep 0.05
  done
  # ... and the daemon, which left that shell, once its pid is known
  # (under a subreaper an orphan is kept by its own pid only).
  if [ -n "${VIGIE_SERVICE_PIDS:-}" ]; then cat "$P/run/nginx.pid" >>"$VIGIE_SERVICE_PIDS" || exit 1; fi
  echo "nginx started"
  ;;
apply|back)
  live="$P/sites/$2.conf" staged="$P/staged/$2.$3" before="$P/staged/$2.$3.before"
  if [ "$1" = apply ]; then
    rm -f "$before" "$before.absent"
    if [ -f "$live" ]; then cp "$live" "$before"; else : >"$before.absent"; fi
    cp "$staged" "$live.new" && mv "$live.new" "$live"
    if ! ngx -t -q; then
      echo "nginx refused the configuration of $2; the previous one is kept" >&2
      restore
      exit 1
    fi
  else
    restore
  fi
  if running; then
    reload || exit 1
  elif [ "$1" = apply ]; then
    echo "nginx is not running: start it with \"proxy ensure\"" >&2
    restore
    exit 1
  fi
  echo "proxy $2: $1 $3"
  ;;
remove)
  # An environment leaving the host (undeploy): its site goes, kept for
  # the undo (`back SITE TAG`).
  live="$P/sites/$2.conf" before="$P/staged/$2.$3.before"
  mkdir -p "$P/staged" && rm -f "$before" "$before.absent"
  if [ -f "$live" ]; then cp "$live" "$before" && rm -f "$live" || exit 1; else : >"$before.absent"; fi
  if running; then reload || exit 1; fi
  echo "proxy $2: removed"
  ;;
*)
  echo "usage: proxy ensure | apply SITE TAG | back SITE TAG | remove SITE TAG" >&2; exit 64
  ;;
esac
"#;

/// The deployer's nginx: one per host, sites included from `sites/`.
pub const NGINX_CONF: &str = "# Installed by the Vigie deployer; do not edit.
worker_processes 1;
pid run/nginx.pid;
error_log logs/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;
    include sites/*.conf;
}
";

/// `database ensure|undo ADMIN_URL NAME`: the database `NAME` and its
/// login role `NAME` (owner of the database) on a PostgreSQL server,
/// through `psql` as the admin role. `ensure` is idempotent and records
/// in `/srv/services/auto-state/NAME.created` what it created itself;
/// `undo` drops exactly that (a database this deploy did not create is
/// never dropped). A failed `ensure` undoes its own half.
pub const DATABASE: &str = r#"#!/bin/sh
# Installed by the Vigie deployer; do not edit (rewritten at every deploy).
set -u
op=$1 admin=$2 name=$3
state="${VIGIE_HOST_ROOT%/}/srv/services/auto-state"
marker="$state/$name.created"
q() { psql "$admin" -v ON_ERROR_STOP=1 -qtAX -c "$1"; }
undo() {
  [ -f "$marker" ] || return 0
  if grep -qx database "$marker"; then
    q "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || return 1
  fi
  if grep -qx role "$marker"; then
    q "DROP ROLE IF EXISTS \"$name\"" || return 1
  fi
  rm -f "$marker"
  echo "dropped what this deploy created for $name"
}
case "$op" in
ensure)
  mkdir -p "$state" && rm -f "$marker" || exit 1
  roles=$(q "SELECT count(*) FROM pg_roles WHERE rolname = '$name'") || exit 1
  if [ "$roles" = 0 ]; then
    q "CREATE ROLE \"$name\" LOGIN" || exit 1
    echo role >>"$marker"
  fi
  dbs=$(q "SELECT count(*) FROM pg_database WHERE datname = '$name'") || { undo; exit 1; }
  if [ "$dbs" = 0 ]; then
    if ! q "CREATE DATABASE \"$name\" OWNER \"$name\""; then undo; exit 1; fi
    echo database >>"$marker"
  fi
  if [ -f "$marker" ]; then echo "database $name: created $(tr '\n' ' ' <"$marker")"
  else echo "database $name: already there"; fi
  ;;
undo)
  undo
  ;;
drop)
  # `undeploy --drop-data`: the database and its role, whoever made them.
  q "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" || exit 1
  q "DROP ROLE IF EXISTS \"$name\"" || exit 1
  rm -f "$marker"
  echo "dropped database and role $name"
  ;;
*)
  echo "usage: database ensure|undo|drop ADMIN_URL NAME" >&2; exit 64
  ;;
esac
"#;

/// How long clients are told to wait before retrying during maintenance.
pub const RETRY_AFTER_S: u32 = 30;

/// The nginx site of an environment in maintenance: every request is
/// answered 503 with `Retry-After`, no instance is reached; with `page`,
/// the body is the environment's page (`pages/<stem>.html` under the
/// proxy's prefix, `maintenance_page` in environment.yml).
pub fn maintenance_conf(
    key: &crate::EnvKey,
    address: std::net::Ipv4Addr,
    listen: u16,
    page: bool,
) -> String {
    if page {
        let stem = key.stem();
        return format!(
            "# Written by the Vigie deployer for {key}: maintenance.\n\
             server {{\n    listen {address}:{listen};\n    \
             error_page 503 /{stem}.html;\n    \
             location / {{\n        return 503;\n    }}\n    \
             location = /{stem}.html {{\n        root pages;\n        internal;\n        \
             default_type text/html;\n        \
             add_header Retry-After {RETRY_AFTER_S} always;\n    }}\n}}\n"
        );
    }
    format!(
        "# Written by the Vigie deployer for {key}: maintenance.\n\
         server {{\n    listen {address}:{listen};\n    location / {{\n        \
         add_header Retry-After {RETRY_AFTER_S} always;\n        \
         default_type text/plain;\n        \
         return 503 \"{key} is under maintenance, retry in {RETRY_AFTER_S}s\\n\";\n    }}\n}}\n"
    )
}
