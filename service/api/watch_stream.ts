// One watch stream's sender, bounded in bytes. grpc-js buffers every message a handler writes
// until the peer reads it, so a reader that never reads would grow the agent without limit.
// Here at most one message is handed to grpc-js at a time (the next goes when the previous
// one has left for the socket); the rest wait in a queue whose encoded size is bounded. A
// reader that falls further behind is cut off with RESOURCE_EXHAUSTED / WATCH_TOO_SLOW and the
// revision to resume from (the kubelet and etcd watch convention), and its queue is freed.
//
// "Left for the socket": a write's completion, and, where the call's HTTP/2 session shows it
// (outbound.ts: under Deno 2.9.3 completions come at once whatever the peer does), no more than
// WATCH_SEND_WINDOW bytes handed to the session and not yet written by its socket.
import type * as grpc from "@grpc/grpc-js";
import { type Outbound, outboundOf } from "./outbound.ts";
import { Rejection } from "../rejection/rejection.ts";
import type { IoeventfdEvent } from "./generated/ioeventd/v1/IoeventfdEvent.ts";
import { toServiceError } from "./status_details.ts";

/** What the agent holds for one watch stream at most, besides the message in flight. */
export const WATCH_BUFFER_BYTES = 4 << 20;
/** Bytes a watch may have in the transport, handed and not yet out of its socket. */
export const WATCH_SEND_WINDOW = 1 << 20;
/** How often a stream held back by its peer looks again. */
const PEER_POLL_MS = 20;

type Call = Pick<grpc.ServerWritableStream<unknown, IoeventfdEvent>, "write" | "emit">;

export class WatchStream {
  readonly #queue: { event: IoeventfdEvent; bytes: number; revision: string }[] = [];
  #queuedBytes = 0;
  #inFlight = false;
  #closed = false;
  /** The revision of the last event that left for the socket ("0": none yet). */
  #sentRevision = "0";
  /** Bytes this stream handed to the transport, and its events not known to be out yet. */
  #handed = 0;
  readonly #inTransport: { end: number; revision: string }[] = [];
  #peerTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly call: Call,
    /** The encoded size of an event (the same encoder grpc-js uses). */
    private readonly sizeOf: (event: IoeventfdEvent) => number,
    private readonly onCutOff: () => void,
    readonly limitBytes = WATCH_BUFFER_BYTES,
    /** The call's session's outbound count (null: write completions are all there is). */
    private readonly outbound: Outbound | null = outboundOf(call),
    readonly windowBytes = WATCH_SEND_WINDOW,
  ) {}

  /** Bytes waiting in the queue (not yet handed to grpc-js). */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(event: IoeventfdEvent): void {
    if (this.#closed) return;
    const bytes = this.sizeOf(event);
    // The first message always goes (a snapshot may be larger than the bound by itself).
    const held = this.#inFlight || this.#peerTimer !== undefined;
    if (held && this.#queuedBytes + bytes > this.limitBytes) {
      this.#cutOff();
      return;
    }
    this.#queue.push({ event, bytes, revision: String(event.revision ?? "0") });
    this.#queuedBytes += bytes;
    this.#pump();
  }

  /** Stops sending (the stream ended); frees the queue. */
  close(): void {
    this.#closed = true;
    this.#queue.length = 0;
    this.#queuedBytes = 0;
    this.#inTransport.length = 0;
    this.outbound?.close();
    clearTimeout(this.#peerTimer);
    this.#peerTimer = undefined;
  }

  #pump(): void {
    if (this.#inFlight || this.#peerTimer !== undefined || this.#closed) return;
    if (this.#queue.length === 0) return;
    if (this.outbound && this.#settle(this.outbound) > this.windowBytes) {
      // The peer has not taken what the session holds for it: look again later.
      this.#peerTimer = setTimeout(() => {
        this.#peerTimer = undefined;
        this.#pump();
      }, PEER_POLL_MS);
      return;
    }
    const next = this.#queue.shift()!;
    this.#queuedBytes -= next.bytes;
    this.#inFlight = true;
    if (this.outbound) {
      this.outbound.handed(next.bytes);
      this.#handed += next.bytes;
      this.#inTransport.push({ end: this.#handed, revision: next.revision });
    }
    this.call.write(next.event, () => {
      this.#inFlight = false;
      if (!this.outbound) this.#sentRevision = next.revision;
      this.#pump();
    });
  }

  /**
   * The session's backlog; the events now known to be out of the socket are sent (counting
   * all of the session's backlog as this stream's, so the resume revision is never too late).
   */
  #settle(outbound: Outbound): number {
    const backlog = outbound.backlog();
    const out = this.#handed - backlog;
    while (this.#inTransport.length > 0 && this.#inTransport[0].end <= out) {
      this.#sentRevision = this.#inTransport.shift()!.revision;
    }
    return backlog;
  }

  #cutOff(): void {
    if (this.outbound) this.#settle(this.outbound);
    const resume = this.#sentRevision;
    this.close();
    this.onCutOff();
    const err = new Rejection(
      "WATCH_TOO_SLOW",
      `this watch fell more than ${this.limitBytes} bytes behind: resume with since_revision ` +
        `${resume}`,
      [],
      { resume_revision: resume, limit_bytes: String(this.limitBytes) },
    );
    // Ends the stream with that status once the message in flight has gone.
    this.call.emit("error", toServiceError(err));
  }
}
