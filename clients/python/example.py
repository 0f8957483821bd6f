#!/usr/bin/python3
"""A small ioeventd client in Python, on the generated stubs of clients/python.

Run with Debian's python3 (python3-grpcio, python3-protobuf) from the repository root:

    PYTHONPATH=clients/python /usr/bin/python3 clients/python/example.py \
        --address unix:///path/to/ioeventd.sock --pid PID --fd FD --device 0000:65:00.0

It creates an ioeventfd (idempotently: the same request_id twice gives the same one), reads the
ErrorInfo of a refused create, watches, deletes, and sees the removal on the watch. One JSON
line per step on stdout.
"""
import argparse
import json
import os
import queue
import sys
import threading
import uuid

import grpc

from google.rpc import error_details_pb2, status_pb2
from ioeventd.v1 import ioeventd_pb2 as pb
from ioeventd.v1 import ioeventd_pb2_grpc as rpc

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE_CONFIG = os.path.join(HERE, "..", "service_config.json")


def channel(address: str, service_config: bool = True) -> grpc.Channel:
    """A channel with the retry and deadline policy of clients/service_config.json."""
    options = [("grpc.enable_retries", 1 if service_config else 0)]
    if service_config:
        with open(SERVICE_CONFIG) as f:
            options.append(("grpc.service_config", f.read()))
    return grpc.insecure_channel(address, options=options)


def error_info(err: grpc.RpcError) -> dict:
    """The google.rpc.ErrorInfo of a refused call (grpc-status-details-bin), as a dict."""
    for key, value in err.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        status = status_pb2.Status.FromString(value)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Unpack(info):
                return {"reason": info.reason, "domain": info.domain, "metadata": dict(info.metadata)}
    return {}


def say(step: str, **fields) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True, help="unix:///…/ioeventd.sock or host:port")
    ap.add_argument("--device", default="0000:65:00.0")
    ap.add_argument("--pid", type=int, required=True, help="the VMM holding the eventfd")
    ap.add_argument("--fd", type=int, required=True, help="the eventfd's number in that VMM")
    ap.add_argument("--owner", default="vm-python")
    args = ap.parse_args()

    with channel(args.address) as ch:
        stub = rpc.IoeventfdServiceStub(ch)
        info = stub.GetAgentInfo(pb.GetAgentInfoRequest(), timeout=10)
        say("info", version=info.version, ready=info.ready)

        # Watch first: the snapshot, then every change, read on a thread.
        events: "queue.Queue[pb.IoeventfdEvent]" = queue.Queue()
        watch = stub.WatchIoeventfds(pb.WatchIoeventfdsRequest(owner=args.owner))
        threading.Thread(target=lambda: [events.put(e) for e in watch], daemon=True).start()
        first = events.get(timeout=10)
        say("watch", type=pb.IoeventfdEvent.Type.Name(first.type), revision=first.revision)

        spec = pb.IoeventfdSpec(
            device=args.device, bar=0, offset=0x88704, width=4, data=0,
            source=pb.Source(pid=args.pid, fd=args.fd), labels={"purpose": "msi-rearm"},
        )
        # One request_id per intended ioeventfd: a retry with it (after a timeout, a lost
        # answer, an agent restart) returns the ioeventfd the first attempt made.
        request_id = str(uuid.uuid4())
        req = pb.CreateIoeventfdRequest(spec=spec, owner=args.owner, request_id=request_id)
        created = stub.CreateIoeventfd(req, timeout=10)
        again = stub.CreateIoeventfd(req, timeout=10)
        say("create", id=created.id, retried_id=again.id)

        # The same key under another request_id: refused, the reason in ErrorInfo.
        try:
            other = pb.CreateIoeventfdRequest(spec=spec, owner=args.owner, request_id=str(uuid.uuid4()))
            stub.CreateIoeventfd(other, timeout=10)
            say("rejection", code="OK")
        except grpc.RpcError as err:
            say("rejection", code=err.code().name, **error_info(err))

        added = events.get(timeout=10)
        say("event", type=pb.IoeventfdEvent.Type.Name(added.type), id=added.ioeventfd.id)

        stub.DeleteIoeventfd(pb.DeleteIoeventfdRequest(id=created.id), timeout=10)
        # A delete is not retried by the service config: retry it yourself, and take NOT_FOUND
        # on the retry as done (the first attempt deleted it).
        try:
            stub.DeleteIoeventfd(pb.DeleteIoeventfdRequest(id=created.id), timeout=10)
            deleted_again = "OK"
        except grpc.RpcError as err:
            deleted_again = err.code().name
        removed = events.get(timeout=10)
        say(
            "delete", id=created.id, retry=deleted_again,
            event=pb.IoeventfdEvent.Type.Name(removed.type),
            cause=pb.RemovalCause.Name(removed.cause),
        )
        watch.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(main())
