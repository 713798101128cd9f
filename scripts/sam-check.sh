#!/usr/bin/env bash
# Checks the AWS SAM template and the Lambda build without an AWS account or Docker:
#   1. a pinned SAM CLI + cargo-lambda + zig in a venv at .cache/sam-venv (reused when the
#      pinned versions are already there),
#   2. `sam validate --lint` (cfn-lint over the transformed template; no AWS call), then
#      scripts/template-check.py (the wiring, on the template as SAM's translator expands it),
#   3. `sam build` with the rust-cargolambda builder, then checks that the binary was built
#      once for both functions (Function and ReplyJobsFunction share one build definition)
#      and that each function's artifact (the CodeUri of the built template, with SAM CLI
#      1.170 the shared .aws-sam/build/Function-Shared) holds that bootstrap, an ELF
#      executable for the architecture built.
#
# Usage: scripts/sam-check.sh [--validate-only] [--arch x86_64|arm64]
#   --validate-only  stop after the template checks of step 2 (no Rust build)
#   --arch           Architecture parameter to build for (default x86_64: the Rust target
#                    installed on the dev/CI machines; the template's own default is arm64,
#                    which needs `rustup target add aarch64-unknown-linux-gnu`)
# Env: SAM_CHECK_PYTHON  interpreter for the venv (default python3.11, else python3)
#      SAM_CHECK_HEARTBEAT seconds between the progress lines of sam build (default 30)
set -euo pipefail

# Pinned tool versions (all install from PyPI as wheels; checked on Python 3.11).
SAM_CLI_VERSION=1.170.0
CARGO_LAMBDA_VERSION=1.9.2
ZIGLANG_VERSION=0.17.1

die() { echo "sam-check: error: $*" >&2; exit 1; }
step() { echo "== $*"; }

validate_only=0
arch=x86_64
while (($#)); do
  case "$1" in
    --validate-only) validate_only=1 ;;
    --arch) (($# >= 2)) || die "--arch needs a value"; arch="$2"; shift ;;
    --arch=*) arch="${1#--arch=}" ;;
    -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
  shift
done
case "$arch" in
  x86_64) elf_machine=62 ;;   # EM_X86_64
  arm64) elf_machine=183 ;;   # EM_AARCH64
  *) die "--arch must be x86_64 or arm64, not '$arch'" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
[[ -f template.yaml ]] || die "no template.yaml in $root"

venv="$root/.cache/sam-venv"
build_dir="$root/.aws-sam/build"

