#!/usr/bin/env bash
# man_pages: the manual pages in man/ render without a single groff or man
# warning, fit 80 columns, are plain ASCII without trailing blanks, carry the
# version the binaries print, and agree with the binaries' --help:
#  - every long option of 'lwvhostd --help', 'lwvhostctl --help',
#    'lwvhost-bench run --help' and 'lwvhost-bench sweep --help' heads a
#    paragraph (its .TP/.TQ tag starts with it, or with its short form) of
#    the matching page (an option the help only mentions, and which is
#    another program's, documented in another page, as "lwvhostd's --port"
#    in lwvhostctl's help, need only be mentioned);
#  - every command of 'lwvhostctl --help' is the tag of a paragraph of
#    lwvhostctl.8's COMMANDS;
#  - the other way round, every long option tagged in the OPTIONS of
#    lwvhostd.8 and lwvhost-bench.1, and in lwvhostctl.8, exists;
#  - the --port keys lwvhostd accepts (it lists them when given an unknown
#    one) are exactly the keys tagged in lwvhostd.8's OPTIONS;
#  - every key lwvhostd accepts in --uplink and --vxlan is named (KEY=) in
#    that option's paragraph of lwvhostd.8;
#  - the keys tagged in lwvhostd.conf.5's KEYS are exactly lwvhostd's
#    options that take a value.
# Reports every problem, not just the first.  Exit 0 pass, 77 skip, else fail.
#   BUILD=dir    where the binaries are (default build)
#   MANDIR=dir   the pages to check (default man)
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${BUILD:-build}
MANDIR=${MANDIR:-man}
NAME=man_pages

skip() { echo "$NAME: SKIP: $*"; exit 77; }
fail() { echo "$NAME: FAIL: $*"; exit 1; }

for b in lwvhostd lwvhostctl lwvhost-bench; do
    [[ -x $BUILD/$b ]] || skip "$BUILD/$b not built (make)"
done
command -v groff >/dev/null 2>&1 || skip "groff is not installed (apt-get install groff-base)"
if ! command -v man >/dev/null 2>&1 || ! man --version >/dev/null 2>&1; then
    skip "man is not installed (apt-get install man-db)"
fi

T=$(mktemp -d /tmp/lwv-man.XXXXXX) || fail "mktemp"
trap 'rm -rf "$T"' EXIT

problems=0
problem() { echo "$NAME: $*"; problems=$((problems + 1)); }

D=$MANDIR/lwvhostd.8
C=$MANDIR/lwvhostctl.8
B=$MANDIR/lwvhost-bench.1
F=$MANDIR/lwvhostd.conf.5
PAGES=("$D" "$C" "$B" "$F")

# ---------------------------------------------------------------- helpers

# The roff source with escapes that do not change the words taken out:
# \- is -, font changes, \& \% \c and quotes vanish, "\ " is a space.
norm() {
    sed -e 's/\\-/-/g' -e 's/\\f\[[^]]*\]//g' -e 's/\\f([A-Z][A-Z]//g' -e 's/\\f[A-Z1-4]//g' \
        -e 's/\\[&%c]//g' -e 's/\\ / /g' -e 's/"//g'
}
# section FILE TITLE: the lines of section .SH TITLE (up to the next .SH)
section() {
    awk -v t="$2" '/^\.SH/ { s = $0; sub(/^\.SH[ \t]+/, "", s); gsub(/"/, "", s); on = (s == t); next }
                   on' "$1"
}
# tags: the tag lines (the line after .TP or .TQ) of roff on stdin, normalised
tags() { awk 'prev ~ /^\.T[PQ]([ \t]|$)/ { print } { prev = $0 }' | norm; }
# first_words: the first word of each line, the macro (.B, .BI ...) dropped
first_words() { sed -e 's/^\.[A-Za-z]*[ \t]*//' | awk 'NF { print $1 }'; }
# tag_opts: the options whose own paragraphs these tags head: a tag that
# starts with the option ("--size BYTES"), or with its short form first
# ("-s, --size BYTES", "-s PATH, --socket PATH"); not the options a
# command's synopsis mentions ("stats [--json]").
tag_opts() {
    sed -e 's/^\.[A-Za-z]*[ \t]*//' |
        sed -n 's/^\(-[A-Za-z]\( \{1,\}[A-Z][A-Z]*\)\{0,1\} *, *\)\{0,1\}\(--[a-z][a-z0-9-]*\).*/\3/p' |
        sort -u
}
long_opts() { grep -o -- '--[a-z][a-z0-9-]*' | sort -u; }
# mentioned OPT FILE: OPT appears in FILE as a whole option name
mentioned() { norm <"$2" | grep -Eq -- "(^|[^a-z0-9-])$1([^a-z0-9-]|\$)"; }

