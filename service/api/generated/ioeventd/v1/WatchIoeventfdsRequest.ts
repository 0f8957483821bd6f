// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Long } from '@grpc/proto-loader';

export interface WatchIoeventfdsRequest {
  'device'?: (string);
  'owner'?: (string);
  'sinceRevision'?: (number | string | Long);
}

export interface WatchIoeventfdsRequest__Output {
  'device': (string);
  'owner': (string);
  'sinceRevision': (string);
}
