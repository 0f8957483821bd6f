// Who is calling: derived from the connection, never from anything the caller sends. A TLS
// peer is named by its certificate (subject CN and SANs); the Unix socket and a plaintext
// TCP listener each count as one identity ("local", "insecure"), tagged per listener.
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";

/** grpc-js's AuthContext (not exported by name from the package root). */
export type AuthContext = ReturnType<grpc.ServerInterceptingCallInterface["getAuthContext"]>;

export type Transport = "local" | "insecure" | "tls";

export interface Identity {
  transport: Transport;
  /** Every name the policy may match: "local", "insecure", "CN=…", "DNS:…", "URI:…", "IP:…". */
  names: string[];
  /** The name logs and the audit show (the first of `names`). */
  name: string;
}

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
    return { transport: type, names: [type], name: type };
  }
  if (type === "ssl" && auth.sslPeerCertificate) {
    const names = certificateNames(auth.sslPeerCertificate);
    if (names.length === 0) return null;
    return { transport: "tls", names, name: names[0] };
  }
  return null;
}

/** A call whose auth context names the listener it came through. */
class TaggedCall extends grpc.ServerInterceptingCall {
  constructor(next: grpc.ServerInterceptingCallInterface, private readonly tag: Transport) {
    super(next);
  }
  override getAuthContext(): AuthContext {
    // TLS keeps grpc-js's own context (verified peer certificate, or {} when unverified).
    return this.tag === "tls" ? super.getAuthContext() : { transportSecurityType: this.tag };
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
