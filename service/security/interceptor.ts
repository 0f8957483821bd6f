// The enforcement layer: one grpc-js server interceptor in front of every service. Per call,
// in this order: who is calling (identity.ts), the request rate of that identity, the
// authorization decision on the decoded request (authorize.ts), the concurrent-stream
// limit, and for mutations an audit line with the result. Handlers never see a call this
// layer refused, and nothing here changes what an allowed call does.
import * as grpc from "@grpc/grpc-js";
import { decodeStatus, toServiceError } from "../api/status_details.ts";
import type { Logger } from "../log.ts";
import { Rejection } from "../rejection/rejection.ts";
import { type AuditLog, type AuditRecord, summarize } from "./audit.ts";
import { authorize, methodName, type RegistrationLookup, ruleFor } from "./authorize.ts";
import { withCaller } from "../registry/caller.ts";
import { callerFor } from "./source_binding.ts";
import type { RefusalKind, SecurityCounters } from "./counters.ts";
import { type Identity, identityOf } from "./identity.ts";
import type { Grant, Policy } from "./policy.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { StreamLimiter } from "./stream_limit.ts";

type Status = Parameters<grpc.ServerInterceptingCallInterface["sendStatus"]>[0];

export interface EnforcementContext {
  /** The policy in force now (a reload swaps it). */
  policy(): Policy;
  lookup: RegistrationLookup;
  rate: RateLimiter;
  streams: StreamLimiter;
  /** Identity names the rate and stream limits skip. */
  unlimited: ReadonlySet<string>;
  audit: AuditLog | null;
  counters: SecurityCounters;
  log: Logger;
}

/** The ioeventfds a mutation's answer names: created (or returned again) and removed. */
function outcome(method: string, response: unknown): Pick<AuditRecord, "added" | "removed"> {
  const r = (response ?? {}) as {
    id?: string;
    deleted?: { id?: string };
    added?: { id?: string }[];
    removed?: { id?: string }[];
  };
  const ids = (list: { id?: string }[] | undefined) => (list ?? []).map((i) => i.id ?? "");
  switch (method) {
    case "CreateIoeventfd":
      return { added: r.id ? [r.id] : [] };
    case "DeleteIoeventfd":
      return { removed: r.deleted?.id ? [r.deleted.id] : [] };
    case "ReconcileOwner":
      return { added: ids(r.added), removed: ids(r.removed) };
    default:
      return {};
  }
}

function codeName(code: grpc.status): string {
  return grpc.status[code] ?? String(code);
}

export function securityInterceptor(ctx: EnforcementContext): grpc.ServerInterceptor {
  return (definition, call) => {
    const path = definition.path;
    const method = methodName(path);
    const rule = ruleFor(path);
    const identity: Identity | null = identityOf(call.getAuthContext());
    const limited = identity !== null && !identity.names.some((n) => ctx.unlimited.has(n));
    /** A status went out from this layer: whatever the client still sends is dropped. */
    let refused = false;
    /** The refusal this layer sent, if it sent one. */
    let refusal: Rejection | null = null;
    let releaseStream: (() => void) | null = null;
    let audited: { grant: Grant | null; request: unknown; response?: unknown } | null = null;

    const writeAudit = (status: Status) => {
      if (audited === null || identity === null) return;
      const failed = status.code !== grpc.status.OK;
      // This layer's own refusals know their reason; a handler's is read from its status.
      const reason = !failed ? undefined : refusal?.reason ??
        decodeStatus(Object.assign(new Error(status.details), {
          code: status.code,
          details: status.details,
          metadata: status.metadata ?? new grpc.Metadata(),
        }))?.reason;
      const record: AuditRecord = {
        ts: new Date().toISOString(),
        identity: identity.name,
        transport: identity.transport,
        grant: audited.grant?.identity ?? null,
        role: audited.grant?.role ?? null,
        peer: call.getPeer(),
        method,
        request: audited.request,
        result: codeName(status.code),
        ...(failed ? { reason: reason || undefined, message: status.details } : {}),
        ...(failed ? {} : outcome(method, audited.response)),
      };
      audited = null;
      try {
        ctx.audit?.write(record);
      } catch (err) {
        ctx.counters.auditFailures++;
        ctx.log.log("error", "audit log write failed", { error: String(err), record });
      }
    };

    const intercepted: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (refused) return;
            if (identity === null) {
              return refuse(
                "UNVERIFIED",
                new Rejection(
                  "PERMISSION_DENIED",
                  "the connection carries no verified identity",
                  [],
                  { method, denial: "UNVERIFIED" },
                ),
              );
            }
            // Before the message is even read: a flood costs no decoding.
            if (limited && !ctx.rate.take(identity.name)) {
              return refuse(
                "RATE_LIMITED",
                new Rejection(
                  "RATE_LIMITED",
                  `${identity.name} exceeds ${ctx.rate.perSecond} requests per second`,
                  [],
                  {
                    identity: identity.name,
                    limit: String(ctx.rate.perSecond),
                    retry_after_ms: String(ctx.rate.retryAfterMs(identity.name)),
                  },
                ),
              );
            }
            nextMetadata(metadata);
          },
          onReceiveMessage: (message, nextMessage) => {
            if (refused || identity === null) return;
            if (releaseStream !== null) return nextMessage(message); // later stream messages
            const grant = ctx.policy().grantFor(identity);
            if (rule.mutation) audited = { grant, request: summarize(message) };
            const decision = authorize(identity, grant, path, message, ctx.lookup);
            if (!decision.allowed) {
              return refuse(
                decision.kind,
                new Rejection("PERMISSION_DENIED", decision.message, [], decision.metadata),
              );
            }
            if (definition.responseStream && limited) {
              releaseStream = ctx.streams.acquire(identity.name);
              if (releaseStream === null) {
                return refuse(
                  "STREAM_LIMIT",
                  new Rejection(
                    "LIMIT_REACHED",
                    `${identity.name} already has ${ctx.streams.max} open streams`,
                    [],
                    { identity: identity.name, limit: String(ctx.streams.max) },
                  ),
                );
              }
            }
            // Mutations carry their caller to the registry: its source binding, and whose
            // registrations a refusal may name.
            const forward = rule.mutation && typeof decision.request === "object" &&
                decision.request !== null
              ? withCaller(decision.request, callerFor(identity, grant, ctx.policy()))
              : decision.request;
            nextMessage(forward);
          },
          onReceiveHalfClose: (nextHalfClose) => {
            if (!refused) nextHalfClose();
          },
          onCancel: () => {
            releaseStream?.();
          },
        }),
      sendMessage: (message, nextSend) => {
        if (audited !== null) audited.response = message;
        nextSend(message);
      },
      sendStatus: (status, nextStatus) => {
        releaseStream?.();
        writeAudit(status);
        nextStatus(status);
      },
    });

    function refuse(kind: RefusalKind, err: Rejection): void {
      refused = true;
      refusal = err;
      ctx.counters.refuse(method, kind);
      const e = toServiceError(err);
      intercepted.sendStatus({
        code: e.code ?? grpc.status.PERMISSION_DENIED,
        details: e.details ?? err.message,
        metadata: e.metadata,
      });
    }

    return intercepted;
  };
}
