#!/bin/sh
# Runs each CUnit test binary given, prints its summary, and exits non-zero if any failed.
# A test that exits 77 was skipped (a kernel feature missing), as in liburing's tests.
status=0
passed=0
failed=0
skipped=0
for t in "$@"; do
	out=$("$t" 2>&1)
	rc=$?
	name=$(basename "$t")
	if [ $rc -eq 0 ]; then
		passed=$((passed + 1))
		echo "$out" | grep -E '^ +(suites|tests|asserts) ' | sed "s/^/$name: /"
	elif [ $rc -eq 77 ]; then
		skipped=$((skipped + 1))
		echo "$name: SKIPPED"
	else
		failed=$((failed + 1))
		status=1
		echo "$out"
		echo "$name: FAILED (exit $rc)"
	fi
done
echo "unit tests: $passed binaries passed, $failed failed, $skipped skipped"
exit $status
