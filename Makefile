# Every target that needs the venv or system tools bootstraps first, so each works alone on a
# fresh Debian machine (as root). LAB names the lab (namespace prefix), default "ihb";
# TOPOLOGY picks another topology file for lab-up (lab/topologies/*/topology.yaml).
VENV   := .venv
PY     := $(VENV)/bin/python
LABCTL := $(VENV)/bin/labctl
LAB    ?= ihb
PYTEST := $(PY) -m pytest

.PHONY: bootstrap lab-up lab-down test test-unit test-lab lint capture status bench bench-lacp \
        bench-etrunk bench-igmp bench-forwarding soak soak-bfd

bootstrap:
	@./scripts/bootstrap.sh

lab-up: bootstrap
	$(LABCTL) up --name $(LAB) $(if $(TOPOLOGY),--topology $(TOPOLOGY))

lab-down: bootstrap
	$(LABCTL) down --name $(LAB)

status: bootstrap
	$(LABCTL) status --name $(LAB)

# pytest exits 5 when it collected nothing: that is a broken suite, not a pass.
test: bootstrap
	@$(PYTEST) -q tests/unit tests/lab; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

test-unit: bootstrap
	$(PYTEST) -q tests/unit

test-lab: bootstrap
	$(PYTEST) -q -m lab tests/lab

lint: bootstrap
	$(VENV)/bin/ruff check .

# make capture DEVICE=DeviceA IF=GE0/1/2 [FILE=a.pcap]   (FILE=- streams to stdout)
DEVICE ?= DeviceA
IF     ?= GE0/1/2
FILE   ?= $(LAB)-$(DEVICE)-$(subst /,-,$(IF)).pcap
capture: bootstrap
	$(LABCTL) capture --name $(LAB) $(DEVICE) $(IF) -w $(FILE)

# The failover benchmark (root): every scenario x configuration, N runs of the fast ones,
# results in bench/results/<timestamp>/ (JSON, Markdown table, PNG timelines and outages).
N ?= 10
bench: bootstrap
	$(PY) scripts/bench_failover.py -n $(N)

# Component timings from the daemons' own logs (root); each prints medians/percentiles
ROUNDS ?= 10
bench-lacp: bootstrap
	$(PY) scripts/bench_lacp.py --rounds $(ROUNDS)

bench-etrunk: bootstrap
	$(PY) scripts/bench_etrunk.py --rounds 20

bench-igmp: bootstrap
	$(PY) scripts/bench_igmp_sync.py

bench-forwarding: bootstrap
	$(PY) scripts/bench_forwarding.py

# The failure soak (root): a randomized failure schedule with traffic, every hot-backup
# invariant checked (scripts/soak.py). SEED replays one schedule exactly; results (JSON,
# Markdown, plot, pcapng of any violation) in bench/results/soak-*/.
EVENTS ?= 1000
SEED ?=
soak: bootstrap
	$(PY) scripts/soak.py --events $(EVENTS) $(if $(SEED),--seed $(SEED))

MINUTES ?= 10
soak-bfd: bootstrap
	$(PY) scripts/soak_bfd.py --minutes $(MINUTES)
# Wireshark/tshark dissectors for the lab's E-Trunk hellos and RBS channel
# (scripts/wireshark/README.md). Installs for the current user; Wireshark loads Lua plugins
# from this folder at start (Help > About > Folders > Personal Lua Plugins).
WIRESHARK_PLUGIN_DIR ?= $(HOME)/.local/lib/wireshark/plugins

.PHONY: wireshark-plugin
wireshark-plugin:
	install -d $(WIRESHARK_PLUGIN_DIR)
	install -m 0644 scripts/wireshark/ihb.lua $(WIRESHARK_PLUGIN_DIR)/ihb.lua
	@echo "installed $(WIRESHARK_PLUGIN_DIR)/ihb.lua (restart Wireshark; key: -o etrunk.key:KEY)"
