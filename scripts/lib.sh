# Shared by scripts/run and scripts/test: install what is missing, nothing else.
# Every step is idempotent and says what it does.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION=0.3.10

# cargo-leptos builds debug binaries with this flag; giving plain cargo the same one lets
# `cargo test` and `cargo leptos build` share compiled dependencies instead of building twice.
leptos_cargo() { RUSTFLAGS="--cfg erase_components" cargo "$@"; }

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_apt() {
  # $1 = command to look for, $2 = Debian package
  if ! command -v "$1" >/dev/null 2>&1; then
    command -v apt-get >/dev/null || die "$1 is missing and this is not a Debian machine: install $2"
    say "installing $2 (Debian)"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo is missing: install Rust with rustup (https://rustup.rs)"
  # rust-toolchain.toml names the toolchain and the wasm32 target; rustup installs them on first use.
  if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

ensure_wasm_bindgen() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
  [ -n "$want" ] || die "cannot read the wasm-bindgen version from Cargo.lock"
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    say "building wasm-bindgen-cli $want (must match Cargo.lock; about 12 minutes once)"
    # No --locked: its lockfile names a webpki-roots release the registry does not serve.
    cargo install wasm-bindgen-cli --version "$want" --force
  fi
}

ensure_cargo_leptos() {
  if [ "$(cargo leptos --version 2>/dev/null | awk '{print $2}')" != "$CARGO_LEPTOS_VERSION" ]; then
    say "building cargo-leptos $CARGO_LEPTOS_VERSION (about 30 minutes once on 2 cores)"
    # no_downloads: fail loudly instead of fetching tools from outside the package registries.
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --features no_downloads
  fi
}

ensure_postgres() {
  # A DATABASE_URL pointing elsewhere is the user's to run.
  case "${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/}" in
    *@127.0.0.1:5432/*|*@localhost:5432/*|*@localhost/*) ;;
    *) return 0 ;;
  esac
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  if command -v pg_lsclusters >/dev/null 2>&1; then
    local cluster
    cluster=$(pg_lsclusters -h 2>/dev/null | awk '$3 == 5432 { print $1 " " $2; exit }')
    if [ -n "$cluster" ]; then
      say "starting PostgreSQL cluster $cluster"
      # shellcheck disable=SC2086
      pg_ctlcluster --skip-systemctl-redirect $cluster start || true
      for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && return 0; sleep 1; done
    fi
  fi
  die "no PostgreSQL answers on 127.0.0.1:5432.
  Install one (Debian: apt-get install postgresql), or point DATABASE_URL at a server you can reach,
  e.g. DATABASE_URL=postgres://user:pass@host:5432/imshift"
}

# The local database's runtime role: the console migrates as the owner (postgres) and runs as
# this role, which owns no table, so the audit log's triggers cannot be switched off from the
# console's own connection. $1 = base URL of the server (postgres://user@host:port).
ensure_runtime_role() {
  case "$1" in
    *@127.0.0.1:5432|*@localhost:5432) ;;
    *) return 0 ;;  # another server's roles are its operator's to set up (README, Deploy)
  esac
  if ! psql -qtA "$1/postgres" -c "SELECT 1 FROM pg_roles WHERE rolname = 'imshift_app'" | grep -q 1; then
    say "creating the console's runtime role imshift_app (local database)"
    psql -q "$1/postgres" -c "CREATE ROLE imshift_app LOGIN" >/dev/null
  fi
}

ensure_chromium() {
  need_apt chromium chromium
}

ensure_end2end_deps() {
  command -v npm >/dev/null || need_apt npm npm
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    say "installing end2end npm packages (no browser download: Debian's chromium is used)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
}

BINARYEN_VERSION=132

# Release builds run wasm-opt. npm's binaryen ships one that reads current rustc output
# (Debian's is too old); it goes into a tools folder once and first on PATH.
ensure_wasm_opt() {
  local dir="${IMSHIFT_TOOLS_DIR:-$ROOT/.tools}/binaryen-$BINARYEN_VERSION"
  if [ ! -x "$dir/node_modules/.bin/wasm-opt" ]; then
    command -v npm >/dev/null || need_apt npm npm
    say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION) into $dir"
    mkdir -p "$dir"
    (cd "$dir" && { [ -f package.json ] || npm init -y >/dev/null; } \
      && npm i --no-audit --no-fund "binaryen@$BINARYEN_VERSION" >/dev/null)
  fi
  export PATH="$dir/node_modules/.bin:$PATH"
}

# The front's size as browsers download it, per page (scripts/bundle-report.js); $1 = a pkg folder.
bundle_report() {
  node "$ROOT/scripts/bundle-report.js" "${1:-target/site/pkg}"
}

build_site() {
  say "building the console (server + WASM front) with cargo-leptos $*"
  cargo leptos build "$@"
  case " $* " in *" --precompress "*) regzip_site ;; esac
}

# cargo-leptos' --precompress writes .br and .gz beside every file of target/site; its gzip is
# weaker than gzip -9 (the WASM: 976 KB against 828 KB), so the .gz files are made again.
regzip_site() {
  local f
  find target/site -type f ! -name '*.gz' ! -name '*.br' -print0 |
    while IFS= read -r -d '' f; do gzip -9 -n -c "$f" >"$f.gz"; done
}

wait_ready() {
  # $1 = base url, $2 = pid
  for _ in $(seq 1 120); do
    if curl -fsS "$1/readyz" >/dev/null 2>&1; then return 0; fi
    kill -0 "$2" 2>/dev/null || die "the console exited during start-up"
    sleep 0.5
  done
  die "the console did not become ready at $1"
}
