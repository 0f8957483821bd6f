// Who is calling: derived from the connection, never from anything the caller sends. A TLS
// peer is named by its certificate (subject CN and SANs); the Unix socket and a plaintext
// TCP listener each count as one identity ("local", "insecure"), tagged per listener.
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import { loopbackTcpUid, peerCred } from "../native/handover.ts";

/** grpc-js's AuthContext (not exported by name from the package root). */
export type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface["getAuthContext"]>;

export type Transport = "local" | "insecure" | "tls";

export interface Identity {
  transport: Transport;
  /** Every name the policy may match: "local", "insecure", "CN=…", "DNS:…", "URI:…", "IP:…". */
  names: string[];
  /** The name logs and the audit show (the first of `names`). */
  name: string;
  /**
   * The calling process, as the kernel tells it: on the Unix socket its pid and uid
   * (SO_PEERCRED of the connection, read by the native plugin on the accepted descriptor);
   * on a loopback plaintext TCP connection its uid (/proc/net/tcp). Absent when unknown.
   */
  peer?: { pid?: number; uid?: number };
}

/** The auth context of a tagged listener's call, with what the connection says of the peer. */
type TaggedContext = AuthContext & { ioeventdPeer?: Identity["peer"] };

function values(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Splits Node's `subjectaltname` ("DNS:a, URI:b, IP Address:1.2.3.4"); values holding a
 * comma are JSON-quoted there.
 */
export function parseSubjectAltName(text: string): string[] {
  const out: string[] = [];
  const re = /(?:^|,\s*)([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const m of text.matchAll(re)) {
    const kind = m[1] === "IP Address" ? "IP" : m[1];
    let value = m[2];
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue; // a SAN we cannot read names nobody
      }
    }
    out.push(`${kind}:${value}`);
  }
  return out;
}

export function certificateNames(cert: PeerCertificate): string[] {
  const cn = values((cert.subject as unknown as Record<string, string | string[]>)?.CN);
  return [...cn.map((c) => `CN=${c}`), ...parseSubjectAltName(cert.subjectaltname ?? "")];
}

/** The caller of a call, or null when the connection proves nothing (refuse it). */
export function identityOf(auth: AuthContext): Identity | null {
  // "local" and "insecure" are what gRPC core reports for Unix sockets and no security.
  const type = auth.transportSecurityType;
  if (type === "local" || type === "insecure") {
    const peer = (auth as TaggedContext).ioeventdPeer;
    return { transport: type, names: [type], name: type, ...(peer ? { peer } : {}) };
  }
  if (type === "ssl" && auth.sslPeerCertificate) {
    const names = certificateNames(auth.sslPeerCertificate);
    if (names.length === 0) return null;
    return { transport: "tls", names, name: names[0] };
  }
  return null;
}

interface SocketLike {
  remoteAddress?: string;
  remotePort?: number;
  localPort?: number;
  _handle?: { fd?: number };
}

/** grpc-js's HTTP/2 stream under the interceptor chain (its calls keep it as `stream`). */
function socketOf(call: unknown): { session: object; socket: SocketLike } | null {
  let c = call as { stream?: { session?: { socket?: SocketLike } }; nextCall?: unknown } | null;
  for (let i = 0; i < 32 && c; i++) {
    const session = c.stream?.session;
    if (session) return session.socket ? { session, socket: session.socket } : null;
    c = c.nextCall as typeof c;
  }
  return null;
}

/** Peers by HTTP/2 session: read once per connection. */
const peers = new WeakMap<object, Identity["peer"] | null>();

/**
 * What the kernel says of the process at the other end: SO_PEERCRED of the accepted Unix
 * socket (its descriptor, which Deno's node:net exposes as `_handle.fd`), or the owner of
 * the client end of a loopback TCP connection.
 */
function peerOf(call: unknown, tag: Transport): Identity["peer"] | undefined {
  const s = socketOf(call);
  if (s === null) return undefined;
  if (peers.has(s.session)) return peers.get(s.session) ?? undefined;
  let peer: Identity["peer"] | null = null;
  try {
    if (tag === "local" && typeof s.socket._handle?.fd === "number") {
      const c = peerCred(s.socket._handle.fd);
      if (c !== null && c.pid > 0) peer = { pid: c.pid, uid: c.uid };
    } else if (tag === "insecure" && s.socket.remotePort && s.socket.localPort) {
      const loopback = /^(127\.|::1$|::ffff:127\.)/.test(s.socket.remoteAddress ?? "");
      const uid = loopback ? loopbackTcpUid(s.socket.remotePort, s.socket.localPort) : null;
      if (uid !== null) peer = { uid };
    }
  } catch {
    peer = null; // the plugin could not tell: the caller is bound as if unknown
  }
  peers.set(s.session, peer);
  return peer ?? undefined;
}

/** A call whose auth context names the listener it came through. */
class TaggedCall extends grpc.ServerInterceptingCall {
  readonly #peer: Identity["peer"] | undefined;
  constructor(next: grpc.ServerInterceptingCallInterface, private readonly tag: Transport) {
    super(next);
    this.#peer = tag === "tls" ? undefined : peerOf(next, tag);
  }
  override getAuthContext(): AuthContext {
    // TLS keeps grpc-js's own context (verified peer certificate, or {} when unverified).
    if (this.tag === "tls") return super.getAuthContext();
    const context: TaggedContext = { transportSecurityType: this.tag };
    if (this.#peer) context.ioeventdPeer = this.#peer;
    return context;
  }
}

/**
 * Wraps a listener's credentials so every call on it carries its transport, the way gRPC
 * core reports "local" for Unix sockets. Per listener, so a TCP caller can never pass as
 * the Unix socket.
 */
export function tagListener(
  credentials: grpc.ServerCredentials,
  transport: Transport,
): grpc.ServerCredentials {
  const tag: grpc.ServerInterceptor = (_method, call) => new TaggedCall(call, transport);
  return grpc.experimental.createServerCredentialsWithInterceptors(credentials, [tag]);
}
