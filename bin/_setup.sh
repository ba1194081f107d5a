# Shared by bin/run and bin/test: make .venv and install StoryHub into it (sourced, not run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

missing=()
if ! "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
  echo "StoryHub needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  echo "Install it with: sudo apt-get install python3.11 python3.11-venv" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  missing+=(python3-venv)
fi
for extra in "${STORYHUB_EXTRA_PACKAGES[@]:-}"; do
  [ -n "$extra" ] || continue
  prog="${extra%%:*}"; pkg="${extra#*:}"
  command -v "$prog" >/dev/null 2>&1 || missing+=("$pkg")
done
# WeasyPrint (workshop-pack PDFs) loads Pango through ctypes. The list is read whole first:
# `ldconfig -p | grep -q` fails now and then under pipefail (grep stops reading, ldconfig gets
# SIGPIPE), and reported an installed library missing.
libraries=$(/sbin/ldconfig -p 2>/dev/null || true)
for lib in libpango-1.0.so.0:libpango-1.0-0 libpangoft2-1.0.so.0:libpangoft2-1.0-0; do
  case "$libraries" in *"${lib%%:*}"*) ;; *) missing+=("${lib#*:}") ;; esac
done
if [ ${#missing[@]} -gt 0 ]; then
  uniq=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "StoryHub needs these system packages, which are missing: $uniq" >&2
  echo "Install them with:  sudo apt-get update && sudo apt-get install -y $uniq" >&2
  exit 1
fi

digest=$(cat setup.cfg constraints.txt | sha256sum | cut -c1-16)
stamp=".venv/.installed-$digest-${STORYHUB_INSTALL_EXTRAS:-base}"
# An install with the test extras also serves `bin/run`.
if [ ! -f "$stamp" ] && [ ! -f ".venv/.installed-$digest-test" ]; then
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  echo "Installing StoryHub and its pinned dependencies into .venv (first time takes a few minutes)…"
  target="."
  [ -n "${STORYHUB_INSTALL_EXTRAS:-}" ] && target=".[${STORYHUB_INSTALL_EXTRAS}]"
  # pip's and setuptools' notices go to a log; it is shown only if the install fails.
  log=".venv/install.log"
  # --no-compile: pip byte-compiles one file at a time; compileall below uses every core.
  pip=(.venv/bin/python -m pip install --quiet --no-compile -c constraints.txt)
  # The tests also run openai-whisper, whose only missing dependency is then triton, a GPU
  # compiler of 1 GB that the CPU never uses: it is installed without its dependencies.
  whisper=(true)
  [[ "${STORYHUB_INSTALL_EXTRAS:-}" == *test* ]] && whisper=("${pip[@]}" --no-deps openai-whisper)
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
         && "${pip[@]}" -e "$target" && "${whisper[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "Installing StoryHub failed (the log above is also in $log)." >&2
    exit 1
  fi
  # Byte-compiled here even where PYTHONDONTWRITEBYTECODE is set (as on CI machines), or every
  # process would compile torch and the rest again each time it imports them. A few files in
  # libraries' own test data do not compile; pip ignores those too.
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q -j 0 "$site" >/dev/null 2>&1 || true
  # The theme model's numba code (UMAP, HDBSCAN) compiles into numba's disk cache once here,
  # not again in each of the first processes that load it (a worker's first theme run).
  .venv/bin/python -c "from storyhub.themes.modeling import warm_up; warm_up()" \
    >>"$log" 2>&1 || true
  rm -f .venv/.installed-*
  touch "$stamp"
fi
