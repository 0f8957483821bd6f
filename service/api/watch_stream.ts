// One watch stream's sender, bounded in bytes. grpc-js buffers every message a handler writes
// until the peer reads it, so a reader that never reads would grow the agent without limit.
// Here at most one message is handed to grpc-js at a time (the next goes when the previous
// one has left for the socket); the rest wait in a queue whose encoded size is bounded. A
// reader that falls further behind is cut off with RESOURCE_EXHAUSTED / WATCH_TOO_SLOW and the
// revision to resume from (the kubelet and etcd watch convention), and its queue is freed.
import type * as grpc from "@grpc/grpc-js";
import { Rejection } from "../rejection/rejection.ts";
import type { IoeventfdEvent } from "./generated/ioeventd/v1/IoeventfdEvent.ts";
import { toServiceError } from "./status_details.ts";

/** What the agent holds for one watch stream at most, besides the message in flight. */
export const WATCH_BUFFER_BYTES = 4 << 20;

type Call = Pick<grpc.ServerWritableStream<unknown, IoeventfdEvent>, "write" | "emit">;

export class WatchStream {
  readonly #queue: { event: IoeventfdEvent; bytes: number; revision: string }[] = [];
  #queuedBytes = 0;
  #inFlight = false;
  #closed = false;
  /** The revision of the last event that left for the socket ("0": none yet). */
  #sentRevision = "0";

  constructor(
    private readonly call: Call,
    /** The encoded size of an event (the same encoder grpc-js uses). */
    private readonly sizeOf: (event: IoeventfdEvent) => number,
    private readonly onCutOff: () => void,
    readonly limitBytes = WATCH_BUFFER_BYTES,
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
    if (this.#inFlight && this.#queuedBytes + bytes > this.limitBytes) {
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
  }

  #pump(): void {
    if (this.#inFlight || this.#closed) return;
    const next = this.#queue.shift();
    if (!next) return;
    this.#queuedBytes -= next.bytes;
    this.#inFlight = true;
    this.call.write(next.event, () => {
      this.#inFlight = false;
      this.#sentRevision = next.revision;
      this.#pump();
    });
  }

  #cutOff(): void {
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
