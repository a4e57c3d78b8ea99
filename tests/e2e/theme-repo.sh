#!/bin/sh
# A git repository holding a small theme as a `wp-content`-only source, for the deploy tests and
# the deploy benchmark: branch `good` (tag `v1`), branch `v2` (a small change) and branch
# `broken` (its functions.php calls an undefined function: every page is a PHP fatal, HTTP 500).
# Each page prints "PRESSLUFT-THEME <branch>". Usage: theme-repo.sh DIR (re-created).
set -eu
dir=$1
theme=pressluft-e2e
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
git init -q -b good
git config user.email e2e@pressluft.test
git config user.name "Pressluft e2e"
write() {
    mkdir -p "themes/$theme"
    printf '/*\nTheme Name: Pressluft e2e\nVersion: %s\n*/\n' "$1" > "themes/$theme/style.css"
    printf '<?php\necho "PRESSLUFT-THEME %s";\n' "$1" > "themes/$theme/index.php"
    printf '<?php\n%s\n' "$2" > "themes/$theme/functions.php"
}
write good "// nothing"
git add -A && git commit -qm good && git tag v1
git checkout -q -b v2
write v2 "// nothing"
git commit -qam v2
git checkout -q -b broken good
write broken "pressluft_e2e_undefined_function();"
git commit -qam broken
git checkout -q good
echo "$theme"
