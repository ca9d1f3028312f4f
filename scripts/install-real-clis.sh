#!/usr/bin/env bash
# Installs the provider CLIs the real-CLI tests run (npm run test:real-cli), at pinned versions, from
# the npm registry into .cache/real-clis/<package>@<version> (ignored by git), and links each binary
# into .cache/real-clis/bin. Idempotent: a version already installed is skipped.
#
# Claude Code and opencode copy their platform's native binary (an optional dependency, from the same
# registry) into place in their install script, so theirs run; Codex finds its platform package at
# run time and Gemini CLI is plain JavaScript, so theirs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$PWD/.cache/real-clis"
mkdir -p "$cache/bin"

# package@version  binary  run-install-scripts
CLIS=(
  "@anthropic-ai/claude-code@2.1.332 claude yes"
  "@openai/codex@0.169.0 codex no"
  "@google/gemini-cli@0.61.0 gemini no"
  "opencode-ai@1.18.33 opencode yes"
)

# the version of the package installed in $1 (its node_modules/<name>/package.json), empty if none
installed() {
  node -e 'try { process.stdout.write(require(process.argv[1]).version) } catch {}' "$1/node_modules/$2/package.json"
}

for entry in "${CLIS[@]}"; do
  read -r spec bin scripts <<<"$entry"
  dir="$cache/$spec"
  name="${spec%@*}"
  version="${spec##*@}"
  if [ -x "$dir/node_modules/.bin/$bin" ] && [ "$(installed "$dir" "$name")" = "$version" ]; then
    echo "$spec: installed"
  else
    echo "$spec: installing"
    rm -rf "$dir"
    mkdir -p "$dir"
    # a package.json of its own: npm installs into this folder, not into the project above it
    echo '{"name":"real-cli","private":true}' >"$dir/package.json"
    flags=(--no-audit --no-fund --no-save --loglevel=error)
    [ "$scripts" = yes ] || flags+=(--ignore-scripts)
    # run from the folder (a folder named like the spec would be taken for a local package)
    (cd "$dir" && npm install "${flags[@]}" "$spec")
  fi
  ln -sfn "$dir/node_modules/.bin/$bin" "$cache/bin/$bin"
done
# each binary runs (a platform binary missing from its package fails here)
for entry in "${CLIS[@]}"; do
  read -r _ bin _ <<<"$entry"
  echo "$bin: $("$cache/bin/$bin" --version 2>&1 | head -n 1)"
done
du -sh "$cache" | cut -f1 | sed 's/^/real CLIs: /'
