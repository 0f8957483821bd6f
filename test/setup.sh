#!/usr/bin/env bash
# Installs the Debian packages the tests use and proves that each tool works: not only that a
# command of that name exists (a green CI on a machine where something was installed by hand can
# hide a missing package, as protoc without libprotobuf-dev's well-known types once did).
#
#   tool                what the tests do with it                       Debian packages
#   protoc              the API contract, the independent client        protobuf-compiler libprotobuf-dev
#   prometheus/promtool metrics end to end, rule tests                  prometheus
#   lspci               checks the sysfs inventory against              pciutils
#   systemd-analyze     verifies deploy/systemd/ioeventd.service        systemd
#   qemu-system-x86_64  the VM tier (test/vm/): real kernels            qemu-system-x86
#   busybox (static)    the VM guest's initramfs                        busybox-static
#   cpio                the VM guest's initramfs                        cpio
#   openssl             test CAs and certificates (test/security/)      openssl
#   grpc_python_plugin  Python client stubs (clients/python, test/clients)  protobuf-compiler-grpc
#   python3 grpc        the Python example client runs against an agent  python3-grpcio python3-protobuf
#   protoc-gen-go(-grpc) Go client stubs (clients/go)                    protoc-gen-go protoc-gen-go-grpc
#   go                  compiles the Go example against Debian's gRPC    golang-go golang-google-grpc-dev
#                                                                        golang-google-protobuf-dev
#                                                                        golang-google-genproto-dev
#                                                                        golang-github-golang-protobuf-1-5-dev
#   (the 1-5 shim is named: apt otherwise picks 1-3, whose proto.Marshal predates APIv2 messages)
#
# Python is Debian's /usr/bin/python3 (where python3-grpcio installs), never a python3 that an
# earlier PATH entry (pyenv, a venv) may provide. Go builds in GOPATH mode against
# /usr/share/gocode, the sources the golang-*-dev packages install; nothing is downloaded.
#
# A tool whose check fails has its packages installed (or reinstalled, when present but broken);
# if the check still fails, the script stops with one line naming the tool, the packages and the
# tool's own last error line.
set -euo pipefail

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/check.log"
apt_ready=0

# --- checks: each proves the tool does its job here, output in $log -----------------------------

