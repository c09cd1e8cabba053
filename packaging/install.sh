#!/usr/bin/env bash
# Offline installer of the medical appliance (bash bootstrap; the work is done by install.py).
#
#   install.sh install  --bundle FILE --public-key RELEASE.pem [--prefix DIR] [--home DIR] ...
#   install.sh rollback [--prefix DIR]
#   install.sh status   [--prefix DIR]
#
# The bundle is verified (signature and every byte) by verify_bundle.py, beside this script, with
# only the Python standard library, before anything else from the bundle is used. Run with
# --help for every option. Needs python3 (the version the bundle was built for) with its venv module.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python_bin=${APPLIANCE_INSTALL_PYTHON:-python3}
if ! command -v "$python_bin" >/dev/null 2>&1; then
    echo "install.sh: $python_bin not found; install Python 3 (same minor version as the bundle) first" >&2
    exit 2
fi
# -I: ignore PYTHON* variables and the user's site directory; nothing outside these files is trusted.
exec "$python_bin" -I "$here/install.py" "$@"
