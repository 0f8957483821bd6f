// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Source as _ioeventd_v1_Source, Source__Output as _ioeventd_v1_Source__Output } from '../../ioeventd/v1/Source.ts';
import type { Long } from '@grpc/proto-loader';

export interface IoeventfdSpec {
  'device'?: (string);
  'bar'?: (number);
  'offset'?: (number | string | Long);
  'width'?: (number);
  'data'?: (number | string | Long);
  'source'?: (_ioeventd_v1_Source | null);
  'labels'?: ({[key: string]: string});
  'vfioDevice'?: (_ioeventd_v1_Source | null);
}

export interface IoeventfdSpec__Output {
  'device': (string);
  'bar': (number);
  'offset': (string);
  'width': (number);
  'data': (string);
  'source': (_ioeventd_v1_Source__Output | null);
  'labels': ({[key: string]: string});
  'vfioDevice': (_ioeventd_v1_Source__Output | null);
}