# --- 1. venv with pinned tools -------------------------------------------------------------
python="${SAM_CHECK_PYTHON:-}"
if [[ -z "$python" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
fi

pins_present() {
  "$venv/bin/python" - "$SAM_CLI_VERSION" "$CARGO_LAMBDA_VERSION" "$ZIGLANG_VERSION" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version, PackageNotFoundError
want = dict(zip(["aws-sam-cli", "cargo-lambda", "ziglang"], sys.argv[1:]))
try:
    sys.exit(0 if all(version(n) == v for n, v in want.items()) else 1)
except PackageNotFoundError:
    sys.exit(1)
EOF
}

# A venv whose interpreter is gone (e.g. the python it came from was removed) is remade.
if [[ -d "$venv" ]] && ! "$venv/bin/python" -c 'pass' >/dev/null 2>&1; then
  step "venv at $venv is broken; recreating"
  rm -rf "$venv"
fi
if [[ -x "$venv/bin/python" ]] && pins_present; then
  step "venv .cache/sam-venv up to date (aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION, ziglang $ZIGLANG_VERSION)"
else
  command -v "$python" >/dev/null 2>&1 || die "python interpreter '$python' not found (set SAM_CHECK_PYTHON)"
  step "installing aws-sam-cli $SAM_CLI_VERSION, cargo-lambda $CARGO_LAMBDA_VERSION, ziglang $ZIGLANG_VERSION into .cache/sam-venv"
  t0=$SECONDS
  [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv" || die "could not create venv with $python"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "aws-sam-cli==$SAM_CLI_VERSION" "cargo-lambda==$CARGO_LAMBDA_VERSION" "ziglang==$ZIGLANG_VERSION" \
    || die "pip install of the pinned tools failed"
  pins_present || die "pinned versions not present after pip install"
  echo "   installed in $((SECONDS - t0)) s"
fi

# --- environment: venv tools first, and nothing that can reach AWS -------------------------
# cargo-lambda (a PyPI wheel shipping the `cargo-lambda` binary, run as `cargo lambda`) links
# through cargo-zigbuild, which finds zig as `python3 -m ziglang`: the venv's python3 must be
# first on PATH. CARGO_ZIGBUILD_ZIG_PATH is left alone unless the caller set it.
export PATH="$venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE AWS_SECRET_ACCESS_KEY=sam-check-dummy-secret
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_EC2_METADATA_DISABLED=true   # no instance-metadata lookups for region/credentials
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

command -v sam >/dev/null 2>&1 || die "sam not found in $venv/bin"
command -v cargo-lambda >/dev/null 2>&1 || die "cargo-lambda not found in $venv/bin"

# --- 2. validate ---------------------------------------------------------------------------
step "sam validate --lint"
sam validate --lint --template-file template.yaml || die "sam validate --lint failed"
step "template wiring (scripts/template-check.py)"
"$venv/bin/python" scripts/template-check.py template.yaml || die "the template is not wired as the gateway needs"

if ((validate_only)); then
  step "ok (validate only)"
  exit 0
fi

# --- 3. build ------------------------------------------------------------------------------
command -v cargo >/dev/null 2>&1 || die "cargo not found (install a Rust toolchain)"
python3 -m ziglang version >/dev/null 2>&1 || die "zig not runnable as 'python3 -m ziglang' from the venv"
case "$arch" in
  x86_64) rust_target=x86_64-unknown-linux-gnu ;;
  arm64) rust_target=aarch64-unknown-linux-gnu ;;
esac
if command -v rustup >/dev/null 2>&1; then
  installed_targets="$(rustup target list --installed 2>/dev/null || true)"
  grep -qx "$rust_target" <<<"$installed_targets" \
    || die "Rust target $rust_target is not installed (rustup target add $rust_target)"
fi

step "sam build --beta-features --parameter-overrides Architecture=$arch"
echo "   a release build through cargo-lambda: about 9 min on 2 cores from cold, and quiet"
echo "   meanwhile (SAM shows the builder's output only at the end); a line every ${SAM_CHECK_HEARTBEAT:-30} s"
t0=$SECONDS
build_log="$root/.aws-sam/sam-build.log"
mkdir -p "$root/.aws-sam"
# shellcheck source=scripts/heartbeat.sh
source "$root/scripts/heartbeat.sh"
sam_build() {
  set -o pipefail
  sam build --beta-features --template-file template.yaml --build-dir "$build_dir" \
    --parameter-overrides "Architecture=$arch" 2>&1 | tee "$build_log"
}
with_heartbeat "${SAM_CHECK_HEARTBEAT:-30}" "sam build" sam_build || die "sam build failed"
echo "   sam build took $((SECONDS - t0)) s"

# SAM builds functions with the same CodeUri, Runtime, Handler, Architectures and Metadata
# once: one "Building codeuri" line naming both functions.
functions=(Function ReplyJobsFunction)
builds="$(grep 'Building codeuri:' "$build_log" || true)"
[[ "$(grep -c . <<<"$builds")" == 1 ]] \
  || die "expected one build for ${functions[*]}, sam build ran: ${builds:-none}"
for fn in "${functions[@]}"; do
  grep -q "functions: .*\b$fn\b" <<<"$builds" || die "the one build does not include $fn: $builds"
done
echo "   built once for ${functions[*]}"

# Each function's artifact is the directory the built template names as its CodeUri. SAM
# CLI 1.170 points both at one shared directory (.aws-sam/build/Function-Shared); older
# versions copied the artifact to .aws-sam/build/<function>. Either way: the same bootstrap.
codeuris="$(python3 - "$build_dir/template.yaml" "${functions[@]}" <<'EOF'
import sys
from samcli.yamlhelper import yaml_parse
resources = yaml_parse(open(sys.argv[1]).read())["Resources"]
for fn in sys.argv[2:]:
    print(resources[fn]["Properties"]["CodeUri"])
EOF
)" || die "could not read the functions' CodeUri from $build_dir/template.yaml"
mapfile -t codeuris <<<"$codeuris"
bootstrap="$build_dir/${codeuris[0]}/bootstrap"
for i in "${!functions[@]}"; do
  artifact="$build_dir/${codeuris[$i]}/bootstrap"
  [[ -f "$artifact" ]] || die "built artifact $artifact of ${functions[$i]} is missing"
  [[ -x "$artifact" ]] || die "$artifact is not executable"
  cmp -s "$bootstrap" "$artifact" || die "$artifact differs from $bootstrap (not the one build)"
done
# ELF header: magic, 64-bit class, little endian, type EXEC or DYN (PIE), e_machine.
python3 - "$bootstrap" "$elf_machine" <<'EOF' || die "$bootstrap is not a 64-bit ELF executable for $arch"
import struct, sys
path, want = sys.argv[1], int(sys.argv[2])
with open(path, "rb") as f:
    h = f.read(20)
ok = (len(h) == 20 and h[:4] == b"\x7fELF" and h[4] == 2 and h[5] == 1
      and struct.unpack_from("<H", h, 16)[0] in (2, 3)
      and struct.unpack_from("<H", h, 18)[0] == want)
sys.exit(0 if ok else 1)
EOF
if command -v file >/dev/null 2>&1; then file -b "$bootstrap" | sed 's/^/   /'; fi
size=$(wc -c <"$bootstrap")
echo "   bootstrap: $bootstrap, $size bytes ($(( (size + 524288) / 1048576 )) MiB), ELF $arch"
for i in "${!functions[@]}"; do
  echo "   ${functions[$i]}: ${build_dir#"$root/"}/${codeuris[$i]}/bootstrap"
done
step "ok"
