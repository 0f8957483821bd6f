// `fleet watch`: one WatchIoeventfds stream per host, events printed as they come, prefixed
// with the host. Connecting (up to the first SNAPSHOT) goes through the bounded pool with
// the per-host timeout; a stream that breaks later marks its host failed. Ends after
// --duration, on SIGINT, or when every stream has ended, with the per-host results.
import type * as grpc from "@grpc/grpc-js";
import type { IoeventfdEvent__Output } from "../api/generated/ioeventd/v1/IoeventfdEvent.ts";
import { describeFailure, type HostConnection } from "./fleet_connect.ts";
import type { Host } from "./fleet_hosts.ts";
import { mapBounded, type PoolOptions } from "./fleet_pool.ts";
import type { Progress } from "./fleet_progress.ts";
import { type HostResult, hostResult } from "./fleet_report.ts";

export interface WatchOptions extends PoolOptions {
  filter: { device: string; owner: string };
  /** Stop after this long; null runs until SIGINT or until every stream has ended. */
  durationMs: number | null;
  json: boolean;
  write: (line: string) => void;
  progress: Progress;
}

interface Stream {
  call: grpc.ClientReadableStream<IoeventfdEvent__Output> | null;
  events: number;
  snapshot: number;
  failure: { error: string; message: string } | null;
  connectedMs: number;
  closed: boolean;
}

const hex = (v: string | number) => "0x" + BigInt(v).toString(16);

export function eventText(e: IoeventfdEvent__Output): string {
  if (e.type === "SNAPSHOT") {
    return `SNAPSHOT ${e.snapshot.length} ioeventfds (revision ${e.revision})`;
  }
  const i = e.ioeventfd;
  const cause = e.type === "REMOVED" ? ` cause=${e.cause}` : "";
  return `${e.type} ${i?.id} owner=${i?.owner} ${i?.spec?.device} bar${i?.spec?.bar}+${
    hex(i?.spec?.offset ?? 0)
  } w${i?.spec?.width}=${hex(i?.spec?.data ?? 0)} state=${i?.state}${cause}`;
}

export async function watchFleet(
  hosts: Host[],
  conns: HostConnection[],
  opts: WatchOptions,
): Promise<HostResult[]> {
  const started = performance.now();
  let stopping = false;
  let wake: () => void = () => {};
  const streams: Stream[] = hosts.map(() => ({
    call: null,
    events: 0,
    snapshot: 0,
    failure: null,
    connectedMs: 0,
    closed: false,
  }));
  const emit = (host: Host, e: IoeventfdEvent__Output) =>
    opts.write(
      opts.json
        ? JSON.stringify({ host: host.name, address: host.address, event: e })
        : `${host.name}  ${eventText(e)}`,
    );
  const lost = (host: Host, s: Stream, failure: { error: string; message: string }) => {
    s.closed = true;
    if (stopping || s.failure) return;
    s.failure = failure;
    opts.write(
      opts.json
        ? JSON.stringify({ host: host.name, address: host.address, ...failure })
        : `${host.name}  LOST ${failure.error}: ${failure.message}`,
    );
    wake();
  };

  const connect = (index: number) =>
    new Promise<void>((resolve, reject) => {
      const host = hosts[index];
      const s = streams[index];
      const t0 = performance.now();
      s.call = conns[index].agent.watch(
        opts.filter,
        (e) => {
          s.events++;
          if (e.type === "SNAPSHOT") {
            s.snapshot = e.snapshot.length;
            s.connectedMs = performance.now() - t0;
            resolve();
          }
          emit(host, e);
        },
        (err) => {
          const failure = describeFailure(err);
          reject(err);
          lost(host, s, failure);
        },
      );
      s.call.on("end", () => {
        const failure = { error: "STREAM_ENDED", message: "the agent ended the stream" };
        reject(new Error(failure.message));
        lost(host, s, failure);
      });
    });

  const indexes = hosts.map((_, i) => i);
  const settled = await mapBounded(indexes, opts, (i) => connect(i), (i, r) => {
    if (!r.ok && !streams[i].failure) {
      streams[i].failure = describeFailure(r.error, r.timedOut);
      streams[i].call?.cancel();
      streams[i].closed = true;
    }
    opts.progress.settle(hosts[i].name, r.ok);
  });
  opts.progress.end();

  const live = () => streams.some((s) => !s.closed);
  if (live()) {
    const left = opts.durationMs === null
      ? null
      : Math.max(0, opts.durationMs - (performance.now() - started));
    await new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let finished = false;
      // Whatever ends the wait (duration, SIGINT, last stream gone) removes the others.
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        Deno.removeSignalListener("SIGINT", finish);
        resolve();
      };
      wake = () => {
        if (!live()) finish();
      };
      Deno.addSignalListener("SIGINT", finish);
      if (left !== null) timer = setTimeout(finish, left);
    });
  }
  stopping = true;
  for (const s of streams) s.call?.cancel();

  return hosts.map((host, i) => {
    const s = streams[i];
    return hostResult(host, {
      ok: s.failure === null,
      errors: s.failure ? [s.failure.error] : [],
      message: s.failure?.message ?? "",
      ms: settled[i].ms,
      data: { snapshot: s.snapshot, events: s.events },
    });
  });
}
