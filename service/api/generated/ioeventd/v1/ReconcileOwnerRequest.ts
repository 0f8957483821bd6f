// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { IoeventfdSpec as _ioeventd_v1_IoeventfdSpec, IoeventfdSpec__Output as _ioeventd_v1_IoeventfdSpec__Output } from '../../ioeventd/v1/IoeventfdSpec.ts';

export interface ReconcileOwnerRequest {
  'owner'?: (string);
  'desired'?: (_ioeventd_v1_IoeventfdSpec)[];
  'dryRun'?: (boolean);
}

export interface ReconcileOwnerRequest__Output {
  'owner': (string);
  'desired': (_ioeventd_v1_IoeventfdSpec__Output)[];
  'dryRun': (boolean);
}
