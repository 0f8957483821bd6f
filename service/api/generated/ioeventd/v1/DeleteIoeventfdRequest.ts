// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { IoeventfdKey as _ioeventd_v1_IoeventfdKey, IoeventfdKey__Output as _ioeventd_v1_IoeventfdKey__Output } from '../../ioeventd/v1/IoeventfdKey.ts';

export interface DeleteIoeventfdRequest {
  'id'?: (string);
  'key'?: (_ioeventd_v1_IoeventfdKey | null);
  'selector'?: "id"|"key";
}

export interface DeleteIoeventfdRequest__Output {
  'id'?: (string);
  'key'?: (_ioeventd_v1_IoeventfdKey__Output | null);
  'selector'?: "id"|"key";
}
