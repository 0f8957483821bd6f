// How many bytes of an HTTP/2 session's writes are still held inside this process.
//
// Under the pinned Deno 2.9.3, node:http2 completes every write at once, whatever the peer does
// (denoland/deno#36044): a write callback says nothing about the peer. What does follow the
// peer is the session's socket: `socket.bytesWritten` counts only the bytes HTTP/2 flow control
// has let out, so a peer that stops granting window (a gRPC client that does not read: its
// library stops sending WINDOW_UPDATE) stops it, while the bytes handed to the stream keep
// growing. Measured with a grpc-js server in Deno 2.9.3 and a paused node:http2 client: 165 663
// writes of 16 KiB completed in 6 s, `bytesWritten` stayed at 65 720 (the initial window), RSS
// grew by 2.6 GiB; with a reading client `bytesWritten` followed the bytes handed, to the byte
// plus framing. Not seen here: a peer that grants a large window and then stops reading its
// socket — the runtime holds up to that window for it, invisible to JS.
//
// The count is per session (one TCP connection). With several watch streams on one session,
// which of them the peer is not reading cannot be told apart (they are all sent the same
// events), so each takes the session's whole backlog as its own: all of them are held back
// while one lags, and the ones whose queue then overflows are cut off (a reading one among
// them resumes at once and loses nothing; resume revisions are counted the same conservative
// way, never too late). The agent holds at most the window per session and the bound per
// stream either way. The other calls' bytes on the session (unary responses) are counted as
// handed too, by wrapping the writes of every stream the session opens after its first watch,
// so their leaving the socket is not taken for the watch's progress; what is still not counted
// (frame and header bytes, calls opened before) only ever reads as progress: the backlog never
// goes below zero (a credit is dropped, not kept) and is, if anything, low. When a watch stream ends, what the
// session still holds for it is forgotten (a reset stream's bytes are never written), so a
// client that resumes on the same connection starts from zero.

/** What one stream's writer needs to know about its transport. */
export interface Outbound {
  /** `bytes` were handed to the transport. */
  handed(bytes: number): void;
  /** Bytes handed to the stream's session and not yet written to its socket (≥ 0). */
  backlog(): number;
  /** The stream ended. */
  close(): void;
}

interface CountingSocket {
  bytesWritten?: number;
}

/** The socket's count; null once the session has lost its socket (the getter throws then). */
function bytesWritten(socket: CountingSocket): number | null {
  try {
    return typeof socket.bytesWritten === "number" ? socket.bytesWritten : null;
  } catch {
    return null;
  }
}

/** Marks the http2 stream of a watch: it counts what it hands itself (WatchStream). */
const WATCH = Symbol("ioeventd.watch");

interface WritableStream {
  write: (chunk: { length?: number }, ...rest: unknown[]) => boolean;
  [WATCH]?: true;
}

interface StreamingSession {
  on?: (event: "stream", listener: (stream: WritableStream) => void) => unknown;
}

class SessionOutbound {
  #handed = 0;
  #base: number;

  constructor(private readonly socket: CountingSocket, session: StreamingSession) {
    this.#base = bytesWritten(socket) ?? 0;
    // The other calls of the session (unary responses) count as handed too, so that their
    // bytes leaving the socket are not taken for the watch's progress.
    session.on?.("stream", (stream) => {
      const write = stream.write;
      if (typeof write !== "function") return;
      stream.write = (chunk, ...rest) => {
        if (!stream[WATCH]) this.handed(chunk?.length ?? 0);
        return write.call(stream, chunk, ...rest);
      };
    });
  }

  handed(bytes: number): void {
    this.#handed += bytes;
  }

  backlog(): number {
    const now = bytesWritten(this.socket);
    if (now === null) return 0; // the connection is gone, and what it held with it
    const written = now - this.#base;
    if (written > this.#handed) {
      // More left than was handed here (other calls, framing): no credit for later.
      this.#base += written - this.#handed;
      return 0;
    }
    return this.#handed - written;
  }

  /** Forgets what is held (a stream ended). */
  reset(): void {
    this.#handed = 0;
    this.#base = bytesWritten(this.socket) ?? this.#base;
  }
}

const sessions = new WeakMap<object, SessionOutbound>();

interface CallChain {
  stream?: Partial<WritableStream> & { session?: StreamingSession & { socket?: CountingSocket } };
  nextCall?: CallChain;
}

function streamOf(session: SessionOutbound): Outbound {
  let open = true;
  return {
    handed: (bytes) => session.handed(bytes),
    backlog: () => session.backlog(),
    close: () => {
      if (!open) return;
      open = false;
      session.reset();
    },
  };
}

/**
 * The outbound count of the HTTP/2 session a grpc-js server call runs on (its interceptor chain
 * ends at the call holding the http2 stream), or null when the call has none (not over HTTP/2,
 * or a grpc-js whose internals differ: the caller then has no signal, as before).
 */
export function outboundOf(call: unknown): Outbound | null {
  let link = (call as { call?: CallChain } | null)?.call;
  for (let depth = 0; link && depth < 16; depth++, link = link.nextCall) {
    const session = link.stream?.session;
    let socket: CountingSocket | undefined;
    try {
      socket = session?.socket;
    } catch {
      return null;
    }
    if (!session || !socket || bytesWritten(socket) === null) continue;
    let out = sessions.get(session);
    if (!out) {
      out = new SessionOutbound(socket, session);
      sessions.set(session, out);
    }
    if (link.stream) link.stream[WATCH] = true;
    return streamOf(out);
  }
  return null;
}
