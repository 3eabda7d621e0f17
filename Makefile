# microagent — see README.md. `make demo` and `make test` work on a fresh Debian 12 machine with the .NET SDK.
SHELL := /bin/bash
.DEFAULT_GOAL := build
CONFIG ?= Release
DOTNET ?= dotnet
export DOTNET_CLI_TELEMETRY_OPTOUT := 1
export DOTNET_NOLOGO := 1
# The model runner tests find llama-server here (scripts/llama-server.sh builds it into its cache; docs/ARCHITECTURE.md "Model runner").
export MICROAGENT_LLAMA_SERVER ?= $(shell bash scripts/llama-server.sh --print 2>/dev/null)

BIN := bin
AGENT := $(BIN)/microagent-agent
CLI := $(BIN)/microagent
IMAGE := build/images/default

.PHONY: install build pack demo test unit e2e bench clean check-dotnet mcp-client

check-dotnet:
	@command -v $(DOTNET) >/dev/null || { echo "make: the .NET SDK (dotnet) is required: https://learn.microsoft.com/dotnet/core/install/linux-debian" >&2; exit 1; }

install:
	@bash scripts/install.sh

# Incremental: each step runs only when its inputs changed, so a second `make build` (or `make test`) does no dotnet work.
find_inputs = $(shell find $(1) \( -name bin -o -name obj -o -name node_modules \) -prune -o \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -print)
PROPS := Directory.Build.props Directory.Packages.props
SRC_INPUTS := $(call find_inputs,src) $(PROPS)
AGENT_INPUTS := $(call find_inputs,src/Microagent.Guest src/Microagent.Protocol src/Microagent.Interop) src/Directory.Build.props $(PROPS)
ALL_INPUTS := $(SRC_INPUTS) $(call find_inputs,tests samples bench) microagent.slnx
SOLUTION_STAMP := build/.solution.stamp

build: check-dotnet $(SOLUTION_STAMP) $(AGENT) $(CLI) $(IMAGE)/index.json
	@echo "built $(CLI) and $(AGENT)"

# Libraries and test assemblies (JIT, for the test runners).
$(SOLUTION_STAMP): $(ALL_INPUTS)
	$(DOTNET) build microagent.slnx -c $(CONFIG) -v quiet -nologo
	@mkdir -p $(@D) && touch $@

# The guest agent and the host binary: both NativeAOT net10.0, one native executable each (docs/ARCHITECTURE.md "Binaries").
$(AGENT): $(AGENT_INPUTS)
	$(DOTNET) publish src/Microagent.Guest -c $(CONFIG) -o build/agent -v quiet -nologo
	@mkdir -p $(BIN) && install -m 0755 build/agent/microagent-agent $@

$(IMAGE)/index.json: scripts/build-default-image.sh $(wildcard /bin/busybox)
	@bash scripts/build-default-image.sh $(IMAGE)

$(CLI): $(SRC_INPUTS)
	$(DOTNET) publish src/Microagent.Cli -c $(CONFIG) -o build/cli -v quiet -nologo
	@mkdir -p $(BIN) && rm -rf $(BIN)/lib && install -m 0755 build/cli/microagent $@

# The NuGet package `Microagent` (docs/ARCHITECTURE.md "Package"): the library with its Interop and Protocol assemblies,
# XML docs, and bin/microagent, bin/microagent-agent and the default image as native assets. Its own target: `make build`
# and `make test` never pack.
PACKAGES := build/packages
pack: build
	@rm -f $(PACKAGES)/Microagent.*.nupkg
	$(DOTNET) pack src/Microagent -c $(CONFIG) -o $(PACKAGES) -v quiet -nologo \
	  -p:MicroagentNativeDir=$(CURDIR)/$(BIN)/ -p:MicroagentImageDir=$(CURDIR)/$(IMAGE)/ \
	  -p:RepositoryCommit=$$(git rev-parse HEAD 2>/dev/null) -p:RepositoryUrl=$$(git remote get-url origin 2>/dev/null)
	@ls $(PACKAGES)/Microagent.*.nupkg

# The official MCP TypeScript SDK client used by the MCP end-to-end tests (versions pinned in package-lock.json).
mcp-client: tests/mcp/node_modules/.package-lock.json
tests/mcp/node_modules/.package-lock.json: tests/mcp/package.json tests/mcp/package-lock.json
	cd tests/mcp && npm ci --no-audit --no-fund --loglevel=error

demo: install build
	@echo '$$ ./bin/microagent run -- sh -c '"'"'uname -a; echo to-stderr >&2; exit 42'"'"
	@./bin/microagent run -- sh -c 'uname -a; echo to-stderr >&2; exit 42'; code=$$?; \
	  echo "(exit code $$code)"; [ $$code -eq 42 ] || { echo "demo: expected exit code 42" >&2; exit 1; }

unit: build
	$(DOTNET) test tests/Microagent.Tests -c $(CONFIG) --no-build -nologo

e2e: build mcp-client
	$(DOTNET) test tests/Microagent.EndToEnd.Tests -c $(CONFIG) --no-build -nologo

test: install build mcp-client
	@rc=0; \
	$(DOTNET) test tests/Microagent.Tests -c $(CONFIG) --no-build -nologo || rc=1; \
	$(DOTNET) test tests/Microagent.EndToEnd.Tests -c $(CONFIG) --no-build -nologo || rc=1; \
	exit $$rc

bench: install build
	@for b in bench/*.sh; do bash $$b || exit 1; done

clean:
	rm -rf bin build src/*/bin src/*/obj tests/*/bin tests/*/obj
