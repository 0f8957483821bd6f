// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Long } from '@grpc/proto-loader';

export interface Region {
  'bar'?: (number);
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
}

export interface Region__Output {
  'bar': (number);
  'offset': (string);
  'length': (string);
}
