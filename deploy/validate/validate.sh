#!/usr/bin/env bash
# Validates the deployment files without a container engine: the Kubernetes manifests against the
# Kubernetes API schemas (kubernetes-models), the compose file against the Compose specification's
# schema (check-jsonschema's vendored copy), and the Dockerfile's stages and sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
deploy="$(dirname "$here")"
root="$(dirname "$deploy")"
source "$deploy/lib.sh"

command -v node >/dev/null 2>&1 || die "Node.js is needed to validate the Kubernetes manifests (Debian: apt-get install nodejs npm)"
if [ ! -d "$here/node_modules/kubernetes-models" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --silent) || die "npm ci failed in deploy/validate"
fi
node "$here/validate.mjs" "$deploy/k8s"

venv="${CSTRACK_CACHE:-$HOME/.cache/cstrack}/validate-venv"
if [ ! -x "$venv/bin/check-jsonschema" ]; then
    python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check check-jsonschema==0.35.0 \
        || die "pip could not install check-jsonschema"
fi
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$deploy/docker/compose.yaml"

# The Dockerfile: every COPY source exists in the repository, every stage copied from exists.
dockerfile="$deploy/docker/Dockerfile"
stages=$(grep -E '^FROM ' "$dockerfile" | sed -E 's/.* AS ([a-z]+).*/\1/')
problems=0
while read -r source; do
    [ -e "$root/$source" ] || { echo "Dockerfile: COPY source $source does not exist"; problems=$((problems + 1)); }
done < <(grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=' | sed -E 's/^COPY //' | awk '{for (i = 1; i < NF; i++) print $i}')
while read -r stage; do
    grep -qx "$stage" <<<"$stages" || { echo "Dockerfile: no stage $stage"; problems=$((problems + 1)); }
done < <(grep -oE -- '--from=[a-z]+' "$dockerfile" | cut -d= -f2)
[ "$problems" -eq 0 ] || die "the Dockerfile refers to what is not there"
say "deployment files are valid"
