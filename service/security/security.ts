// The agent's security layer assembled from its configuration: listener credentials that
// tag each call with its transport (and mTLS for TCP), the enforcement interceptor, the
// audit log, and the reload that SIGHUP triggers (certificates, policy, audit file).
import * as grpc from "@grpc/grpc-js";
import type { Logger } from "../log.ts";
import type { Registration } from "../registry/registry.ts";
import type { RawSpec } from "../registry/validation.ts";
import { AuditLog } from "./audit.ts";
import type { RegistrationLookup } from "./authorize.ts";
import { SecurityCounters } from "./counters.ts";
import { tagListener } from "./identity.ts";
import { securityInterceptor } from "./interceptor.ts";
import { Policy } from "./policy.ts";
import { RateLimiter } from "./rate_limit.ts";
import { StreamLimiter } from "./stream_limit.ts";
import { ReloadableServerCredentials, type TlsFiles } from "./tls.ts";

export interface SecurityOptions {
  tls: TlsFiles | null;
  /** "" : the built-in policy (local and insecure are admin). */
  policyFile: string;
  auditLog: string;
  rateLimitPerSecond: number;
  rateLimitBurst: number;
  maxStreamsPerIdentity: number;
  /** Identities exempt from the rate and stream limits. */
  unlimitedIdentities: string[];
}

/** The part of the registry authorization reads. */
export interface OwnershipSource {
  lookup(selector: { id?: string; key?: RawSpec }): Registration | undefined;
  all(filter: { owner?: string }): Registration[];
}

export function registryLookup(registry: OwnershipSource): RegistrationLookup {
  const own = (r: Registration | undefined) =>
    r && { id: r.id, owner: r.owner, device: r.spec.device };
  return {
    byId: (id) => own(id ? registry.lookup({ id }) : undefined),
    byKey: (key) =>
      own(typeof key === "object" && key !== null ? registry.lookup({ key }) : undefined),
    ofOwner: (owner) => registry.all({ owner }).map((r) => own(r)!),
  };
}

export interface ReloadReport {
  ok: boolean;
  errors: string[];
  tls?: { subject: string; serial: string; validTo: string };
  policy: string;
}

export class Security {
  readonly counters = new SecurityCounters();
  readonly interceptor: grpc.ServerInterceptor;
  readonly audit: AuditLog;
  readonly tls: ReloadableServerCredentials | null;
  #policy: Policy;

  constructor(
    readonly options: SecurityOptions,
    lookup: RegistrationLookup,
    private readonly log: Logger,
  ) {
    // Everything is read now: a bad file stops the start, it does not half-configure it.
    this.#policy = options.policyFile ? Policy.load(options.policyFile) : Policy.builtIn();
    this.tls = options.tls ? new ReloadableServerCredentials(options.tls) : null;
    this.audit = AuditLog.open(options.auditLog);
    this.interceptor = securityInterceptor({
      policy: () => this.#policy,
      lookup,
      rate: new RateLimiter(options.rateLimitPerSecond, options.rateLimitBurst),
      streams: new StreamLimiter(options.maxStreamsPerIdentity),
      unlimited: new Set(options.unlimitedIdentities),
      audit: this.audit,
      counters: this.counters,
      log,
    });
  }

  get policy(): Policy {
    return this.#policy;
  }

  /**
   * The credentials of one listener. The Unix socket is the "local" identity; TCP is mTLS
   * when tls is configured, else plaintext "insecure" (which the config refuses unless
   * allowInsecureTcp is set).
   */
  credentialsFor(address: string): grpc.ServerCredentials {
    if (address.startsWith("unix:")) {
      return tagListener(grpc.ServerCredentials.createInsecure(), "local");
    }
    if (this.tls) return tagListener(this.tls, "tls");
    return tagListener(grpc.ServerCredentials.createInsecure(), "insecure");
  }

  /** What GetAgentInfo and the start-up log warn about. */
  warnings(listen: string[]): string[] {
    const out: string[] = [];
    for (const address of listen) {
      if (address.startsWith("unix:") || this.tls) continue;
      const grant = this.#policy.grantFor({ transport: "insecure", names: ["insecure"], name: "" });
      out.push(
        `plaintext TCP listener ${address}: callers are not authenticated (role ${
          grant?.role ?? "none"
        })`,
      );
    }
    return out;
  }

  /**
   * Reads certificates and policy again and reopens the audit file. Each part that fails
   * keeps what it had; connections already open are not touched.
   */
  reload(): ReloadReport {
    const errors: string[] = [];
    const report: ReloadReport = { ok: true, errors, policy: this.#policy.source };
    if (this.tls) {
      try {
        const t = this.tls.reload();
        report.tls = { subject: t.subject, serial: t.serial, validTo: t.validTo };
      } catch (err) {
        errors.push(String((err as Error).message ?? err));
      }
    }
    if (this.options.policyFile) {
      try {
        this.#policy = Policy.load(this.options.policyFile);
        report.policy = this.#policy.source;
      } catch (err) {
        errors.push(String((err as Error).message ?? err));
      }
    }
    try {
      this.audit.reopen();
    } catch (err) {
      errors.push(`audit log ${this.options.auditLog}: ${(err as Error).message}`);
    }
    report.ok = errors.length === 0;
    if (report.ok) this.counters.reloads.ok++;
    else this.counters.reloads.failed++;
    this.log.log(report.ok ? "info" : "error", "security reload", { ...report });
    return report;
  }

  close(): void {
    this.audit.close();
  }
}
