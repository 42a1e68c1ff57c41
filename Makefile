# tinyship: `make demo` runs the whole pipeline; `make test` runs the tests. Both set up .venv first.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
TS     ?= $(VENV)/bin/tinyship
STAMP  := $(VENV)/.installed
RUN    ?= demo
RECIPE ?= recipes/demo.yaml
OUT    := build/$(RUN)
FORCE  ?= --force
BENCH_VENV := .venv-bench
# TFLM_DIR: the TensorFlow Lite Micro source tree for the firmware (profile --emulate), as a make
# variable or an environment variable; unset: ../shared/vendor/tflite-micro when it exists, else
# build/tflm-src/tree, which `make tflm-source` clones and generates (network access needed)
TFLM_DIR ?=
ifneq ($(TFLM_DIR),)
export TFLM_DIR
endif

.PHONY: setup system-deps lint demo kws kws-speakers distill export profile report profile-ssh profile-adb pi-sim pi-sim-stop tflm-source zoo check test test-slow bench bench-env clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=/path/to/python3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all]'
	@touch $(STAMP)

# Debian packages the tests need: an sshd for the SSH runner, Chromium for the report's
# rendering test, gcc and arm-none-eabi-gcc + newlib for the MCU C files and firmware,
# qemu-system-arm to run the firmware on emulated Arm cores (profile --emulate), debootstrap +
# qemu-user-static for make pi-sim. Installed once, as root.
system-deps:
	@missing=""; \
	command -v sshd >/dev/null || test -x /usr/sbin/sshd || missing="$$missing openssh-server openssh-client"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v arm-none-eabi-gcc >/dev/null || missing="$$missing gcc-arm-none-eabi libnewlib-arm-none-eabi"; \
	test -e /usr/lib/arm-none-eabi/newlib/librdimon.a || missing="$$missing libnewlib-arm-none-eabi"; \
	command -v qemu-system-arm >/dev/null || missing="$$missing qemu-system-arm"; \
	command -v debootstrap >/dev/null || test -x /usr/sbin/debootstrap || missing="$$missing debootstrap"; \
	command -v qemu-aarch64-static >/dev/null || missing="$$missing qemu-user-static binfmt-support"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing Debian packages:$$missing (not root); tests that need them are skipped"; fi; \
	fi

demo: setup
	$(TS) run --recipe $(RECIPE) --run $(OUT) $(FORCE)

# Keyword spotting on FSDD for a hearing aid: teacher once, student search under the recipe's device
# budgets, each chosen student trained over seeds (distilled and hard labels), exported, profiled,
# shipped (MCU C files beside the int8 .tflite). Summary: build/kws/search.json. The runs go one per
# core, each on one torch thread (python -m tinyship.search --jobs N; the figures do not depend on N).
kws: setup
	$(PY) -m tinyship.search --recipe recipes/kws_fsdd.yaml --out build/kws

# Leave-one-speaker-out with the architecture `make kws` chose for the Cortex-M4F, over seeds 0, 1, 2
# (one seed moves a speaker by up to 12 points; the rule is judged on the means), two runs at once.
kws-speakers: setup
	$(PY) -m benchmarks.kws_speakers --seeds 0,1,2 --jobs 2

distill: setup
	$(TS) distill --recipe $(RECIPE) --run $(OUT) $(FORCE)

export: setup
	$(TS) export --run $(OUT) $(FORCE)

profile: setup
	$(TS) profile --run $(OUT) $(FORCE)

report: setup
	$(TS) report --run $(OUT)

# SSH_CONFIG: an ssh -F file (make pi-sim writes build/pi-sim/ssh_config for HOST=pi-sim)
SSH_CONFIG ?= $(if $(filter pi-sim,$(HOST)),build/pi-sim/ssh_config,)
profile-ssh: setup
	@test -n "$(HOST)" || { echo "usage: make profile-ssh HOST=user@host [RUN=demo] [SSH_CONFIG=file]"; exit 2; }
	$(TS) profile --run $(OUT) --ssh $(HOST) $(if $(SSH_CONFIG),--ssh-config $(SSH_CONFIG),) $(FORCE)

# A Raspberry Pi stand-in: arm64 Debian (debootstrap + qemu-user-static) with aarch64 LiteRT/onnxruntime
# wheels and its own sshd on 127.0.0.1:2222 (needs root; the second stage runs under emulation: minutes
# on an idle machine, much longer under load). Then: make profile-ssh HOST=pi-sim
pi-sim: setup
	devices/pi_sim/pi_sim.sh build
	devices/pi_sim/pi_sim.sh start

pi-sim-stop:
	devices/pi_sim/pi_sim.sh stop

profile-adb: setup
	@test -n "$(SERIAL)" || { echo "usage: make profile-adb SERIAL=<adb serial> BENCHMARK_MODEL=/path/to/benchmark_model [RUN=demo]"; exit 2; }
	$(TS) profile --run $(OUT) --adb $(SERIAL) --benchmark-model $(BENCHMARK_MODEL) $(FORCE)

# The TFLite Micro tree from the commits pinned in devices/firmware/pins.py (those of
# ../shared/vendor/tflite-micro/README.md), for machines without that tree: git clones into
# build/tflm-src/, TFLM's create_tflm_tree.py writes build/tflm-src/tree. DRY_RUN=1 prints the commands.
tflm-source: setup
	$(PY) -m devices.firmware.pins --dest build/tflm-src $(if $(DRY_RUN),--dry-run,)

check: setup
	$(TS) check --run $(OUT)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup system-deps lint
	$(PY) -m pytest -q

# the slow tests include kind: savedmodel members, so the tensorflow extra is installed first
test-slow: setup system-deps
	$(PY) -m pip install --quiet -e '.[tensorflow]'
	$(PY) -m pytest -q -m slow

# BENCH_JOBS benchmarks at once (1 torch thread each); 2 on the 2-core box: about 2.8-2.9 h in all
# (estimate in benchmarks/RESULTS.md). A killed run resumes from build/bench-cache.
BENCH_JOBS ?= 2
bench: setup
	$(PY) -m benchmarks.run_all --jobs $(BENCH_JOBS)

# Issue 37: the generated zoo of int8 models emulated on M4F/M7/M33/M55 (cached under build/zoo;
# cold: ~45 min on 2 cores), then the estimators' out-of-sample checks and the committed bands
# file devices/estimator_bands.json (results: benchmarks/results/estimator_validation.md).
zoo: setup
	$(PY) -m benchmarks.zoo_models
	$(PY) -m benchmarks.estimator_validation --write

clean:
	rm -rf build $(VENV) $(BENCH_VENV) *.egg-info
