// deno-fmt-ignore-file
// deno-lint-ignore-file
// Original file: proto/ioeventd/v1/ioeventd.proto

import type { Ioeventfd as _ioeventd_v1_Ioeventfd, Ioeventfd__Output as _ioeventd_v1_Ioeventfd__Output } from '../../ioeventd/v1/Ioeventfd.ts';

export interface ListIoeventfdsResponse {
  'ioeventfds'?: (_ioeventd_v1_Ioeventfd)[];
  'nextPageToken'?: (string);
  'totalSize'?: (number);
}

export interface ListIoeventfdsResponse__Output {
  'ioeventfds': (_ioeventd_v1_Ioeventfd__Output)[];
  'nextPageToken': (string);
  'totalSize': (number);
}
