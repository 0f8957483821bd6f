// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Long } from '@grpc/proto-loader';

export interface Bar {
  'index'?: (number);
  'kind'?: (string);
  'start'?: (number | string | Long);
  'length'?: (number | string | Long);
  'is_64bit'?: (boolean);
  'prefetchable'?: (boolean);
  'mappable'?: (boolean);
  'eligible'?: (boolean);
  'ineligibleReason'?: (string);
}

export interface Bar__Output {
  'index': (number);
  'kind': (string);
  'start': (string);
  'length': (string);
  'is_64bit': (boolean);
  'prefetchable': (boolean);
  'mappable': (boolean);
  'eligible': (boolean);
  'ineligibleReason': (string);
}
