# Benchmarks. `make bench` runs every bench/ script, the comparison with etcd
# and ZooKeeper last (minutes; writes bench/RESULTS.md); `make bench-smoke`
# runs the comparison with tiny sizes in well under a minute.

PYTHON ?= .venv/bin/python
# Every runnable script in bench/ (helpers start with an underscore).
BENCH_SCRIPTS := $(filter-out bench/compare.py,$(sort $(wildcard bench/[a-z]*.py)))

.PHONY: bench bench-smoke bench-deps

bench-deps:
	$(PYTHON) -m pip install -q --disable-pip-version-check -e '.[bench]'

bench: bench-deps
	@failed=""; \
	for script in $(BENCH_SCRIPTS); do \
		echo "== $$script"; \
		$(PYTHON) $$script || failed="$$failed $$script"; \
	done; \
	echo "== bench/compare.py"; \
	$(PYTHON) bench/compare.py || failed="$$failed bench/compare.py"; \
	if [ -n "$$failed" ]; then echo "failed:$$failed"; exit 1; fi

bench-smoke: bench-deps
	$(PYTHON) bench/compare.py --quick
