#!/usr/bin/python3
"""Calls ListIoeventfds back to back for --seconds through the channel of
clients/python/example.py (with or without clients/service_config.json) and prints one JSON
line: every call's start, end and outcome; plus, when --pid/--fd are given, the ids that a
create with one request_id gave before and after (the agent is restarted meanwhile)."""
import argparse
import json
import time

import grpc

from example import channel
from ioeventd.v1 import ioeventd_pb2 as pb
from ioeventd.v1 import ioeventd_pb2_grpc as rpc

ap = argparse.ArgumentParser()
ap.add_argument("--address", required=True)
ap.add_argument("--seconds", type=float, default=6)
ap.add_argument("--no-service-config", action="store_true")
ap.add_argument("--pid", type=int)
ap.add_argument("--fd", type=int)
ap.add_argument("--device", default="0000:65:00.0")
args = ap.parse_args()

calls = []
ids = []
with channel(args.address, service_config=not args.no_service_config) as ch:
    stub = rpc.IoeventfdServiceStub(ch)
    create = None
    if args.pid is not None:
        create = pb.CreateIoeventfdRequest(
            owner="vm-retry", request_id="retry-probe-1",
            spec=pb.IoeventfdSpec(device=args.device, bar=0, offset=0x2000, width=4, data=7,
                                  source=pb.Source(pid=args.pid, fd=args.fd)))
        ids.append(stub.CreateIoeventfd(create, timeout=30).id)
    until = time.time() + args.seconds
    while time.time() < until:
        start = time.time()
        try:
            stub.ListIoeventfds(pb.ListIoeventfdsRequest(owner="vm-retry"), timeout=30)
            outcome = "OK"
        except grpc.RpcError as err:
            outcome = err.code().name
            time.sleep(0.02)
        calls.append([start, time.time(), outcome])
    if create is not None:
        ids.append(stub.CreateIoeventfd(create, timeout=30).id)
print(json.dumps({"calls": calls, "ids": ids}), flush=True)