check_protoc() { # compiles a file that imports a well-known type
  mkdir -p "$work/proto"
  printf '%s\n' 'syntax = "proto3";' 'import "google/protobuf/timestamp.proto";' \
    'message Probe { google.protobuf.Timestamp at = 1; }' >"$work/proto/probe.proto"
  protoc -I"$work/proto" --include_imports --descriptor_set_out="$work/probe.pb" \
    "$work/proto/probe.proto" && [ -s "$work/probe.pb" ]
}
check_prometheus() { prometheus --version && promtool --version; }
check_lspci() { # reads a one-device sysfs tree of our own (vendor 1af4, device 1110)
  local dev="$work/sys/bus/pci/devices/0000:00:01.0"
  mkdir -p "$dev"
  { printf '\xf4\x1a\x10\x11'; head -c 60 /dev/zero; } >"$dev/config"
  echo 0x1af4 >"$dev/vendor"
  echo 0x1110 >"$dev/device"
  echo 0x050000 >"$dev/class"
  echo 0 >"$dev/irq"
  printf '0x0000000000000000 0x0000000000000000 0x0000000000000000\n' >"$dev/resource"
  lspci -A linux-sysfs -O "sysfs.path=$work/sys/bus/pci" -n | tee /dev/stderr | grep -q '1af4:1110'
}
check_systemd_analyze() { systemd-analyze --version; }
check_qemu() { # starts a machine and quits it through its monitor
  echo quit | timeout 60 qemu-system-x86_64 -machine none -nodefaults -display none \
    -serial none -monitor stdio
}
check_busybox() { # the guest needs the static one: it runs with no libc in the initramfs
  local bin=/bin/busybox
  [ -x "$bin" ] || bin="$(command -v busybox)"
  "$bin" true && file -L "$bin" | tee /dev/stderr | grep -q 'statically linked'
}
check_cpio() { (cd "$work" && echo . | cpio -o -H newc >/dev/null); }
check_openssl() { openssl version && openssl genpkey -algorithm ed25519 >/dev/null; }
check_grpc_python_plugin() { # generates a service stub for a one-RPC file
  mkdir -p "$work/grpcpy" "$work/proto"
  printf '%s\n' 'syntax = "proto3";' 'package probe;' 'message M {}' \
    'service S { rpc Call(M) returns (M); }' >"$work/proto/svc.proto"
  protoc -I"$work/proto" --python_out="$work/grpcpy" --grpc_python_out="$work/grpcpy" \
    --plugin=protoc-gen-grpc_python="$(command -v grpc_python_plugin)" "$work/proto/svc.proto" &&
    grep -q 'class SStub' "$work/grpcpy/svc_pb2_grpc.py"
}
check_python_grpc() { # imports grpc and protobuf, serialises a well-known type
  /usr/bin/python3 -c 'import grpc, google.protobuf.timestamp_pb2 as t
print(grpc.__version__, len(t.Timestamp(seconds=1).SerializeToString()))'
}
check_protoc_gen_go() { # both Go plugins generate code for the same service file
  mkdir -p "$work/gogen" "$work/proto"
  printf '%s\n' 'syntax = "proto3";' 'package probe;' 'option go_package = "example.com/probe";' \
    'message M {}' 'service S { rpc Call(M) returns (M); }' >"$work/proto/gosvc.proto"
  protoc -I"$work/proto" --go_out="$work/gogen" --go_opt=paths=source_relative \
    --go-grpc_out="$work/gogen" --go-grpc_opt=paths=source_relative "$work/proto/gosvc.proto" &&
    grep -q 'func NewSClient' "$work/gogen/gosvc_grpc.pb.go"
}
check_go() { # compiles and runs a program that uses grpc, protobuf and genproto, offline
  local src="$work/gopath/src/probe"
  mkdir -p "$src"
  cat >"$src/main.go" <<'GO'
package main

import (
	"fmt"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func main() {
	// gRPC's codec on an APIv2 message (what protoc-gen-go writes): needs the 1.5 shim.
	codec := encoding.GetCodec("proto")
	b, err := codec.Marshal(timestamppb.New(timestamppb.Now().AsTime()))
	var back timestamppb.Timestamp
	if err == nil {
		err = codec.Unmarshal(b, &back)
	}
	if err != nil || back.Seconds == 0 {
		panic(fmt.Sprint("codec round trip: ", err))
	}
	st, err := status.New(codes.InvalidArgument, "probe").WithDetails(&errdetails.ErrorInfo{Reason: "PROBE"})
	if err != nil {
		panic(err)
	}
	for _, d := range status.Convert(st.Err()).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			fmt.Println("go grpc ok", info.Reason)
		}
	}
}
GO
  (cd "$src" && GO111MODULE=off GOPATH="$work/gopath:/usr/share/gocode" \
    GOCACHE="$work/gocache" GOPROXY=off go run .) | tee /dev/stderr | grep -q 'go grpc ok'
}

# --- install or repair -------------------------------------------------------------------------

install_packages() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "test/setup.sh: need root to install: $*" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ "$apt_ready" -eq 0 ]; then
    apt-get update -qq
    apt_ready=1
  fi
  # --reinstall repairs a package whose files were damaged or removed; recommends stay off, so
  # every package a tool needs is named above.
  apt-get install -y -qq --reinstall --no-install-recommends "$@" >"$work/apt.log" 2>&1 || {
    echo "test/setup.sh: apt-get install $* failed: $(tail -n 1 "$work/apt.log")" >&2
    exit 1
  }
}

ensure() { # ensure TOOL CHECK PACKAGE...
  local tool="$1" check="$2"
  shift 2
  if "$check" >"$log" 2>&1; then return 0; fi
  echo "test/setup.sh: $tool does not work here; installing $*" >&2
  install_packages "$@"
  if ! "$check" >"$log" 2>&1; then
    echo "test/setup.sh: $tool still fails after installing $* ($(tail -n 1 "$log"))" >&2
    exit 1
  fi
}

ensure protoc check_protoc protobuf-compiler libprotobuf-dev
ensure prometheus check_prometheus prometheus
ensure lspci check_lspci pciutils
ensure systemd-analyze check_systemd_analyze systemd
ensure qemu-system-x86_64 check_qemu qemu-system-x86
ensure busybox check_busybox busybox-static file
ensure cpio check_cpio cpio
ensure openssl check_openssl openssl
ensure grpc_python_plugin check_grpc_python_plugin protobuf-compiler-grpc
ensure python3-grpcio check_python_grpc python3-grpcio python3-protobuf
ensure protoc-gen-go check_protoc_gen_go protoc-gen-go protoc-gen-go-grpc
ensure go check_go golang-go golang-google-grpc-dev golang-google-protobuf-dev \
  golang-google-genproto-dev golang-github-golang-protobuf-1-5-dev
