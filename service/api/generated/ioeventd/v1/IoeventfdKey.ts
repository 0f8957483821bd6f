// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Long } from '@grpc/proto-loader';

export interface IoeventfdKey {
  'device'?: (string);
  'bar'?: (number);
  'offset'?: (number | string | Long);
  'width'?: (number);
  'data'?: (number | string | Long);
}

export interface IoeventfdKey__Output {
  'device': (string);
  'bar': (number);
  'offset': (string);
  'width': (number);
  'data': (string);
}
