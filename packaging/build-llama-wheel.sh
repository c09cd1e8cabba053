#!/usr/bin/env bash
# Builds llama-cpp-python once per (version, build flags) and caches the wheel.
#
# pip's own wheel cache keys only on the source archive, so a CPU build and a CUDA build
# would overwrite each other's meaning silently. We key the cache on the flags ourselves.
# Prints the path of the cached wheel on its last line.
set -euo pipefail
python_bin=${1:?usage: build-llama-wheel.sh PYTHON}
version=$(grep -E '^llama-cpp-python==' "$(dirname "$0")/../constraints.txt" | cut -d= -f3)
default_flags="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF"
flags=${LLAMA_CMAKE_ARGS:-$default_flags}
key=$(printf '%s|%s|%s' "$version" "$flags" "$("$python_bin" -c 'import sys; print(sys.implementation.cache_tag)')" | sha256sum | cut -c1-16)
cache_dir=${APPLIANCE_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/medical-appliance/wheels}/llama-$key
wheel=$(ls "$cache_dir"/llama_cpp_python-*.whl 2>/dev/null | head -n1 || true)
if [ -z "$wheel" ]; then
    echo "Compiling llama-cpp-python $version (first install only; several minutes on a small CPU)" >&2
    tmp=$(mktemp -d)
    CMAKE_ARGS="$flags" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        "$python_bin" -m pip wheel --no-deps --no-cache-dir -w "$tmp" "llama-cpp-python==$version" >&2
    mkdir -p "$cache_dir"
    built=$(ls "$tmp"/llama_cpp_python-*.whl)
    mv "$built" "$cache_dir/.partial" && mv "$cache_dir/.partial" "$cache_dir/$(basename "$built")"
    rm -rf "$tmp"
    wheel=$(ls "$cache_dir"/llama_cpp_python-*.whl)
fi
echo "$wheel"
