// Pages of a listing: at most 1000 items, in id order, continued by an opaque token that names
// the last id returned (so a page stays correct while registrations come and go).
import { Rejection } from "../rejection/rejection.ts";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;

export interface Page<T> {
  items: T[];
  nextPageToken: string;
  total: number;
}

/** One page of `sorted` (ascending by id) after the token's id. */
export function paginate<T extends { id: string }>(
  sorted: T[],
  pageSize: number | undefined,
  pageToken: string | undefined,
): Page<T> {
  const size = Math.min(Math.max(pageSize || DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE);
  let start = 0;
  if (pageToken) {
    const after = decodePageToken(pageToken);
    start = sorted.findIndex((r) => r.id > after);
    if (start < 0) start = sorted.length;
  }
  const items = sorted.slice(start, start + size);
  const more = start + size < sorted.length;
  return {
    items,
    nextPageToken: more ? encodePageToken(items[items.length - 1].id) : "",
    total: sorted.length,
  };
}

function encodePageToken(lastId: string): string {
  return btoa(`v1:${lastId}`);
}

function decodePageToken(token: string): string {
  let text = "";
  try {
    text = atob(token);
  } catch { /* reported below */ }
  if (!text.startsWith("v1:")) {
    throw Rejection.of([{
      field: "page_token",
      reason: "INVALID_PAGE_TOKEN",
      description: "page_token is not one this agent issued",
    }]);
  }
  return text.slice(3);
}
