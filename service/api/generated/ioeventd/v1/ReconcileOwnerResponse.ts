// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from '../../ioeventd/v1/Ioeventfd.ts';

export interface ReconcileOwnerResponse {
  'added'?: (_ioeventd_v1_Ioeventfd)[];
  'kept'?: (_ioeventd_v1_Ioeventfd)[];
  'removed'?: (_ioeventd_v1_Ioeventfd)[];
}

export interface ReconcileOwnerResponse__Output {
  'added': (_ioeventd_v1_Ioeventfd__Output)[];
  'kept': (_ioeventd_v1_Ioeventfd__Output)[];
  'removed': (_ioeventd_v1_Ioeventfd__Output)[];
}