# ------------------------------------------------------- the pages render

for p in "${PAGES[@]}"; do
    [[ -f $p ]] || { problem "$p: missing"; continue; }
    if ! LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" \
            >/dev/null 2>"$T/err" || [[ -s $T/err ]]; then
        problem "$p: man --warnings: $(head -c 2000 "$T/err")"
    fi
    if ! groff -man -ww -z "$p" 2>"$T/err" || [[ -s $T/err ]]; then
        problem "$p: groff -man -ww: $(head -c 2000 "$T/err")"
    fi
    LC_ALL=C MANROFFSEQ='' MANWIDTH=80 man -E ascii -l "$p" 2>/dev/null | col -bx |
        awk -v p="$p" 'length > 80 { printf "%s: rendered line %d is %d columns: %s\n", p, NR, length, $0 }' \
        >"$T/wide"
    while IFS= read -r l; do problem "$l"; done <"$T/wide"
    if LC_ALL=C grep -n '[^[:print:][:space:]]' "$p" >"$T/bad"; then
        problem "$p: not plain ASCII: $(head -n 3 "$T/bad")"
    fi
    if grep -n '[[:space:]]$' "$p" >"$T/bad"; then
        problem "$p: trailing whitespace: $(head -n 3 "$T/bad")"
    fi
done
# Without all the pages the rest would only repeat that they are missing.
for p in "${PAGES[@]}"; do [[ -f $p ]] || fail "$problems problems"; done

# --------------------------------------------- .TH: name, section, version

