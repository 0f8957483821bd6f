// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from '../../ioeventd/v1/Ioeventfd.ts';

export interface DeleteIoeventfdResponse {
  'deleted'?: (_ioeventd_v1_Ioeventfd | null);
}

export interface DeleteIoeventfdResponse__Output {
  'deleted': (_ioeventd_v1_Ioeventfd__Output | null);
}
