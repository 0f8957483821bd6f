// TLS for TCP listeners: server certificate and key, and the CA that client certificates
// must chain to (mutual TLS; a client without one is refused during the handshake). The
// files are read again on reload: new connections get the new certificate, connections
// already open keep the one they were made with.
import * as grpc from "@grpc/grpc-js";
import { Buffer } from "node:buffer";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import type { SecureContextOptions } from "node:tls";

export interface TlsFiles {
  /** PEM server certificate (chain). */
  cert: string;
  /** PEM private key of that certificate. */
  key: string;
  /** PEM bundle of the CAs client certificates must chain to. */
  ca: string;
}

export interface LoadedTls {
  options: SecureContextOptions;
  /** The server certificate's subject, serial and expiry (for logs). */
  subject: string;
  serial: string;
  validTo: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/**
 * Reads and checks the files before anything uses them: grpc-js stops accepting connections
 * when handed a context it cannot load, so a bad rotation must fail here, not there.
 */
export function loadTls(files: TlsFiles): LoadedTls {
  const read = (what: string, path: string) => {
    try {
      return Buffer.from(readFileSync(path));
    } catch (err) {
      throw new Error(`tls.${what} ${path}: ${(err as Error).message}`);
    }
  };
  const cert = read("cert", files.cert);
  const key = read("key", files.key);
  const ca = read("ca", files.ca);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`tls.cert ${files.cert}: not a PEM certificate (${(err as Error).message})`);
  }
  try {
    if (!leaf.checkPrivateKey(createPrivateKey(key))) {
      throw new Error("it does not belong to the certificate");
    }
  } catch (err) {
    throw new Error(`tls.key ${files.key}: ${(err as Error).message}`);
  }
  const cas = ca.toString("utf8").match(PEM_CERT) ?? [];
  if (cas.length === 0) throw new Error(`tls.ca ${files.ca}: no PEM certificate in it`);
  for (const pem of cas) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new Error(`tls.ca ${files.ca}: unreadable certificate (${(err as Error).message})`);
    }
  }
  return {
    options: { ca, cert: [cert], key: [key] },
    subject: leaf.subject,
    serial: leaf.serialNumber,
    validTo: leaf.validTo,
  };
}

/**
 * mTLS server credentials whose certificate, key and CA can be replaced while the server
 * runs (grpc-js calls setSecureContext on each listener it was bound to).
 */
export class ReloadableServerCredentials extends grpc.ServerCredentials {
  #loaded: LoadedTls;

  constructor(readonly files: TlsFiles) {
    const loaded = loadTls(files);
    // requestCert + rejectUnauthorized: no certificate, or one from another CA, fails the
    // handshake; nothing unauthenticated reaches a handler.
    super({ requestCert: true, rejectUnauthorized: true }, loaded.options);
    this.#loaded = loaded;
  }

  get current(): LoadedTls {
    return this.#loaded;
  }

  /** Reads the files again; on any error the running certificate stays and this throws. */
  reload(): LoadedTls {
    const loaded = loadTls(this.files);
    this.updateSecureContextOptions(loaded.options);
    this.#loaded = loaded;
    return loaded;
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/** Client side: the CA that signed the agent's certificate, and our own certificate. */
export interface ClientTlsFiles {
  ca: string;
  cert?: string;
  key?: string;
}

export function clientCredentials(files: ClientTlsFiles): grpc.ChannelCredentials {
  const read = (path: string | undefined) => (path ? Buffer.from(readFileSync(path)) : null);
  return grpc.credentials.createSsl(read(files.ca), read(files.key), read(files.cert));
}