version=$("$BUILD/lwvhostd" --version | awk '{ print $2 }')
[[ -n $version ]] || problem "lwvhostd --version printed no version"
for p in "${PAGES[@]}"; do
    th=$(grep -m1 '^\.TH ' "$p" | norm)
    base=${p##*/}
    want_name=${base%.*}
    want_name=${want_name^^}
    want_sec=${base##*.}
    read -r _ name sec _ <<<"$th"
    [[ $name == "$want_name" && $sec == "$want_sec" ]] ||
        problem "$p: .TH says '$name $sec', the file name '$want_name $want_sec'"
    grep -q "lwvhost $version" <<<"$th" ||
        problem "$p: .TH does not say 'lwvhost $version' (lwvhostd --version): $th"
done

# ------------------------------------- every --help option is documented

# defined_opts: the options a help text on stdin defines: those that start
# one of its lines ("  --size BYTES ...", "  -s, --socket PATH ...") and
# those of a command's synopsis ("  stats [--json|--prometheus] ...", up
# to the gap before its description), not those its descriptions mention.
defined_opts() {
    awk '/^ +(-[A-Za-z], )?--[a-z]/ { sub(/^ +(-[A-Za-z], )?/, ""); sub(/[^a-z0-9-].*/, ""); print; next }
         /^  [a-z]/ { sub(/   .*/, ""); print }' | long_opts
}

# check_help PAGE PROGRAM HELPFILE: every long option of HELPFILE heads a
# paragraph of PAGE; except that an option the help only mentions in a
# description and which heads a paragraph of another page (another
# program's option: "lwvhostd's --port") need only be mentioned in PAGE.
check_help() {
    local page=$1 prog=$2 help=$3 o p
    tags <"$page" | tag_opts >"$T/tagged"
    defined_opts <"$help" >"$T/defined"
    for p in "${PAGES[@]}"; do [[ $p == "$page" ]] || tags <"$p"; done | tag_opts >"$T/elsewhere"
    while read -r o; do
        if grep -qx -- "$o" "$T/tagged"; then
            continue
        elif ! grep -qx -- "$o" "$T/defined" && grep -qx -- "$o" "$T/elsewhere"; then
            mentioned "$o" "$page" || problem "$page: does not mention $o (from $prog --help)"
        else
            problem "$page: no paragraph for $o (from $prog --help)"
        fi
    done < <(long_opts <"$help")
}

"$BUILD/lwvhostd" --help >"$T/d.help" 2>&1 || problem "lwvhostd --help failed"
"$BUILD/lwvhostctl" --help >"$T/c.help" 2>&1 || problem "lwvhostctl --help failed"
"$BUILD/lwvhost-bench" run --help >"$T/b.help" 2>&1 || problem "lwvhost-bench run --help failed"
"$BUILD/lwvhost-bench" sweep --help >>"$T/b.help" 2>&1 || problem "lwvhost-bench sweep --help failed"
for h in d c b; do
    [[ -n $(long_opts <"$T/$h.help") ]] || problem "no --options found in the help ($h.help)"
done

check_help "$D" lwvhostd "$T/d.help"
check_help "$C" lwvhostctl "$T/c.help"
check_help "$B" "lwvhost-bench run/sweep" "$T/b.help"

# Every command of lwvhostctl's help is a paragraph of COMMANDS, and so is
# each of its sub-commands ("port add", "tap del").
awk '/^Commands:/ { on = 1; next } /^[^ ]/ { on = 0 }
     on && /^  [a-z]/ { sub(/^  /, ""); sub(/   .*/, ""); print }' "$T/c.help" >"$T/c.synopses"
awk '{ print $1 }' "$T/c.synopses" | sort -u >"$T/c.cmds"
while read -r cmd rest; do
    grep -o -- "\b$cmd [a-z][a-z]*\b" <<<"$cmd $rest" || true
done <"$T/c.synopses" | sort -u >"$T/c.subcmds"
[[ -s $T/c.cmds ]] || problem "no commands found in lwvhostctl --help"
section "$C" COMMANDS | tags | sed -e 's/^\.[A-Za-z]*[ \t]*//' |
    awk 'NF { print $1; if (NF > 1) print $1 " " $2 }' | sort -u >"$T/c.tagged"
while read -r cmd; do
    grep -qx -- "$cmd" "$T/c.tagged" ||
        problem "$C: no paragraph for command '$cmd' (from lwvhostctl --help)"
done < <(cat "$T/c.cmds" "$T/c.subcmds")

# ------------------------------- every documented option exists (reverse)

# check_tagged PAGE TAGS HELPFILE WHAT: every long option in the tag lines
# TAGS (of PAGE) is in HELPFILE.
check_tagged() {
    local page=$1 help=$3 what=$4 o
    long_opts <"$help" >"$T/known"
    while read -r o; do
        grep -qx -- "$o" "$T/known" || problem "$page: documents $o, which $what does not have"
    done < <(long_opts <"$2")
}
section "$D" OPTIONS | tags >"$T/d.tags"
[[ -s $T/d.tags ]] || problem "$D: no .TP paragraphs in OPTIONS"
check_tagged "$D" "$T/d.tags" "$T/d.help" "lwvhostd --help"
section "$B" OPTIONS | tags >"$T/b.tags"
[[ -s $T/b.tags ]] || problem "$B: no .TP paragraphs in OPTIONS"
check_tagged "$B" "$T/b.tags" "$T/b.help" "lwvhost-bench run/sweep --help"
tags <"$C" >"$T/c.tags"
check_tagged "$C" "$T/c.tags" "$T/c.help" "lwvhostctl --help"

# -------------------------------------------------------- --port's keys

# lwvhostd lists the keys it knows when given one it does not (and exits
# before it creates anything).
"$BUILD/lwvhostd" --port "x,path=$T/x.sock,no-such-key=1" >"$T/keys.err" 2>&1
rc=$?
[[ $rc == 2 ]] || problem "lwvhostd with an unknown --port key exited $rc, want 2"
sed -n "s/.*unknown key '[^']*' (\([a-z, ]*\)).*/\1/p" "$T/keys.err" | tr -d ' ' | tr ',' '\n' |
    sed '/^$/d' | sort -u >"$T/keys"
section "$D" OPTIONS | tags | first_words | sed -n 's/^\([a-z][a-z-]*\)=.*/\1/p' | sort -u \
    >"$T/keys.doc"
if [[ -s $T/keys ]]; then
    while read -r k; do
        grep -qx -- "$k" "$T/keys.doc" || problem "$D: no paragraph for the --port key $k="
    done <"$T/keys"
    while read -r k; do
        grep -qx -- "$k" "$T/keys" || problem "$D: documents the --port key $k=, which lwvhostd does not accept"
    done <"$T/keys.doc"
else
    # Its message changed: at least the keys of the --port line of --help.
    echo "$NAME: note: no key list in '$(head -c 200 "$T/keys.err")'; checking --help's instead"
    grep -- '--port NAME' "$T/d.help" | grep -o '[,[]\?[a-z]*=' | tr -d ',[=' | sort -u >"$T/keys"
    while read -r k; do
        grep -qx -- "$k" "$T/keys.doc" || problem "$D: no paragraph for the --port key $k="
    done <"$T/keys"
fi

# ----------------------------------------------- --uplink's and --vxlan's keys

# Their keys are listed in the option's own paragraph (in its tag or in a
# list under it), each as KEY=; that paragraph runs to the next .TP or .SS.
# paragraph OPT: the normalised text of lwvhostd.8's paragraph tagged OPT
paragraph() {
    awk -v o="$1" 'on && /^\.(TP|SS|SH)/ { exit }
                   prev ~ /^\.TP/ && index($0, o) == 1 { on = 1 }
                   on { print }
                   { prev = $0 }' "$D" | norm
}
for opt in uplink vxlan; do
    "$BUILD/lwvhostd" --$opt "x,no-such-key=1" >"$T/$opt.err" 2>&1
    sed -n "s/.*unknown key '[^']*' (\([a-z_, ]*\)).*/\1/p" "$T/$opt.err" | tr -d ' ' |
        tr ',' '\n' | sed '/^$/d' | sort -u >"$T/$opt.keys"
    if [[ ! -s $T/$opt.keys ]]; then
        problem "lwvhostd --$opt with an unknown key listed no keys: '$(head -c 200 "$T/$opt.err")'"
        continue
    fi
    paragraph ".BI \\\\-\\\\-$opt " >"$T/$opt.para"
    [[ -s $T/$opt.para ]] || problem "$D: no paragraph tagged --$opt"
    while read -r k; do
        grep -q -- "$k=" "$T/$opt.para" || problem "$D: the --$opt paragraph does not name its key $k="
    done <"$T/$opt.keys"
done

# ------------------------------------------------ lwvhostd.conf(5)'s keys

long_opts <"$T/d.help" | sed 's/^--//' | grep -vx -e help -e version | sort -u >"$T/conf.keys"
section "$F" KEYS | tags | first_words | sort -u >"$T/conf.doc"
[[ -s $T/conf.doc ]] || problem "$F: no .TP paragraphs in KEYS"
while read -r k; do
    grep -qx -- "$k" "$T/conf.doc" || problem "$F: no paragraph for the key '$k' (lwvhostd --$k)"
done <"$T/conf.keys"
while read -r k; do
    grep -qx -- "$k" "$T/conf.keys" || problem "$F: documents the key '$k', which is no option of lwvhostd"
done <"$T/conf.doc"

[[ $problems == 0 ]] || fail "$problems problems"
echo "$NAME: PASS (${#PAGES[@]} pages; $(long_opts <"$T/d.help" | wc -l) + $(long_opts <"$T/c.help" | wc -l) + $(long_opts <"$T/b.help" | wc -l) options, $(cat "$T/c.cmds" "$T/c.subcmds" | wc -l) lwvhostctl commands, $(wc -l <"$T/keys") --port keys, $(wc -l <"$T/conf.keys") config keys)"
