// A small ioeventd client in Go, on the stubs of clients/go (protoc-gen-go, protoc-gen-go-grpc)
// and the channel policy of clients/service_config.json (deadlines, waitForReady, retries on
// UNAVAILABLE for the idempotent RPCs). Builds against Debian's golang-google-grpc-dev:
//
//	deno task clients:go   # or: GO111MODULE=off GOPATH=…:/usr/share/gocode go build
//	example -address unix:///run/ioeventd/ioeventd.sock -pid PID -fd FD
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"log"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	ioeventdv1 "ioeventd.io/clients/go/ioeventd/v1"
)

//go:embed service_config.json
var serviceConfig string

func main() {
	address := flag.String("address", "unix:///run/ioeventd/ioeventd.sock", "agent address")
	device := flag.String("device", "0000:65:00.0", "PCI address")
	pid := flag.Int("pid", 0, "the VMM holding the eventfd")
	fd := flag.Int("fd", 0, "the eventfd's number in that VMM")
	owner := flag.String("owner", "vm-go", "owner (the VM)")
	requestID := flag.String("request-id", "", "one per intended ioeventfd; a retry reuses it")
	flag.Parse()

	conn, err := grpc.Dial(*address, grpc.WithInsecure(), grpc.WithDefaultServiceConfig(serviceConfig))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	client := ioeventdv1.NewIoeventfdServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	info, err := client.GetAgentInfo(ctx, &ioeventdv1.GetAgentInfoRequest{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("agent", info.GetVersion(), "ready", info.GetReady())

	created, err := client.CreateIoeventfd(ctx, &ioeventdv1.CreateIoeventfdRequest{
		Owner:     *owner,
		RequestId: *requestID,
		Spec: &ioeventdv1.IoeventfdSpec{
			Device: *device, Bar: 0, Offset: 0x88704, Width: 4, Data: 0,
			Source: &ioeventdv1.Source{Pid: int32(*pid), Fd: int32(*fd)},
		},
	})
	if err != nil {
		// Every rejection carries google.rpc.ErrorInfo with the machine-readable reason.
		for _, d := range status.Convert(err).Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				log.Fatalf("refused: %s (%v)", info.Reason, info.Metadata)
			}
		}
		log.Fatal(err)
	}
	fmt.Println("created", created.GetId())

	// DeleteIoeventfd is not retried by the service config: on a retry of your own, NOT_FOUND
	// means the first attempt deleted it.
	_, err = client.DeleteIoeventfd(ctx, &ioeventdv1.DeleteIoeventfdRequest{
		Selector: &ioeventdv1.DeleteIoeventfdRequest_Id{Id: created.GetId()},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted", created.GetId())
}
