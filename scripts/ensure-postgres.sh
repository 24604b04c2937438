#!/usr/bin/env bash
# Makes sure a PostgreSQL server is installed for the fleet tests, which start a scratch cluster of
# their own with initdb and pg_ctl (nothing here starts a server). Installs Debian's `postgresql` with
# apt when the binaries are missing. Exit status 0 when the server binaries are there afterwards.
set -euo pipefail

bindir() {
  local dir
  if dir=$(pg_config --bindir 2>/dev/null) && [[ -x $dir/initdb && -x $dir/pg_ctl ]]; then
    echo "$dir"
    return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  done
  dir=$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")
  [[ -x $dir/initdb && -x $dir/pg_ctl ]] && { echo "$dir"; return 0; }
  return 1
}

if dir=$(bindir); then
  echo "postgresql: $("$dir/postgres" --version 2>/dev/null || echo "$dir") already installed"
  exit 0
fi
if ! command -v apt-get >/dev/null; then
  echo "postgresql: not installed and no apt-get here; install the PostgreSQL server (initdb, pg_ctl)" >&2
  exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "postgresql: installing with apt-get"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends postgresql >/dev/null
dir=$(bindir) || { echo "postgresql: installed, but initdb and pg_ctl were not found" >&2; exit 1; }
echo "postgresql: $("$dir/postgres" --version) installed"
